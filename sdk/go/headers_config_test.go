package mw

import (
	"errors"
	"reflect"
	"testing"
)

// Lookups ignore case and keep order and repeats.
func TestHeaders(t *testing.T) {
	h := Headers{{"set-cookie", "a=1"}, {"content-type", "text/plain"}, {"set-cookie", "b=2"}}
	if h.Get("Content-Type") != "text/plain" || h.Get("missing") != "" {
		t.Error("Get")
	}
	if v, ok := h.Lookup("set-cookie"); !ok || v != "a=1" {
		t.Error("Lookup")
	}
	if _, ok := h.Lookup("x"); ok {
		t.Error("Lookup of a missing name")
	}
	if got := h.Values("SET-COOKIE"); !reflect.DeepEqual(got, []string{"a=1", "b=2"}) {
		t.Errorf("Values: %v", got)
	}
	h.Add("x", "1")
	if h[3] != [2]string{"x", "1"} {
		t.Error("Add")
	}
}

// Getters return the default when a key is absent and a *ConfigError for a wrong type.
func TestConfigGetters(t *testing.T) {
	cfg, err := decodeConfig(readVector(t, "config_example.msgpack"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := cfg.Int("limit", 0); v != 10 || err != nil {
		t.Errorf("Int: %v %v", v, err)
	}
	if v, err := cfg.Float("limit", 0); v != 10 || err != nil {
		t.Errorf("Float of an int: %v %v", v, err)
	}
	if v, err := cfg.Float("ratio", 0); v != 0.5 || err != nil {
		t.Errorf("Float: %v %v", v, err)
	}
	if v, err := cfg.Bool("enabled", false); !v || err != nil {
		t.Errorf("Bool: %v %v", v, err)
	}
	if v, err := cfg.Strings("prefixes"); !reflect.DeepEqual(v, []string{"/admin", "/internal"}) || err != nil {
		t.Errorf("Strings: %v %v", v, err)
	}
	if m, err := cfg.Map("headers"); err != nil {
		t.Errorf("Map: %v", err)
	} else if v, _ := m.String("x-a", ""); v != "1" {
		t.Errorf("Map: %v", m)
	}
	if v, err := cfg.String("missing", "def"); v != "def" || err != nil {
		t.Errorf("default: %v %v", v, err)
	}
	var ce *ConfigError
	if _, err := cfg.Int("ratio", 0); !errors.As(err, &ce) || ce.Key != "ratio" {
		t.Errorf("Int of a float: %v", err)
	}
	if _, err := cfg.Strings("headers"); err == nil {
		t.Error("Strings of a map")
	}
	mixed := Config{"a": []any{"x", int64(1)}}
	if _, err := mixed.Strings("a"); err == nil {
		t.Error("Strings of a mixed array")
	}
	if _, err := cfg.Bool("limit", false); err == nil || err.Error() != `config key "limit": want a bool` {
		t.Errorf("message: %v", err)
	}
}

// CheckKeys names the first unknown key and accepts a config of known keys only.
func TestConfigCheckKeys(t *testing.T) {
	cfg := Config{"rate": int64(1), "zeta": true, "alpha": "x"}
	err := cfg.CheckKeys("rate")
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "alpha" || err.Error() != `config key "alpha": unknown key (known: rate)` {
		t.Errorf("got %v", err)
	}
	if err := cfg.CheckKeys("alpha", "rate", "zeta", "more"); err != nil {
		t.Errorf("known keys refused: %v", err)
	}
	if err := Config(nil).CheckKeys(); err != nil {
		t.Errorf("empty config refused: %v", err)
	}
}
