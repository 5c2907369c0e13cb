// Command cors is an mwhost middleware that implements the server side of the Fetch
// standard's CORS protocol: it answers preflight requests itself and adds the CORS headers
// to the responses of allowed cross-origin requests.
package main

import (
	"strings"

	"mwhost/sdk"
)

// pol is built once from the config by configure; a request only reads it.
var pol *policy

// warned keeps the missing-config error to one line per instance.
var warned bool

func init() {
	mw.HandleInit(configure)
	// lent: handle keeps nothing past the call (an echoed origin is encoded before it returns)
	mw.HandleRequestLent(handle)
}

func main() {}

func configure(cfg mw.Config) error {
	p, err := newPolicy(cfg)
	if err != nil {
		return err
	}
	pol = p
	return nil
}

func handle(req *mw.Request) mw.Action {
	if pol == nil {
		if !warned {
			warned = true
			mw.Error("cors: no config, every request passes; set allowed_origins in the stage's config")
		}
		return mw.Continue()
	}
	origin, ok := req.Headers.Lookup("origin")
	if !ok {
		return mw.Continue() // same-origin or not a browser: not a CORS request
	}
	if req.Method == "OPTIONS" {
		if method, ok := req.Headers.Lookup("access-control-request-method"); ok {
			return pol.preflight(origin, method, req.Headers.Get("access-control-request-headers"))
		}
	}
	return pol.actual(origin)
}

// preflightVary lists every request header a preflight answer depends on.
const preflightVary = "origin, access-control-request-method, access-control-request-headers"

// preflight answers an OPTIONS preflight: 204 with the CORS headers when the origin, method
// and headers are all allowed, otherwise 403 without CORS headers (the browser then fails
// the request; the text body says why, for whoever reads the network log).
func (p *policy) preflight(origin, method, requested string) mw.Action {
	names := headerNames(requested)
	if reason := p.refusal(origin, method, names); reason != "" {
		return mw.Respond(403).Header("vary", preflightVary).
			Header("content-type", "text/plain").Text("cors: " + reason + "\n")
	}
	a := mw.Respond(204).
		Header("access-control-allow-origin", p.allowOrigin(origin)).
		Header("access-control-allow-methods", p.allowMethods(method))
	if len(names) > 0 {
		a = a.Header("access-control-allow-headers", strings.Join(names, ", "))
	}
	if p.credentials {
		a = a.Header("access-control-allow-credentials", "true")
	}
	if p.maxAge != "" {
		a = a.Header("access-control-max-age", p.maxAge)
	}
	return a.Header("vary", preflightVary)
}

func (p *policy) refusal(origin, method string, names []string) string {
	switch {
	case !p.originAllowed(origin):
		return "origin not allowed"
	case !p.methodAllowed(method):
		return "method not allowed"
	case !p.headersAllowed(names):
		return "request headers not allowed"
	}
	return ""
}

// actual lets a CORS request through and adds the CORS headers to its response. A
// disallowed origin passes untouched: without the headers the browser hides the response.
func (p *policy) actual(origin string) mw.Action {
	a := mw.Continue()
	if !p.originAllowed(origin) {
		return a
	}
	a = a.SetResponseHeader("access-control-allow-origin", p.allowOrigin(origin))
	if p.credentials {
		a = a.SetResponseHeader("access-control-allow-credentials", "true")
	}
	if p.expose != "" {
		a = a.SetResponseHeader("access-control-expose-headers", p.expose)
	}
	// NOTE: response_headers replaces the app's own vary header (ABI v1 has no append).
	return a.SetResponseHeader("vary", "origin")
}

// headerNames splits access-control-request-headers into lower-case names.
func headerNames(list string) []string {
	var names []string
	for _, name := range strings.Split(list, ",") {
		if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
			names = append(names, name)
		}
	}
	return names
}
