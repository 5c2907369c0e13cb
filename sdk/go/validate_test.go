package mw

import (
	"strings"
	"testing"
)

// An invalid answer is logged and turned into a panic (a trap under wasm), never encoded.
func TestInvalidAnswersAreLoggedThenTrapped(t *testing.T) {
	lines := logged(t)
	HandleRequest(func(*Request) Action { return Respond(100) })
	calls := []func(){func() { onRequest(write(t, readVector(t, "request_typical.msgpack"))) }}
	want := []string{"3 mw: invalid action (ABI.md Validation): status 100 is not a final status within 200..599"}
	if responsePhase { // not in a -tags mw_noresponse build
		HandleResponse(func(*Response) ResponseAction { return Unchanged().SetHeader("x-a", "a\nb") })
		calls = append(calls, func() { onResponse(write(t, readVector(t, "response_typical.msgpack"))) })
		want = append(want, `3 mw: invalid response action (ABI.md Validation): set_headers: the value of "x-a" contains a control character or a character outside Latin-1`)
	}
	for _, call := range calls {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("the invalid answer was encoded")
				}
			}()
			call()
		}()
	}
	if strings.Join(*lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("logged %q", *lines)
	}
}

// The caps are inclusive and Latin-1 values count one per character, as on the wire.
func TestValidateCapsAndSendableValues(t *testing.T) {
	a := Continue()
	for range MaxEntries {
		a = a.SetHeader("x-a", "1")
	}
	if err := a.Validate(); err != nil {
		t.Errorf("100 headers: %v", err)
	}
	if err := a.SetHeader("x-a", "1").Validate(); err == nil {
		t.Error("101 headers accepted")
	}
	if err := Continue().SetHeader("x-a", strings.Repeat("\u00e9", MaxFieldBytes-3)).Validate(); err != nil {
		t.Errorf("64 KiB of Latin-1: %v", err)
	}
	for _, ok := range []string{"J\u00fcrgen", "a\tb", ""} {
		if !ValidHeaderValue(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"a\x00", "\x7f", "\u2603", "\xff"} {
		if ValidHeaderValue(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	if Respond(204).Validate() != nil || Respond(599).Validate() != nil || Continue().SetPath("x").Validate() == nil {
		t.Error("status or path rules")
	}
}
