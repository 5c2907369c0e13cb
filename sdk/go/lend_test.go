//go:build !wasip1

package mw

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// lentCall runs one mw_on_request with the lent callback fn and returns a copy of the
// answer (the host copies it at once).
func lentCall(t *testing.T, msg []byte) []byte {
	t.Helper()
	return bytes.Clone(onRequest(write(t, msg)))
}

// request builds a Request message with the given path, headers and optional ctx and body.
func request(path string, headers Headers, ctx map[string]string, body []byte) []byte {
	n := 3
	if ctx != nil {
		n++
	}
	if body != nil {
		n++
	}
	b := appendMapLen(nil, n)
	b = appendInt(appendStr(b, "v"), 1)
	b = appendStr(appendStr(b, "path"), path)
	b = appendArrayLen(appendStr(b, "headers"), len(headers))
	for _, kv := range headers {
		b = appendStr(appendStr(append(b, 0x92), kv[0]), kv[1])
	}
	if ctx != nil {
		b = appendStrMap(appendStr(b, "ctx"), ctx)
	}
	if body != nil {
		b = appendBin(appendStr(b, "body"), body)
	}
	return b
}

// Every valid request vector decodes through the lent path exactly as through the kept
// path, and both match the vector's JSON twin.
func TestLentDecodeVectors(t *testing.T) {
	seen := 0
	for _, v := range loadIndex(t) {
		if !v.Valid || v.Kind != "request" {
			continue
		}
		raw := readVector(t, v.Name+".msgpack")
		var kept Request
		if err := decodeRequest(raw, &kept); err != nil {
			t.Fatalf("%s kept: %v", v.Name, err)
		}
		lent, err := decodeLentRequest(bytes.Clone(raw))
		if err != nil {
			t.Fatalf("%s lent: %v", v.Name, err)
		}
		if !reflect.DeepEqual(requestShape(lent), requestShape(&kept)) {
			t.Errorf("%s:\n lent %v\n kept %v", v.Name, requestShape(lent), requestShape(&kept))
		}
		if want := any(twin(t, v.Name)); !reflect.DeepEqual(asJSON(t, requestShape(lent)), want) {
			t.Errorf("%s lent:\n got %v\nwant %v", v.Name, asJSON(t, requestShape(lent)), want)
		}
		seen++
	}
	if seen < 3 {
		t.Fatalf("only %d request vectors", seen)
	}
}

// The callback gets strings inside mw_alloc's buffer (no copy), and one reused Request.
func TestLentRequestAliasesTheMessage(t *testing.T) {
	logged(t)
	var reqs []*Request
	var inside []bool
	HandleRequestLent(func(req *Request) Action {
		reqs = append(reqs, req)
		lo := addrOf(in)
		inside = append(inside, within(req.Path, lo, lo+uintptr(cap(in))) &&
			within(req.Headers[0][1], lo, lo+uintptr(cap(in))))
		return Continue()
	})
	for range 2 {
		lentCall(t, request("/a", Headers{{"x-a", "1"}}, nil, nil))
	}
	if !inside[0] || !inside[1] || reqs[0] != reqs[1] || reqs[0] != &lentRequest {
		t.Fatalf("strings in the message: %v; the same Request: %v", inside, reqs[0] == reqs[1])
	}
}

// A shorter second request shows nothing of the first: not its headers, ctx or body, and
// the reused pairs past its own are cleared.
func TestLentRequestIsZeroedEachCall(t *testing.T) {
	logged(t)
	var got []Request
	var lists []Headers
	HandleRequestLent(func(req *Request) Action {
		got = append(got, Request{Path: strings.Clone(req.Path), Ctx: req.Ctx, Body: req.Body})
		lists = append(lists, req.Headers)
		return Continue()
	})
	first := Headers{{"x-a", "1"}, {"x-b", "2"}, {"x-c", "3"}, {"x-d", "4"}}
	lentCall(t, request("/first", first, map[string]string{"k": "v"}, []byte("body")))
	if lists[0].Get("x-d") != "4" || got[0].Ctx["k"] != "v" || string(got[0].Body) != "body" {
		t.Fatalf("first request: %q %v %q", lists[0], got[0].Ctx, got[0].Body)
	}
	lentCall(t, request("/2", Headers{{"x-z", "9"}}, nil, nil))
	second := lists[1]
	if got[1].Path != "/2" || len(second) != 1 || cap(second) != 1 || second[0] != [2]string{"x-z", "9"} {
		t.Fatalf("second request: %q, headers %q (cap %d)", got[1].Path, second, cap(second))
	}
	if got[1].Ctx != nil || got[1].Body != nil || len(lentCtx) != 0 {
		t.Fatalf("second request: ctx %v, body %q, reused ctx %v", got[1].Ctx, got[1].Body, lentCtx)
	}
	for i, kv := range lentPairs[1:] {
		if kv != [2]string{} {
			t.Fatalf("reused pair %d still holds %q", i+1, kv)
		}
	}
	lentCall(t, request("/3", nil, nil, nil))
	if len(lists[2]) != 0 || lentPairs[0] != [2]string{} {
		t.Fatalf("a request without headers: %q, reused pair 0 %q", lists[2], lentPairs[0])
	}
}

// Appending to the lent header list or body reallocates: the rest of the message (the
// request's other strings) is never overwritten.
func TestLentAppendsNeverWriteTheMessage(t *testing.T) {
	logged(t)
	var after Request
	HandleRequestLent(func(req *Request) Action {
		req.Body = append(req.Body, "XXXXXXXXXXXXXXXX"...)
		req.Headers = append(req.Headers, [2]string{"x-added", "1"})
		after = Request{Path: strings.Clone(req.Path), Headers: Headers{{strings.Clone(lentPairs[0][0]), strings.Clone(lentPairs[0][1])}}}
		return Continue()
	})
	msg := appendMapLen(nil, 3)
	msg = appendBin(appendStr(msg, "body"), []byte("b"))
	msg = appendStr(appendStr(msg, "path"), "/kept-intact")
	msg = appendArrayLen(appendStr(msg, "headers"), 1)
	msg = appendStr(appendStr(append(msg, 0x92), "x-a"), "1")
	lentCall(t, msg)
	if after.Path != "/kept-intact" || after.Headers[0] != [2]string{"x-a", "1"} || cap(lentPairs) < 2 || lentPairs[1] != [2]string{} {
		t.Fatalf("the message was overwritten: %q %q", after.Path, after.Headers)
	}
}

// The memo is not fooled by lent strings: two requests with different values at the same
// offset of the same buffer, each echoed into the action, get their own answers (an action
// holding a lent string is never remembered). Every field the memo compares is checked.
func TestMemoNotFooledByLentStrings(t *testing.T) {
	echoes := []struct {
		name string
		echo func(v string) Action
	}{
		{"set header value", func(v string) Action { return Continue().SetHeader("x-echo", v) }},
		{"set header name", func(v string) Action { return Continue().SetHeader("x-"+v, "1") }},
		{"response header value", func(v string) Action { return Continue().SetResponseHeader("x-echo", v) }},
		{"remove header", func(v string) Action { return Continue().RemoveHeader(v) }},
		{"path", func(v string) Action { return Continue().SetPath("/" + v) }},
		{"query", func(v string) Action { return Continue().SetQuery(v) }},
	}
	for _, e := range echoes {
		name, echo := e.name, e.echo
		logged(t)
		HandleRequestLent(func(req *Request) Action {
			v := req.Headers.Get("x-id")
			if name == "set header name" || name == "path" {
				// the SDK's strings are concatenated into fresh ones here: echo the raw one
				a := echo("a")
				if name == "path" {
					a.Path = &req.Path
				} else {
					a.SetHeaders[0][0] = req.Headers[0][0]
				}
				return a
			}
			return echo(v)
		})
		for _, id := range []string{"aaaa", "bbbb", "bbbb", "cccc"} {
			path := "/" + id
			msg := request(path, Headers{{"x-" + id, "1"}, {"x-id", id}}, nil, nil)
			want := echo(id)
			if name == "path" {
				want = Continue().SetPath(path)
			} else if name == "set header name" {
				want = Continue().SetHeader("x-"+id, "1")
			}
			if got, w := lentCall(t, msg), appendAction(nil, want); !bytes.Equal(got, w) {
				t.Fatalf("%s, id %s: answered % x, want % x", name, id, got, w)
			}
		}
	}
}

// A lent action that is not lent (built at init, as add_header_go's) is still answered
// from the memo.
func TestLentModeKeepsTheMemoForSharedActions(t *testing.T) {
	logged(t)
	shared := Continue().SetHeader("x-a", "1").SetResponseHeader("x-b", "2")
	HandleRequestLent(func(*Request) Action { return shared })
	for range 3 {
		if got := lentCall(t, readVector(t, "request_typical.msgpack")); !bytes.Equal(got, appendAction(nil, shared)) {
			t.Fatalf("answered % x", got)
		}
	}
	if !memo.same(&shared) {
		t.Fatal("the shared action is not the memo's")
	}
}

// An action quoting the lent request is validated and encoded before the call returns:
// the answer holds its own bytes, unchanged when the host writes the next message into
// the buffer; and an invalid lent value is refused (validated while still valid).
func TestLentActionEncodedBeforeReturn(t *testing.T) {
	lines := logged(t)
	HandleRequestLent(func(req *Request) Action {
		v := req.Headers.Get("x-id")
		if req.Path == "/respond" {
			return Respond(200).Header("x-echo", v).Bytes([]byte(v))
		}
		return Continue().SetHeader("x-echo", v).SetCtx("id", v).SetResponseHeader("x-echo", v)
	})
	for _, path := range []string{"/respond", "/continue"} {
		msg := request(path, Headers{{"x-id", "original-value"}}, nil, nil)
		out := onRequest(write(t, msg))
		lo, hi := addrOf(in), addrOf(in)+uintptr(cap(in))
		if p := addrOf(out); p+uintptr(len(out)) > lo && p < hi {
			t.Fatalf("%s: the answer overlaps the lent message", path)
		}
		for i := range in {
			in[i] = 'Z' // the host writes the next message
		}
		if n := strings.Count(string(out), "original-value"); n < 2 {
			t.Fatalf("%s: the answer % x quotes the value %d times", path, out, n)
		}
	}
	defer func() {
		if recover() == nil || len(*lines) != 1 || !strings.Contains((*lines)[0], "invalid action") {
			t.Errorf("an invalid lent value was answered; logged %q", *lines)
		}
	}()
	onRequest(write(t, request("/continue", Headers{{"x-id", "bad\x01value"}}, nil, nil)))
}

// HandleRequest and HandleRequestLent replace each other; nil keeps the current one.
func TestLentRegistration(t *testing.T) {
	logged(t)
	HandleRequestLent(func(*Request) Action { return Continue() })
	HandleRequestLent(nil)
	if !lendRequest {
		t.Fatal("HandleRequestLent(nil) changed the mode")
	}
	HandleRequest(func(*Request) Action { return Continue() })
	if lendRequest {
		t.Fatal("HandleRequest left the request lent")
	}
	var kept *Request
	HandleRequest(func(req *Request) Action { kept = req; return Continue() })
	lentCall(t, request("/k", nil, nil, nil))
	if kept == &lentRequest {
		t.Fatal("a kept callback got the lent Request")
	}
}

// A lent 16-header request with a shared action allocates nothing per call.
func TestLentCallAllocatesNothing(t *testing.T) {
	logged(t)
	msg := sixteenHeaders()
	action := Continue().SetHeader("x-mwhost-demo", "1").SetResponseHeader("x-mwhost", "wasm")
	HandleRequestLent(func(*Request) Action { return action })
	ctx := request("/c", Headers{{"x-a", "1"}}, map[string]string{"k": "v"}, []byte("body"))
	for name, m := range map[string][]byte{"16 headers": msg, "ctx and body": ctx} {
		lentCall(t, m) // the first call sizes the reused memory
		allocs := testing.AllocsPerRun(200, func() {
			buf := alloc(int32(len(m)))
			copy(buf, m)
			onRequest(addrOf(buf), int32(len(m)))
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per call", name, allocs)
		}
	}
}
