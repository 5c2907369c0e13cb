package mw

import "testing"

func BenchmarkDecodeRequest(b *testing.B) {
	raw := readVectorB(b, "request_typical.msgpack")
	b.ReportAllocs()
	for b.Loop() {
		var r Request
		if err := decodeRequest(raw, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeResponse(b *testing.B) {
	raw := readVectorB(b, "response_typical.msgpack")
	b.ReportAllocs()
	for b.Loop() {
		var r Response
		if err := decodeResponse(raw, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeAction(b *testing.B) {
	a := Continue().SetHeader("x-request-id", "0123456789abcdef0123456789abcdef").
		SetCtx("request_id", "0123456789abcdef0123456789abcdef").
		SetResponseHeader("x-request-id", "0123456789abcdef0123456789abcdef")
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendAction(buf[:0], a)
	}
}

// sixteenHeaders is a Request with 16 headers of ~60 bytes, as bench/stage_cost.py sends.
func sixteenHeaders() []byte {
	b := appendMapLen(nil, 8)
	b = appendInt(appendStr(b, "v"), 1)
	b = appendStr(appendStr(b, "method"), "GET")
	b = appendStr(appendStr(b, "path"), "/bench/items")
	b = appendStr(appendStr(b, "query"), "limit=10")
	b = appendArrayLen(appendStr(b, "headers"), 16)
	for i := range 16 {
		name := "x-bench-header-" + string(rune('a'+i))
		b = appendStr(appendStr(append(b, 0x92), name), "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv")
	}
	b = appendStr(appendStr(b, "remote_addr"), "127.0.0.1")
	b = appendStr(appendStr(b, "scheme"), "http")
	return appendMapLen(appendStr(b, "ctx"), 0)
}

// BenchmarkOnRequest is one mw_on_request as the host makes it: mw_alloc, copy in, call.
func BenchmarkOnRequest(b *testing.B) {
	benchmarkOnRequest(b, HandleRequest)
}

// BenchmarkOnRequestLent is the same call with the request lent (HandleRequestLent).
func BenchmarkOnRequestLent(b *testing.B) {
	benchmarkOnRequest(b, HandleRequestLent)
}

func benchmarkOnRequest(b *testing.B, register func(func(*Request) Action)) {
	msg := sixteenHeaders()
	action := Continue().SetHeader("x-mwhost-demo", "1").SetResponseHeader("x-mwhost", "wasm")
	saved, lend := requestFn, lendRequest
	defer func() { requestFn, lendRequest = saved, lend }()
	register(func(*Request) Action { return action })
	b.ReportAllocs()
	for b.Loop() {
		buf := alloc(int32(len(msg)))
		copy(buf, msg)
		if out := onRequest(addrOf(buf), int32(len(msg))); len(out) == 0 {
			b.Fatal("no answer")
		}
	}
}
