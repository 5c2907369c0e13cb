package mw

import (
	"bytes"
	"testing"
)

// The zero Action continues and the zero ResponseAction changes nothing.
func TestZeroValues(t *testing.T) {
	if got := appendAction(nil, Action{}); !bytes.Equal(got, readVector(t, "action_continue_empty.msgpack")) {
		t.Errorf("zero Action: % x", got)
	}
	if got := appendResponseAction(nil, ResponseAction{}); !bytes.Equal(got, []byte{0x80}) {
		t.Errorf("zero ResponseAction: % x", got)
	}
}

// Setters return copies: extending a shared base never leaks into other copies.
func TestBuildersDoNotAlias(t *testing.T) {
	base := Continue().SetHeader("a", "1").SetHeader("b", "2").SetCtx("k", "v").RemoveHeader("x")
	one := base.SetHeader("c", "3").SetCtx("k", "one").RemoveHeader("y")
	two := base.SetHeader("d", "4").SetCtx("k", "two").RemoveHeader("z")
	if one.SetHeaders[2][0] != "c" || two.SetHeaders[2][0] != "d" || len(base.SetHeaders) != 2 {
		t.Errorf("headers alias: %v %v %v", base.SetHeaders, one.SetHeaders, two.SetHeaders)
	}
	if base.Ctx["k"] != "v" || one.Ctx["k"] != "one" || two.Ctx["k"] != "two" {
		t.Errorf("ctx alias: %v %v %v", base.Ctx, one.Ctx, two.Ctx)
	}
	if one.RemoveHeaders[1] != "y" || two.RemoveHeaders[1] != "z" {
		t.Errorf("names alias: %v %v", one.RemoveHeaders, two.RemoveHeaders)
	}
}

// An empty query and an empty body are sent, unlike absent ones.
func TestEmptyButPresent(t *testing.T) {
	m := decodeMapOf(t, appendAction(nil, Continue().SetQuery("")))
	if q, ok := m["query"]; !ok || q != "" {
		t.Errorf("empty query: %v", m)
	}
	m = decodeMapOf(t, appendResponseAction(nil, Unchanged().Bytes(nil)))
	if b, ok := m["body"].([]byte); !ok || len(b) != 0 {
		t.Errorf("empty body: %v", m)
	}
}

// ctx keys are written sorted, so the same action always has the same bytes.
func TestCtxSorted(t *testing.T) {
	a := Continue().SetCtx("b", "2").SetCtx("a", "1").SetCtx("c", "3")
	want := []byte("\x82\xa6action\xa8continue\xa3ctx\x83\xa1a\xa11\xa1b\xa12\xa1c\xa13")
	if got := appendAction(nil, a); !bytes.Equal(got, want) {
		t.Errorf("got % x", got)
	}
}

// Continue fields on a respond action are not sent, and vice versa.
func TestKindSelectsFields(t *testing.T) {
	r := Respond(204).SetHeader("x", "y").SetPath("/p")
	if got := appendAction(nil, r); !bytes.Equal(got, readVector(t, "action_respond_minimal.msgpack")) {
		t.Errorf("respond: % x", got)
	}
	c := Continue().Header("x", "y").Text("ignored")
	if got := appendAction(nil, c); !bytes.Equal(got, readVector(t, "action_continue_empty.msgpack")) {
		t.Errorf("continue: % x", got)
	}
}

func decodeMapOf(t *testing.T, b []byte) map[string]any {
	t.Helper()
	v, err := decodeValue(b)
	if err != nil {
		t.Fatal(err)
	}
	return v.(map[string]any)
}
