package mw

import "unsafe"

// Fresh memory for each message, carved out of larger blocks.
//
// PERF: in Go's wasm code one heap allocation costs ~0.5 us (measured: a module doing only
// a 1 KiB string copy and a 16-pair slice per call took 1.1 us more per call than one doing
// nothing), more than decoding a 16-header request. A request needs three: its text, its
// header list and the Request the callback gets. Each is cut from a block allocated once
// per many calls instead. Nothing is reused: every piece handed out is memory no earlier
// call got, and a block is never written again once cut, so what a callback keeps stays
// valid and unchanged (this is not a pool). The cost: a string, header list or Request kept
// past the call keeps its whole block alive (at most the block sizes below), as a
// substring keeps its whole string alive; strings.Clone what you keep for long.

const (
	textBlockBytes = 32 << 10 // one size class below Go's large objects
	textOwnBytes   = 8 << 10  // a longer message gets its own string
	pairBlockLen   = 512      // 16 KiB of [name, value] pairs
	pairOwnLen     = 64       // a longer header list gets its own slice
	requestBlock   = 32       // Requests per block (~5 KiB)
)

var (
	textBlock    []byte  // the rest of the current block: appended to, never rewritten
	pairBlock    Headers // the uncut rest of the current block
	requestSlots []Request
)

// newText copies msg into fresh memory and returns it as a string.
func newText(msg []byte) string {
	if len(msg) == 0 {
		return ""
	}
	if len(msg) > textOwnBytes {
		return string(msg)
	}
	if cap(textBlock)-len(textBlock) < len(msg) {
		textBlock = make([]byte, 0, textBlockBytes)
	}
	start := len(textBlock)
	textBlock = append(textBlock, msg...)
	// NOTE: sound because these bytes are never written again (appends go past them)
	return unsafe.String(&textBlock[start], len(msg))
}

// newHeaders returns n fresh, zeroed pairs; appending to them reallocates (cap == len), so
// a callback's append never reaches the next request's pairs.
func newHeaders(n int) Headers {
	if n > pairOwnLen {
		return make(Headers, n)
	}
	if len(pairBlock) < n {
		pairBlock = make(Headers, pairBlockLen)
	}
	h := pairBlock[:n:n]
	pairBlock = pairBlock[n:]
	return h
}

// newRequest returns a fresh, zeroed Request.
func newRequest() *Request {
	if len(requestSlots) == 0 {
		requestSlots = make([]Request, requestBlock)
	}
	r := &requestSlots[0]
	requestSlots = requestSlots[1:]
	return r
}
