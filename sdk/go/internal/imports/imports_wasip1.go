//go:build wasip1

// Package imports holds the raw host imports of ABI v1; native builds get stubs.
package imports

import "unsafe"

//go:wasmimport mw log
func hostLog(level int32, ptr unsafe.Pointer, n int32)

// Log hands one line to the host, which copies it during the call.
func Log(level int32, msg string) {
	hostLog(level, unsafe.Pointer(unsafe.StringData(msg)), int32(len(msg)))
}
