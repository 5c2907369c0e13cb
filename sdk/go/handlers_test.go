//go:build !wasip1

package mw

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"mwhost/sdk/internal/imports"
)

// logged captures log lines for one test and restores the callbacks it may replace.
func logged(t *testing.T) *[]string {
	t.Helper()
	var lines []string
	sink, req, resp, ini, state, lend := imports.LogSink, requestFn, responseFn, initFn, initialised, lendRequest
	imports.LogSink = func(level int32, msg string) {
		lines = append(lines, string(rune('0'+level))+" "+msg)
	}
	initialised = initPending // each test is a fresh instance
	t.Cleanup(func() {
		imports.LogSink, requestFn, responseFn, initFn, initialised, lendRequest = sink, req, resp, ini, state, lend
	})
	return &lines
}

// write does what the host does before a call: mw_alloc, then copy the message in.
func write(t *testing.T, msg []byte) (uintptr, int32) {
	t.Helper()
	buf := alloc(int32(len(msg)))
	if buf == nil || len(buf) != len(msg) {
		t.Fatalf("alloc(%d) = %d bytes", len(msg), len(buf))
	}
	copy(buf, msg)
	return addrOf(buf), int32(len(msg))
}

func decodeMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	v, err := decodeValue(b)
	if err != nil {
		t.Fatalf("output % x: %v", b, err)
	}
	return v.(map[string]any)
}

// The packed result matches ABI.md's worked examples.
func TestPack(t *testing.T) {
	for _, c := range []struct {
		ptr, n uint32
		want   uint64
	}{{16, 1, 68719476737}, {65536, 45, 281474976710701}, {0x8000_0000, 2, 0x8000_0000_0000_0002}} {
		if got := uint64(pack(c.ptr, c.n)); got != c.want {
			t.Errorf("pack(%d, %d) = %d, want %d", c.ptr, c.n, got, c.want)
		}
	}
}

// Without registration a request continues, a response stays unchanged, a config is accepted.
func TestDefaults(t *testing.T) {
	logged(t)
	out := onRequest(write(t, readVector(t, "request_typical.msgpack")))
	if want := readVector(t, "action_continue_empty.msgpack"); !bytes.Equal(out, want) {
		t.Errorf("request: % x", out)
	}
	out = onResponse(write(t, readVector(t, "response_typical.msgpack")))
	if want := readVector(t, "response_action_empty.msgpack"); !bytes.Equal(out, want) {
		t.Errorf("response: % x", out)
	}
	if rc := onInit(write(t, readVector(t, "config_example.msgpack"))); rc != 0 {
		t.Errorf("init: %d", rc)
	}
}

// Registered callbacks get the decoded message and their answer is encoded into out.
func TestRegisteredCallbacks(t *testing.T) {
	logged(t)
	HandleRequest(func(req *Request) Action {
		return Respond(418).Text(req.Path + " " + req.Headers.Values("x-forwarded-for")[1])
	})
	var got Config
	HandleInit(func(cfg Config) error { got = cfg; return nil })

	out := onRequest(write(t, readVector(t, "request_typical.msgpack")))
	if m := decodeMap(t, out); m["status"] != int64(418) || string(m["body"].([]byte)) != "/api/items 10.0.0.2" {
		t.Errorf("request answer: %v", m)
	}
	onInit(write(t, readVector(t, "config_example.msgpack")))
	if n, _ := got.Int("limit", 0); n != 10 {
		t.Errorf("config: %v", got)
	}
}

// A registered response callback gets the decoded response.
func TestRegisteredResponseCallback(t *testing.T) {
	needResponsePhase(t)
	logged(t)
	HandleResponse(func(resp *Response) ResponseAction {
		return Unchanged().SetHeader("x-ctx", resp.Ctx["request_id"])
	})
	out := onResponse(write(t, readVector(t, "response_typical.msgpack")))
	if m := decodeMap(t, out); m["set_headers"].([]any)[0].([]any)[1] != "r-42" {
		t.Errorf("response answer: %v", m)
	}
}

func needResponsePhase(t *testing.T) {
	if !responsePhase {
		t.Skip("built with -tags mw_noresponse")
	}
}

// HandleX(nil) keeps the current callback instead of installing a nil one.
func TestNilRegistrationIgnored(t *testing.T) {
	needResponsePhase(t)
	logged(t)
	HandleRequest(nil)
	HandleResponse(nil)
	HandleInit(nil)
	if requestFn == nil || responseFn != nil || initFn == nil {
		t.Fatal("nil callback installed")
	}
}

// An undecodable request is logged at error level and answered with 500.
func TestUndecodableRequest(t *testing.T) {
	lines := logged(t)
	out := onRequest(write(t, []byte{0x81, 0xa1}))
	if m := decodeMap(t, out); m["action"] != "respond" || m["status"] != int64(500) {
		t.Errorf("answer: %v", m)
	}
	if len(*lines) != 1 || !strings.HasPrefix((*lines)[0], "3 mw: cannot read the request") {
		t.Errorf("log: %q", *lines)
	}
}

// An undecodable response turns into a 500 when a callback would have read it; the
// default callback does not read the message at all.
func TestUndecodableResponse(t *testing.T) {
	needResponsePhase(t)
	lines := logged(t)
	if out := onResponse(write(t, []byte{0xc1})); !bytes.Equal(out, []byte{0x80}) {
		t.Errorf("default: % x", out)
	}
	responseFn = func(*Response) ResponseAction { return Unchanged() } // also with mw_noresponse
	out := onResponse(write(t, []byte{0xc1}))
	if m := decodeMap(t, out); m["status"] != int64(500) {
		t.Errorf("answer: %v", m)
	}
	if len(*lines) != 1 || !strings.HasPrefix((*lines)[0], "3 mw: cannot read the response") {
		t.Errorf("log: %q", *lines)
	}
}

// A config that is not a map, or one the callback rejects, is refused with a logged reason.
func TestInitRefusals(t *testing.T) {
	lines := logged(t)
	if rc := onInit(write(t, []byte{0x91, 0x01})); rc != 1 {
		t.Errorf("array config: %d", rc)
	}
	HandleInit(func(Config) error { return errors.New("no thanks") })
	if rc := onInit(write(t, []byte{0x80})); rc != 1 {
		t.Errorf("refused config: %d", rc)
	}
	if len(*lines) != 2 || (*lines)[1] != "3 mw: config refused: no thanks" {
		t.Errorf("log: %q", *lines)
	}
}

// Without mw_init the init callback still runs exactly once, with an empty config, before
// the first request (the same behaviour as the Rust SDK).
func TestInitRunsOnceWithoutMwInit(t *testing.T) {
	logged(t)
	var configs []Config
	HandleInit(func(cfg Config) error { configs = append(configs, cfg); return nil })
	request := readVector(t, "request_minimal.msgpack")
	onRequest(write(t, request))
	onRequest(write(t, request))
	if len(configs) != 1 || len(configs[0]) != 0 {
		t.Errorf("init calls: %v", configs)
	}
	onInit(write(t, []byte{0x80}))
	if len(configs) != 2 {
		t.Errorf("mw_init must call the callback: %v", configs)
	}
}

// A refused config (through mw_init or the empty one) answers every later call 500.
func TestRefusedInitAnswers500(t *testing.T) {
	logged(t)
	HandleInit(func(cfg Config) error { return errors.New("prefix is required") })
	responseFn = func(*Response) ResponseAction { return Unchanged() } // also with mw_noresponse
	action := decodeMap(t, onRequest(write(t, readVector(t, "request_minimal.msgpack"))))
	if action["status"] != int64(500) || string(action["body"].([]byte)) != "middleware not configured\n" {
		t.Errorf("request phase: %v", action)
	}
	edit := decodeMap(t, onResponse(write(t, readVector(t, "response_typical.msgpack"))))
	if edit["status"] != int64(500) {
		t.Errorf("response phase: %v", edit)
	}
}

// Only the last mw_alloc buffer is read, and never past its end.
func TestInputChecks(t *testing.T) {
	logged(t)
	addr, n := write(t, []byte{0x80})
	if _, err := input(addr, n+1); err == nil {
		t.Error("read past the buffer")
	}
	if _, err := input(addr+1, n); err == nil {
		t.Error("read from a foreign address")
	}
	if _, err := input(addr, -1); err == nil {
		t.Error("negative length")
	}
	if msg, err := input(addr, n); err != nil || len(msg) != 1 {
		t.Errorf("valid input: %v", err)
	}
	if out := onRequest(addr+1, n); decodeMap(t, out)["status"] != int64(500) {
		t.Error("a foreign address did not answer 500")
	}
}

// mw_alloc refuses negative and huge sizes, returns non-empty storage for 0, and reuses.
func TestAlloc(t *testing.T) {
	if alloc(-1) != nil || alloc(maxAlloc+1) != nil {
		t.Error("out-of-range size accepted")
	}
	zero := alloc(0)
	if zero == nil || cap(zero) == 0 {
		t.Error("alloc(0) has no address")
	}
	a := alloc(10)
	if b := alloc(5); addrOf(a) != addrOf(b) || len(b) != 5 {
		t.Error("a smaller buffer was not reused")
	}
}

// What a callback keeps from one request (the Request, its header list, its strings) is
// never overwritten by later requests, and appending to a kept header list never reaches
// the next request's headers: the blocks hand out fresh memory only.
func TestKeptRequestsStayUnchanged(t *testing.T) {
	logged(t)
	var kept []*Request
	var lists []Headers // the lists as decoded (the callback's append makes a new one)
	HandleRequest(func(req *Request) Action {
		kept = append(kept, req)
		lists = append(lists, req.Headers)
		req.Headers = append(req.Headers, [2]string{"x-added", "by the callback"})
		return Continue()
	})
	// past several Request and pair blocks, shorter and shorter: mw_alloc's buffer is
	// reused every time
	const n = 3 * requestBlock
	for i := range n {
		msg := appendMapLen(nil, 2)
		msg = appendStr(appendStr(msg, "path"), "/r"+strings.Repeat("x", n-i))
		msg = appendArrayLen(appendStr(msg, "headers"), 20)
		for j := range 20 {
			msg = appendStr(appendStr(append(msg, 0x92), "h"), strings.Repeat("v", n-i+j))
		}
		onRequest(write(t, msg))
	}
	for i, req := range kept {
		if req.Path != "/r"+strings.Repeat("x", n-i) || len(req.Headers) != 21 {
			t.Fatalf("request %d changed: %q, %d headers", i, req.Path, len(req.Headers))
		}
		for j, kv := range append(req.Headers[:20:20], lists[i]...) {
			if kv != [2]string{"h", strings.Repeat("v", n-i+j%20)} {
				t.Fatalf("request %d header %d changed: %q", i, j, kv)
			}
		}
		if i > 0 && req == kept[i-1] {
			t.Fatal("a Request was handed out twice")
		}
	}
}
