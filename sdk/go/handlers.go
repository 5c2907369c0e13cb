package mw

import (
	"errors"
	"unsafe"
)

// The registered callbacks; unset ones keep these defaults. A nil responseFn leaves every
// response unchanged without decoding it.
var (
	requestFn  = func(*Request) Action { return Continue() }
	responseFn func(*Response) ResponseAction
	initFn     = func(Config) error { return nil }

	responsePhase = true // mw_on_response is exported; see noresponse.go
)

// initState tracks the init callback of this instance.
type initState uint8

const (
	initPending initState = iota
	initDone
	initFailed
)

// initialised: the host calls mw_init once per instance, always (an empty map when the
// stage has no config), so this is initDone or initFailed before the first request. A call
// without mw_init first (another host, a native test) runs the callback with an empty
// config, so it always runs exactly once before the first request, as in the Rust SDK.
var initialised = initPending

// HandleRequest registers the request-phase callback. Call it from an init function.
// The Request and everything in it stay valid after the call: the callback may keep them.
// HandleRequestLent lends the request for the call instead, which is cheaper.
func HandleRequest(fn func(req *Request) Action) {
	if fn != nil {
		requestFn, lendRequest = fn, false
	}
}

// HandleResponse registers the response-phase callback. Call it from an init function.
// Prefer Action.SetResponseHeader when a header is all the response needs: a module built
// with -tags mw_noresponse has no response phase at all, and calling HandleResponse in
// such a build panics (the module then fails to load, with this message in the host log).
func HandleResponse(fn func(resp *Response) ResponseAction) {
	if !responsePhase {
		panic("mw: HandleResponse in a build with -tags mw_noresponse, which has no mw_on_response")
	}
	if fn != nil {
		responseFn = fn
	}
}

// HandleInit registers the config callback, run once per instance before any request,
// always: with an empty Config when the stage has none (the host calls mw_init every time,
// ABI.md), so a middleware that needs a setting can refuse to run without it. Returning an
// error refuses the config (and the module).
func HandleInit(fn func(cfg Config) error) {
	if fn != nil {
		initFn = fn
	}
}

// Buffers shared with the host. Package-level so the GC keeps them alive while the host
// holds their addresses: in is the last mw_alloc buffer, out the last answer (valid until
// the next call, as the ABI requires). Both are reused across calls. A continue action's
// answer is in memo.encoded instead (memo.go).
var in, out []byte

// maxAlloc bounds mw_alloc: a larger request could only end in a fatal out-of-memory.
const maxAlloc = 1 << 30

// internalError answers a message the SDK cannot decode (the host never sends one unless
// it is broken or speaks another ABI), so the failure is visible rather than skipped.
var (
	internalError         = Respond(500).Header("content-type", "text/plain").Text("middleware input error\n")
	internalErrorResponse = Unchanged().SetStatus(500).SetHeader("content-type", "text/plain").Text("middleware input error\n")
	notConfigured         = Respond(500).Header("content-type", "text/plain").Text("middleware not configured\n")
	notConfiguredResponse = Unchanged().SetStatus(500).SetHeader("content-type", "text/plain").Text("middleware not configured\n")
)

// alloc returns a buffer of size bytes for the host to write the next message into,
// or nil when size is out of range.
func alloc(size int32) []byte {
	if size < 0 || size > maxAlloc {
		return nil
	}
	if cap(in) < max(int(size), 1) { // a zero-capacity slice has no address to hand out
		in = make([]byte, max(size, 64))
	}
	in = in[:size]
	return in
}

// input returns the message the host wrote at addr: it must be the last mw_alloc buffer.
func input(addr uintptr, n int32) ([]byte, error) {
	if cap(in) == 0 || addr != addrOf(in) {
		return nil, errors.New("the message is not in the buffer mw_alloc returned")
	}
	if n < 0 || int(n) > len(in) {
		return nil, errors.New("the message is longer than the buffer mw_alloc returned")
	}
	return in[:n], nil
}

func addrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// pack builds mw_on_request's result: pointer in the high half, length in the low half.
func pack(ptr, n uint32) int64 { return int64(uint64(ptr)<<32 | uint64(n)) }

// onRequest is the body of mw_on_request: decode, dispatch, encode into out.
func onRequest(addr uintptr, n int32) []byte {
	if !ensureInit() {
		out = appendAction(out[:0], notConfigured)
		return out
	}
	req, err := readRequest(addr, n)
	action := internalError
	if err != nil {
		Error("mw: cannot read the request, answering 500: " + err.Error())
	} else {
		action = requestFn(req)
		if memoable(&action) {
			return answerMemo(&action)
		}
		refuseInvalid("action", action.validate())
	}
	out = appendAction(out[:0], action)
	return out
}

// readRequest decodes the call's message: lent (lend.go) or into fresh memory (blocks.go).
func readRequest(addr uintptr, n int32) (*Request, error) {
	msg, err := input(addr, n)
	if err != nil {
		return nil, err
	}
	if lendRequest {
		return decodeLentRequest(msg)
	}
	req := newRequest()
	return req, decodeRequest(msg, req)
}

// answerMemo answers a continue action: the memo's bytes when it is the last one answered
// (memo.go), else validated and encoded into the memo's own buffer (the host has copied
// the last answer: it is valid only until this call).
func answerMemo(a *Action) []byte {
	if memo.same(a) {
		return memo.encoded
	}
	refuseInvalid("action", a.validate())
	if lendRequest && holdsLent(a) {
		// its text changes with the next request: never remembered (lend.go)
		out = appendAction(out[:0], *a)
		return out
	}
	memo.valid = false
	memo.remember(a, appendAction(memo.encoded[:0], *a))
	return memo.encoded
}

// onResponse is the body of mw_on_response.
func onResponse(addr uintptr, n int32) []byte {
	if responseFn == nil {
		// PERF: nothing would read the decoded response; answer "unchanged" at once.
		out = appendResponseAction(out[:0], ResponseAction{})
		return out
	}
	if !ensureInit() {
		out = appendResponseAction(out[:0], notConfiguredResponse)
		return out
	}
	var resp Response
	msg, err := input(addr, n)
	if err == nil {
		err = decodeResponse(msg, &resp)
	}
	action := internalErrorResponse
	if err != nil {
		Error("mw: cannot read the response, answering 500: " + err.Error())
	} else {
		action = responseFn(&resp)
		refuseInvalid("response action", action.Validate())
	}
	out = appendResponseAction(out[:0], action)
	return out
}

// onInit is the body of mw_init: 0 accepts the config, 1 refuses it.
func onInit(addr uintptr, n int32) int32 {
	msg, err := input(addr, n)
	var cfg Config
	if err == nil {
		cfg, err = decodeConfig(msg)
	}
	if err != nil {
		Error("mw: cannot read the config: " + err.Error())
		initialised = initFailed
		return 1
	}
	return runInit(cfg)
}

// runInit calls the init callback and records the outcome: 0 accepted, 1 refused.
func runInit(cfg Config) int32 {
	if err := initFn(cfg); err != nil {
		Error("mw: config refused: " + err.Error())
		initialised = initFailed
		return 1
	}
	initialised = initDone
	return 0
}

// ensureInit runs the init callback with an empty config if mw_init was never called;
// false when the config was refused (every call then answers 500 "not configured").
func ensureInit() bool {
	if initialised == initPending {
		runInit(Config{})
	}
	return initialised == initDone
}
