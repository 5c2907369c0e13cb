package mw

import (
	"encoding/binary"
	"math"
)

// Append-style msgpack encoders that always choose the smallest format, as msgpack-python
// does when it writes the golden vectors.

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
}

// appendInt writes non-negative values as unsigned, as msgpack-python does.
func appendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return appendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

// appendHead writes a length header: fix is the fix-format base (0 if none), fixMax its
// largest length, and w8/w16/w32 the sized formats (0 if absent).
func appendHead(b []byte, n int, fix byte, fixMax int, w8, w16, w32 byte) []byte {
	switch {
	case fix != 0 && n <= fixMax:
		return append(b, fix|byte(n))
	case w8 != 0 && n <= math.MaxUint8:
		return append(b, w8, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, w16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, w32), uint32(n))
}

func appendStr(b []byte, s string) []byte {
	if len(s) > 31 {
		return appendLongStr(b, s)
	}
	// PERF: fixstr (most names and values) inline at the caller
	return append(append(b, 0xa0|byte(len(s))), s...)
}

func appendLongStr(b []byte, s string) []byte {
	return append(appendHead(b, len(s), 0xa0, 31, 0xd9, 0xda, 0xdb), s...)
}

func appendBin(b []byte, p []byte) []byte {
	return append(appendHead(b, len(p), 0, 0, 0xc4, 0xc5, 0xc6), p...)
}

func appendArrayLen(b []byte, n int) []byte {
	if n > 15 {
		return appendHead(b, n, 0, 0, 0, 0xdc, 0xdd)
	}
	return append(b, 0x90|byte(n)) // PERF: fixarray inline at the caller
}

func appendMapLen(b []byte, n int) []byte {
	if n > 15 {
		return appendHead(b, n, 0, 0, 0, 0xde, 0xdf)
	}
	return append(b, 0x80|byte(n)) // PERF: fixmap inline at the caller
}
