// Package mw is the Go guest SDK for mwhost ABI v1 (abi/ABI.md).
//
// A middleware registers its callbacks from an init function and leaves main empty:
//
//	func init() {
//		mw.HandleRequest(func(req *mw.Request) mw.Action {
//			if req.Headers.Get("authorization") == "" {
//				return mw.Respond(401).Text("login first\n")
//			}
//			return mw.Continue().SetCtx("authenticated", "yes")
//		})
//	}
//
//	func main() {}
//
// HandleRequestLent registers a request callback that gets the request lent for the call
// only (valid until it returns; no copy and no allocation per request): use it when the
// callback keeps nothing of the request.
//
// Callbacks not registered keep their defaults: requests continue unchanged, responses are
// left unchanged and any config is accepted. The SDK declares the ABI exports, decodes the
// host's messages and encodes the answers with its own small msgpack codec (stdlib only).
//
// An instance serves one call at a time, so callbacks may use package-level state without
// locks; that state is per instance (per worker and thread), not shared across the host.
package mw
