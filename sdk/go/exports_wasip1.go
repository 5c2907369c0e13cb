//go:build wasip1

package mw

// The ABI v1 exports, declared once here so a middleware only registers callbacks.
// Each one converts wasm types and delegates to a function that native tests can call.
// mw_on_response is in response_wasip1.go.

//go:wasmexport mw_abi_version
func mwABIVersion() int32 { return ABIVersion }

//go:wasmexport mw_alloc
func mwAlloc(size int32) int32 {
	buf := alloc(size)
	if buf == nil {
		return 0
	}
	return int32(addrOf(buf))
}

//go:wasmexport mw_on_request
func mwOnRequest(ptr, n int32) int64 { return packed(onRequest(uintptr(uint32(ptr)), n)) }

//go:wasmexport mw_init
func mwInit(ptr, n int32) int32 { return onInit(uintptr(uint32(ptr)), n) }

// packed relies on wasm addresses fitting 32 bits.
func packed(b []byte) int64 { return pack(uint32(addrOf(b)), uint32(len(b))) }
