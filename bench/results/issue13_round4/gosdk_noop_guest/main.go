// Command noop is the floor of a Go guest call (issue 13, round 4): two go:wasmexport entries
// (mw_alloc, mw_on_request) and a constant answer, no SDK. Build:
//
//	GOTOOLCHAIN=local GOPROXY=off GOOS=wasip1 GOARCH=wasm ../../../../.venv/bin/go build \
//	  -buildmode=c-shared -trimpath -ldflags="-s -w" -o /tmp/gosdk/noop.wasm .
package main

import "unsafe"

var in = make([]byte, 4096)
var out = []byte{0x83, 0xa6, 'a', 'c', 't', 'i', 'o', 'n', 0xa8, 'c', 'o', 'n', 't', 'i', 'n', 'u', 'e',
	0xab, 's', 'e', 't', '_', 'h', 'e', 'a', 'd', 'e', 'r', 's', 0x91, 0x92, 0xad, 'x', '-', 'm', 'w', 'h', 'o', 's', 't', '-', 'd', 'e', 'm', 'o', 0xa1, '1',
	0xb0, 'r', 'e', 's', 'p', 'o', 'n', 's', 'e', '_', 'h', 'e', 'a', 'd', 'e', 'r', 's', 0x91, 0x92, 0xa8, 'x', '-', 'm', 'w', 'h', 'o', 's', 't', 0xa4, 'w', 'a', 's', 'm'}

//go:wasmexport mw_abi_version
func abi() int32 { return 1 }

//go:wasmexport mw_alloc
func alloc(n int32) int32 {
	if int(n) > len(in) {
		in = make([]byte, n)
	}
	return int32(uintptr(unsafe.Pointer(&in[0])))
}

//go:wasmexport mw_on_request
func onRequest(p, n int32) int64 {
	return int64(uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | uint64(len(out)))
}

func main() {}
