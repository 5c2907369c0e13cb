package mw

import "strings"

// Headers is an ordered list of [name, value] pairs; order and repeats are kept.
// Names from the host are lower case; lookups ignore case.
type Headers [][2]string

// Get returns the first value of name, or "" if there is none.
func (h Headers) Get(name string) string {
	v, _ := h.Lookup(name)
	return v
}

// Lookup returns the first value of name and whether it was present.
func (h Headers) Lookup(name string) (string, bool) {
	for _, kv := range h {
		if strings.EqualFold(kv[0], name) {
			return kv[1], true
		}
	}
	return "", false
}

// Values returns every value of name, in order.
func (h Headers) Values(name string) []string {
	var vs []string
	for _, kv := range h {
		if strings.EqualFold(kv[0], name) {
			vs = append(vs, kv[1])
		}
	}
	return vs
}

// Add appends one pair.
func (h *Headers) Add(name, value string) { *h = append(*h, [2]string{name, value}) }
