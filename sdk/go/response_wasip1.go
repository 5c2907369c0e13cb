//go:build wasip1 && !mw_noresponse

package mw

// mw_on_response is optional in the ABI: the host skips the response phase of a module
// without it, saving a guest call per request. Build with -tags mw_noresponse to drop it.

//go:wasmexport mw_on_response
func mwOnResponse(ptr, n int32) int64 { return packed(onResponse(uintptr(uint32(ptr)), n)) }
