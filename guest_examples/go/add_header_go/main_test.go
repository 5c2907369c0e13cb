package main

import (
	"reflect"
	"testing"

	"mwhost/sdk"
)

func TestBuildSetsRequestAndResponseHeadersInNameOrder(t *testing.T) {
	got := build(map[string]string{"x-b": "2", "x-a": "1"}, map[string]string{"x-served-by": "mw"})
	want := mw.Continue().SetHeader("x-a", "1").SetHeader("x-b", "2").SetResponseHeader("x-served-by", "mw")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestConfigureRefusesUnknownKeys(t *testing.T) {
	if err := configure(mw.Config{"request_header": map[string]any{}}); err == nil {
		t.Fatal("a misspelt key must refuse the config")
	}
}

func TestConfigureRefusesNonStringValues(t *testing.T) {
	cfg := mw.Config{"request_headers": map[string]any{"x-a": int64(1)}}
	if err := configure(cfg); err == nil {
		t.Fatal("a non-string header value must refuse the config")
	}
}
