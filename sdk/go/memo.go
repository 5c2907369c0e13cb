package mw

import "unsafe"

// PERF: the last continue action's encoding, kept so that the same answer again is neither
// validated nor encoded again. A middleware that answers with a shared action (add_header
// builds one at init; cors, security headers) gives the same answer every call, and in
// Go's wasm code validating and encoding even a two-header action cost more than decoding
// the request's fixed fields (bench/results/issue13_round5/gofast_results.md).
//
// NOTE: "the same" means every field holds the same strings: the same bytes at the same
// address (Go strings are immutable, so equal data pointers and lengths mean equal text).
// The pairs are compared, not the slices, so a caller that rewrites a shared action's
// backing array between calls gets its new answer encoded. Nothing of a request is
// cached: the memo is only ever the encoding of the action being answered. Actions with
// Ctx (a map a caller may change in place) or a respond action (a mutable Body) are
// always encoded.
type actionMemo struct {
	valid           bool
	setHeaders      Headers // copies of the pairs (string headers, not the text)
	removeHeaders   []string
	responseHeaders Headers
	hasPath         bool
	path            string
	hasQuery        bool
	query           string
	encoded         []byte // the answer's bytes; rewritten only on the next miss
}

var memo actionMemo

// memoable reports whether a's encoding depends only on strings (see actionMemo).
func memoable(a *Action) bool { return a.Kind == ActionContinue && len(a.Ctx) == 0 }

// same reports whether a is the memo's action.
func (m *actionMemo) same(a *Action) bool {
	return m.valid && samePairs(m.setHeaders, a.SetHeaders) &&
		sameStrings(m.removeHeaders, a.RemoveHeaders) &&
		samePairs(m.responseHeaders, a.ResponseHeaders) &&
		sameOptional(m.hasPath, m.path, a.Path) && sameOptional(m.hasQuery, m.query, a.Query)
}

// remember records a (already validated) and its encoding.
func (m *actionMemo) remember(a *Action, encoded []byte) {
	m.setHeaders = append(m.setHeaders[:0], a.SetHeaders...)
	m.removeHeaders = append(m.removeHeaders[:0], a.RemoveHeaders...)
	m.responseHeaders = append(m.responseHeaders[:0], a.ResponseHeaders...)
	m.hasPath, m.path = optional(a.Path)
	m.hasQuery, m.query = optional(a.Query)
	m.encoded = encoded
	m.valid = true
}

func optional(s *string) (bool, string) {
	if s == nil {
		return false, ""
	}
	return true, *s
}

// identical: the same text at the same address (an empty string equals any other).
func identical(a, b string) bool {
	return len(a) == len(b) && (len(a) == 0 || unsafe.StringData(a) == unsafe.StringData(b))
}

func samePairs(a, b Headers) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !identical(a[i][0], b[i][0]) || !identical(a[i][1], b[i][1]) {
			return false
		}
	}
	return true
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !identical(a[i], b[i]) {
			return false
		}
	}
	return true
}

func sameOptional(has bool, s string, p *string) bool {
	if p == nil {
		return !has
	}
	return has && identical(s, *p)
}
