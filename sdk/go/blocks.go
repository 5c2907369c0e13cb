package mw

// Fresh memory for each request, carved out of larger blocks.
//
// PERF: in Go's wasm code one heap allocation costs ~0.5 us (measured: a module doing only
// a 1 KiB string copy and a 16-pair slice per call took 1.1 us more per call than one doing
// nothing), more than decoding a 16-header request. A request needs three: its text (one
// string per message, every str a substring of it), its header list and the Request the
// callback gets. The pairs and the Request are cut from blocks allocated once per many
// calls. Nothing is reused: every piece handed out is memory no earlier call got, and a
// block is never written again once cut, so what a callback keeps stays valid and
// unchanged (this is not a pool). The cost: a header list or Request kept past the call
// keeps its whole block alive (2 KiB, 1.3 KiB), and a kept string keeps its message's text
// alive (as any substring does); strings.Clone what you keep for long.

// NOTE: small blocks. With 16 KiB pair blocks one call per GC cycle ran 1.9M wasm
// instructions (fuel) instead of ~0.9M (one allocation per string, and these sizes): a
// stage with a fuel limit between the two would have trapped once per cycle.
const (
	pairBlockLen = 64 // 2 KiB of [name, value] pairs
	pairOwnLen   = 64 // a longer header list gets its own slice
	requestBlock = 8  // Requests per block (~1.3 KiB)
)

var (
	pairBlock    Headers   // the uncut rest of the current block
	requestSlots []Request // the uncut rest of the current block
)

// newText copies msg into one string of its own: every str of the message is a substring
// of it. NOTE: not cut from a block, unlike the pairs and the Request: a middleware that
// keeps a header value (a rate limiter's client key) then keeps this message's text alive,
// and no more. A 32 KiB text block measured faster (~600 wasm instructions, 0.5-1 us per
// request, noisy), but would keep a whole block alive per kept value: a rate limiter
// meeting a new client now and then could keep max_keys blocks, far over a stage's memory
// limit. Round 5: 8 and 16 KiB text blocks measured within the noise in a whole request
// (bench/results/issue13_round5/gofast_results.md): what costs is the fresh memory, not the
// allocation call.
func newText(msg []byte) string { return string(msg) }

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
