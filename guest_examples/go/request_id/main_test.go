package main

import (
	"regexp"
	"strings"
	"testing"

	"mwhost/sdk"
)

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func withHeader(t *testing.T, name string) {
	t.Helper()
	old := header
	t.Cleanup(func() { header = old })
	if err := configure(mw.Config{"header": name}); err != nil {
		t.Fatal(err)
	}
}

// A request without an id gets a fresh one on the request, in ctx and on the response.
func TestAddsMissingID(t *testing.T) {
	a := handle(&mw.Request{Method: "GET", Path: "/"})
	id := a.Ctx["request_id"]
	if !hexID.MatchString(id) {
		t.Fatalf("id %q", id)
	}
	if len(a.SetHeaders) != 1 || a.SetHeaders[0] != [2]string{"x-request-id", id} {
		t.Errorf("set_headers %v", a.SetHeaders)
	}
	if len(a.ResponseHeaders) != 1 || a.ResponseHeaders[0] != [2]string{"x-request-id", id} {
		t.Errorf("response_headers %v", a.ResponseHeaders)
	}
	if other := handle(&mw.Request{}).Ctx["request_id"]; other == id {
		t.Error("two requests got the same id")
	}
}

// A sane incoming id is kept and the request headers are left alone.
func TestKeepsSaneID(t *testing.T) {
	a := handle(&mw.Request{Headers: mw.Headers{{"x-request-id", "Root=1-abc:def/42"}}})
	if a.Ctx["request_id"] != "Root=1-abc:def/42" || a.SetHeaders != nil {
		t.Errorf("ctx %v set_headers %v", a.Ctx, a.SetHeaders)
	}
	if a.ResponseHeaders[0][1] != "Root=1-abc:def/42" {
		t.Errorf("response_headers %v", a.ResponseHeaders)
	}
}

// Unusable incoming ids (too long, odd characters, empty, repeated) are replaced.
func TestReplacesBadID(t *testing.T) {
	for _, h := range []mw.Headers{
		{{"x-request-id", strings.Repeat("a", 201)}},
		{{"x-request-id", "a b"}},
		{{"x-request-id", "<script>"}},
		{{"x-request-id", ""}},
		{{"x-request-id", "a"}, {"x-request-id", "b"}},
	} {
		a := handle(&mw.Request{Headers: h})
		if id := a.Ctx["request_id"]; !hexID.MatchString(id) || a.SetHeaders[0][1] != id {
			t.Errorf("%v: id %q set_headers %v", h, id, a.SetHeaders)
		}
	}
	if !saneID(strings.Repeat("a", 200)) {
		t.Error("a 200-character id was refused")
	}
}

// The header name is configurable and lower-cased; invalid names refuse the config.
func TestConfigHeader(t *testing.T) {
	withHeader(t, "X-Correlation-ID")
	a := handle(&mw.Request{Headers: mw.Headers{{"x-correlation-id", "c-1"}}})
	if a.Ctx["request_id"] != "c-1" || a.ResponseHeaders[0] != [2]string{"x-correlation-id", "c-1"} {
		t.Errorf("%v %v", a.Ctx, a.ResponseHeaders)
	}
	for _, bad := range []mw.Config{{"header": ""}, {"header": "bad name"}, {"header": int64(5)}, {"hedaer": "x"}} {
		if err := configure(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
