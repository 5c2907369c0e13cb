package mw

import "unsafe"

// The lent request (HandleRequestLent): the Request, its header list, its ctx map, its body
// and every string in them are the SDK's memory, lent to the callback for the call and
// reused by the next one.
//
// PERF: a kept request (HandleRequest) needs fresh memory every call: a copy of the
// message's text, a header list and a Request (blocks.go). In Go's wasm code that memory,
// not the allocation call, is what costs (~1.5-2.5 us per request in a whole stage,
// bench/results/issue13_round5/gofast_results.md). A lent request writes none: its strings
// are substrings of mw_alloc's buffer `in` (the host's message for the whole call; the next
// call's message overwrites it), and the header list, ctx map and Request are one of each,
// reused and zeroed every call.

// HandleRequestLent registers the request-phase callback, like HandleRequest, with one
// difference: the request is lent for the call. The Request, its Headers, Ctx and Body, and
// every string in them are valid only until the callback returns; the next request reuses
// the same memory. strings.Clone a string you keep (a map key, a package-level variable),
// and keep no pointer to the Request, its header list or its ctx map.
//
// An action returned by the callback may quote the request freely (a header value echoed
// in a response header): it is validated and encoded before the call returns, while the
// request is still valid. Use it when the callback keeps nothing of the request past the
// call; it saves the fresh memory a kept request needs each call. Call it from an init
// function; it replaces a callback registered with HandleRequest, and the other way round.
func HandleRequestLent(fn func(req *Request) Action) {
	if fn != nil {
		requestFn, lendRequest = fn, true
	}
}

// lendRequest: requestFn was registered with HandleRequestLent.
var lendRequest bool

// The lent memory, reused every call (only while lendRequest).
var (
	lentRequest   Request
	lentPairs     Headers           // the header list's backing array
	lentPairsUsed int               // pairs of lentPairs that may hold a string
	lentCtx       map[string]string // the ctx map, cleared and refilled
)

// decodeLentRequest decodes msg into the reused Request, every string a substring of msg.
// Nothing of the last request survives: the Request is zeroed first, and the pairs and ctx
// entries this request does not overwrite are cleared after (the callback cannot reach them,
// but they would keep a replaced mw_alloc buffer alive).
func decodeLentRequest(msg []byte) (*Request, error) {
	r := &lentRequest
	*r = Request{}
	err := decodeRequestWith(&decoder{buf: msg, text: lentText(msg), lent: true}, r)
	if n := len(r.Headers); n < lentPairsUsed {
		clear(lentPairs[n:lentPairsUsed])
	}
	lentPairsUsed = len(r.Headers)
	if r.Ctx == nil && len(lentCtx) > 0 {
		clear(lentCtx)
	}
	return r, err
}

// lentText is msg as a string, without a copy. NOTE: a Go string must never change while
// it is reachable; these do once the next message is written into msg, which is why they
// are lent for the call only (the rule of HandleRequestLent).
func lentText(msg []byte) string { return unsafe.String(unsafe.SliceData(msg), len(msg)) }

// lentHeaders returns the reused header list with n pairs (cap == len, so a callback's
// append reallocates and never reaches the reused array). Every pair is overwritten by the
// decoder, or the list is dropped on an error (decodeLentRequest then clears it).
func lentHeaders(n int) Headers {
	if n > cap(lentPairs) {
		lentPairs, lentPairsUsed = make(Headers, max(n, pairBlockLen)), 0
	}
	lentPairsUsed = max(lentPairsUsed, n)
	return lentPairs[:n:n]
}

// lentCtxMap returns the reused ctx map, emptied.
func lentCtxMap(n int) map[string]string {
	if lentCtx == nil {
		lentCtx = make(map[string]string, n)
	}
	clear(lentCtx)
	return lentCtx
}

// holdsLent reports whether any string of a continue action points into the lent message
// (mw_alloc's buffer). NOTE: the memo (memo.go) takes "the same address and length" for
// "the same text", which Go's immutable strings guarantee and lent strings do not: the
// next request can put new text at the same offset of the same buffer. An action holding
// a lent string is therefore never remembered (answerMemo). Its check runs only on a memo
// miss: a hit means every string is one the memo holds, and the memo never holds a lent
// one (it keeps its strings alive, so no later mw_alloc buffer can overlap them either).
func holdsLent(a *Action) bool {
	lo := addrOf(in)
	hi := lo + uintptr(cap(in))
	return pairsIn(a.SetHeaders, lo, hi) || pairsIn(a.ResponseHeaders, lo, hi) ||
		stringsIn(a.RemoveHeaders, lo, hi) || optionalIn(a.Path, lo, hi) || optionalIn(a.Query, lo, hi)
}

func pairsIn(h Headers, lo, hi uintptr) bool {
	for i := range h {
		if within(h[i][0], lo, hi) || within(h[i][1], lo, hi) {
			return true
		}
	}
	return false
}

func stringsIn(names []string, lo, hi uintptr) bool {
	for _, s := range names {
		if within(s, lo, hi) {
			return true
		}
	}
	return false
}

func optionalIn(s *string, lo, hi uintptr) bool { return s != nil && within(*s, lo, hi) }

// within: s's text lies in [lo, hi) (an empty string has no text to change).
func within(s string, lo, hi uintptr) bool {
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	return len(s) > 0 && p >= lo && p < hi
}
