package main

import (
	"slices"
	"testing"

	"mwhost/sdk"
)

const app = "https://app.example"

func use(t *testing.T, cfg mw.Config) {
	t.Helper()
	old := pol
	t.Cleanup(func() { pol = old })
	if err := configure(cfg); err != nil {
		t.Fatal(err)
	}
}

func strict() mw.Config {
	return mw.Config{
		"allowed_origins": []any{app},
		"allowed_methods": []any{"GET", "PUT", "DELETE"},
		"allowed_headers": []any{"Content-Type", "X-Token"},
		"expose_headers":  []any{"x-total"},
		"max_age":         int64(600),
	}
}

func preflightReq(origin, method, headers string) *mw.Request {
	h := mw.Headers{{"origin", origin}, {"access-control-request-method", method}}
	if headers != "" {
		h.Add("access-control-request-headers", headers)
	}
	return &mw.Request{Method: "OPTIONS", Path: "/api", Headers: h}
}

// An allowed preflight is answered 204 with every CORS header and the app is skipped.
func TestPreflightAllowed(t *testing.T) {
	use(t, strict())
	a := handle(preflightReq(app, "PUT", "content-type, X-Token"))
	want := mw.Headers{
		{"access-control-allow-origin", app},
		{"access-control-allow-methods", "GET, PUT, DELETE"},
		{"access-control-allow-headers", "content-type, x-token"},
		{"access-control-max-age", "600"},
		{"vary", preflightVary},
	}
	if a.Kind != mw.ActionRespond || a.Status != 204 || !slices.Equal(a.Headers, want) {
		t.Errorf("got %d %v", a.Status, a.Headers)
	}
}

// A preflight from another origin, for another method or with other headers gets 403
// and no CORS headers.
func TestPreflightRefused(t *testing.T) {
	use(t, strict())
	for _, r := range []*mw.Request{
		preflightReq("https://evil.example", "PUT", ""),
		preflightReq(app, "PATCH", ""),
		preflightReq(app, "PUT", "x-token, x-other"),
		preflightReq(app, "", ""),
	} {
		a := handle(r)
		if a.Status != 403 || a.Headers.Get("access-control-allow-origin") != "" || a.Headers.Get("vary") == "" {
			t.Errorf("%v: got %d %v", r.Headers, a.Status, a.Headers)
		}
	}
}

// Safelisted methods pass a preflight even when not configured, as browsers allow them.
func TestPreflightSafelistedMethod(t *testing.T) {
	use(t, strict())
	if a := handle(preflightReq(app, "POST", "x-token")); a.Status != 204 {
		t.Errorf("got %d", a.Status)
	}
}

// An allowed cross-origin request continues and its response gets the CORS headers.
func TestActualAllowed(t *testing.T) {
	use(t, strict())
	a := handle(&mw.Request{Method: "GET", Headers: mw.Headers{{"origin", app}}})
	want := mw.Headers{
		{"access-control-allow-origin", app},
		{"access-control-expose-headers", "x-total"},
		{"vary", "origin"},
	}
	if a.Kind != mw.ActionContinue || !slices.Equal(a.ResponseHeaders, want) {
		t.Errorf("got %v", a.ResponseHeaders)
	}
}

// Requests without origin, and from disallowed origins, pass untouched.
func TestUntouched(t *testing.T) {
	use(t, strict())
	for _, r := range []*mw.Request{
		{Method: "GET"},
		{Method: "OPTIONS"},
		{Method: "GET", Headers: mw.Headers{{"origin", "https://evil.example"}}},
	} {
		if a := handle(r); a.Kind != mw.ActionContinue || a.ResponseHeaders != nil || a.SetHeaders != nil {
			t.Errorf("%v: got %+v", r.Headers, a)
		}
	}
}

// An OPTIONS request without access-control-request-method is not a preflight.
func TestOptionsWithoutRequestMethod(t *testing.T) {
	use(t, strict())
	a := handle(&mw.Request{Method: "OPTIONS", Headers: mw.Headers{{"origin", app}}})
	if a.Kind != mw.ActionContinue || a.ResponseHeaders.Get("access-control-allow-origin") != app {
		t.Errorf("got %+v", a)
	}
}

// A wildcard answers "*" without credentials and echoes the origin with them.
func TestWildcard(t *testing.T) {
	use(t, mw.Config{"allowed_origins": []any{"*"}, "allowed_methods": []any{"*"}, "allowed_headers": []any{"*"}})
	a := handle(preflightReq("https://any.example", "PATCH", "authorization"))
	if a.Status != 204 || a.Headers.Get("access-control-allow-origin") != "*" ||
		a.Headers.Get("access-control-allow-methods") != "PATCH" ||
		a.Headers.Get("access-control-allow-headers") != "authorization" {
		t.Errorf("no credentials: %d %v", a.Status, a.Headers)
	}
	use(t, mw.Config{"allowed_origins": []any{"*"}, "allow_credentials": true})
	a = handle(&mw.Request{Method: "GET", Headers: mw.Headers{{"origin", "https://any.example"}}})
	if a.ResponseHeaders.Get("access-control-allow-origin") != "https://any.example" ||
		a.ResponseHeaders.Get("access-control-allow-credentials") != "true" {
		t.Errorf("credentials: %v", a.ResponseHeaders)
	}
}

// Defaults: GET, HEAD, POST; no headers; no max-age header.
func TestDefaults(t *testing.T) {
	use(t, mw.Config{"allowed_origins": []any{app}})
	a := handle(preflightReq(app, "GET", ""))
	want := mw.Headers{
		{"access-control-allow-origin", app},
		{"access-control-allow-methods", "GET, HEAD, POST"},
		{"vary", preflightVary},
	}
	if a.Status != 204 || !slices.Equal(a.Headers, want) {
		t.Errorf("got %d %v", a.Status, a.Headers)
	}
}

// Bad configs are refused with a reason.
func TestBadConfig(t *testing.T) {
	for _, cfg := range []mw.Config{
		{},
		{"allowed_origins": []any{}},
		{"allowed_origins": "https://app.example"},
		{"allowed_origins": []any{"https://app.example/"}},
		{"allowed_origins": []any{"app.example"}},
		{"allowed_origins": []any{app}, "max_age": int64(-1)},
		{"allowed_origins": []any{app}, "max_age": "600"},
		{"allowed_origins": []any{app}, "allow_credentials": "yes"},
		{"allowed_origins": []any{app}, "allowed_method": []any{"GET"}},
	} {
		if _, err := newPolicy(cfg); err == nil {
			t.Errorf("%v accepted", cfg)
		}
	}
}

// Without a config every request passes (and an error is logged).
func TestNoConfig(t *testing.T) {
	old := pol
	pol = nil
	defer func() { pol = old }()
	if a := handle(preflightReq(app, "GET", "")); a.Kind != mw.ActionContinue {
		t.Errorf("got %+v", a)
	}
}
