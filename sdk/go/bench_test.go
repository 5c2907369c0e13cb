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
