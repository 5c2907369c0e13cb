//go:build !wasip1

package mw

import (
	"bytes"
	"testing"
)

// answers runs one mw_on_request per action the callback returns, and copies each answer
// (the host copies it at once: the buffer is the guest's again on the next call).
func answers(t *testing.T, next func() Action, n int) [][]byte {
	t.Helper()
	HandleRequest(func(*Request) Action { return next() })
	var out [][]byte
	for range n {
		out = append(out, bytes.Clone(onRequest(write(t, readVector(t, "request_typical.msgpack")))))
	}
	return out
}

// A shared action answered again is the memo's bytes, the same as encoding it afresh.
func TestSameActionAnsweredFromTheMemo(t *testing.T) {
	logged(t)
	shared := Continue().SetHeader("x-a", "1").RemoveHeader("x-b").SetPath("/p").SetResponseHeader("x-c", "3")
	got := answers(t, func() Action { return shared }, 3)
	want := appendAction(nil, shared)
	for i, b := range got {
		if !bytes.Equal(b, want) {
			t.Fatalf("answer %d: % x, want % x", i, b, want)
		}
	}
	if !memo.same(&shared) {
		t.Fatal("the shared action is not the memo's")
	}
}

// Rewriting a shared action's backing array or its path between calls is seen: the memo
// compares the strings themselves, never the slice or pointer that holds them.
func TestMemoSeesEditsInPlace(t *testing.T) {
	logged(t)
	shared := Continue().SetHeader("x-a", "1").SetPath("/one")
	step := 0
	got := answers(t, func() Action {
		switch step++; step {
		case 2:
			shared.SetHeaders[0][1] = "2"
		case 3:
			*shared.Path = "/three"
		case 4:
			shared.SetHeaders = shared.SetHeaders[:0]
		}
		return shared
	}, 4)
	want := []Action{
		Continue().SetHeader("x-a", "1").SetPath("/one"),
		Continue().SetHeader("x-a", "2").SetPath("/one"),
		Continue().SetHeader("x-a", "2").SetPath("/three"),
		Continue().SetPath("/three"),
	}
	for i := range want {
		if w := appendAction(nil, want[i]); !bytes.Equal(got[i], w) {
			t.Errorf("answer %d: % x, want % x", i, got[i], w)
		}
	}
}

// An action turned invalid in place is validated again and refused, not answered from
// the memo.
func TestMemoNeverSkipsValidatingAChangedAction(t *testing.T) {
	lines := logged(t)
	shared := Continue().SetHeader("x-a", "1")
	answers(t, func() Action { return shared }, 1)
	shared.SetHeaders[0][1] = "a\nb"
	defer func() {
		if recover() == nil || len(*lines) != 1 {
			t.Errorf("the changed action was answered; logged %q", *lines)
		}
	}()
	onRequest(write(t, readVector(t, "request_typical.msgpack")))
}

// Actions with ctx (a map the caller may change in place) and respond actions are encoded
// every time, and leave the memo as it was.
func TestCtxAndRespondAreAlwaysEncoded(t *testing.T) {
	logged(t)
	ctx := Continue().SetCtx("k", "1")
	respond := Respond(403).Text("no")
	step := 0
	got := answers(t, func() Action {
		switch step++; step {
		case 2:
			ctx.Ctx["k"] = "2"
		case 3:
			return respond
		case 4:
			respond.Body[0] = 'N'
			return respond
		}
		return ctx
	}, 4)
	want := []Action{Continue().SetCtx("k", "1"), Continue().SetCtx("k", "2"), Respond(403).Text("no"), Respond(403).Text("No")}
	for i := range want {
		if w := appendAction(nil, want[i]); !bytes.Equal(got[i], w) {
			t.Errorf("answer %d: % x, want % x", i, got[i], w)
		}
	}
	if memo.same(&ctx) || memo.same(&respond) {
		t.Error("a ctx or respond action was memoised")
	}
}
