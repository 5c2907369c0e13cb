package mw

import (
	"encoding/binary"
	"math"
	"strconv"
)

// The msgpack decoder: every format is read (ext values only skipped), every read is
// bounds-checked, and malformed input is an error, never a panic.

// maxDepth bounds nesting in generic values so hostile input cannot exhaust the stack.
const maxDepth = 64

// DecodeError reports malformed msgpack input and the byte offset where it was found.
type DecodeError struct {
	Offset int
	Reason string
}

func (e *DecodeError) Error() string {
	return "msgpack: " + e.Reason + " at byte " + strconv.Itoa(e.Offset)
}

// decoder reads msgpack values from buf; every read is bounds-checked and returns an error.
type decoder struct {
	buf []byte
	pos int
	// text is buf as one string when set (newDecoder): str returns substrings of it.
	text string
	// lent: text is buf itself, lent for the call (lend.go): the header list and ctx map
	// are the reused ones, and bodies alias buf.
	lent bool
}

// newDecoder reads one message. PERF: the message is copied once (newText), and every str
// in it is a substring of that copy: no allocation per string (a 16-header request has 37).
// The strings stay valid after the call: the host rewrites the input buffer next call,
// never this copy.
func newDecoder(in []byte) *decoder { return &decoder{buf: in, text: newText(in)} }

func (d *decoder) fail(reason string) error { return &DecodeError{Offset: d.pos, Reason: reason} }

func (d *decoder) take(n int) ([]byte, error) {
	if n < 0 || n > len(d.buf)-d.pos {
		return nil, d.fail("unexpected end of input")
	}
	b := d.buf[d.pos : d.pos+n]
	d.pos += n
	return b, nil
}

func (d *decoder) peek() (byte, error) {
	if d.pos >= len(d.buf) {
		return 0, d.fail("unexpected end of input")
	}
	return d.buf[d.pos], nil
}

// uint reads an n-byte big-endian unsigned integer (n is 1, 2, 4 or 8).
func (d *decoder) uint(n int) (uint64, error) {
	b, err := d.take(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	}
	return binary.BigEndian.Uint64(b), nil
}

// length reads a 1-, 2- or 4-byte length and checks that at least min*length bytes remain,
// so a forged length can never make us allocate more than the input could hold.
func (d *decoder) length(width, min int) (int, error) {
	n, err := d.uint(width)
	if err != nil {
		return 0, err
	}
	if n > uint64(len(d.buf)-d.pos)/uint64(min) {
		return 0, d.fail("length " + strconv.FormatUint(n, 10) + " exceeds the input")
	}
	return int(n), nil
}

func (d *decoder) done() error {
	if d.pos != len(d.buf) {
		return d.fail("trailing bytes after the message")
	}
	return nil
}

// isNil consumes a nil if one is next.
func (d *decoder) isNil() bool {
	if d.pos < len(d.buf) && d.buf[d.pos] == 0xc0 {
		d.pos++
		return true
	}
	return false
}

func (d *decoder) mapLen() (int, error) {
	c, err := d.peek()
	if err != nil {
		return 0, err
	}
	switch {
	case c >= 0x80 && c <= 0x8f:
		d.pos++
		return d.checkCount(int(c&0x0f), 2)
	case c == 0xde:
		d.pos++
		return d.length(2, 2)
	case c == 0xdf:
		d.pos++
		return d.length(4, 2)
	}
	return 0, d.fail("expected a map")
}

func (d *decoder) arrayLen() (int, error) {
	c, err := d.peek()
	if err != nil {
		return 0, err
	}
	switch {
	case c >= 0x90 && c <= 0x9f:
		d.pos++
		return d.checkCount(int(c&0x0f), 1)
	case c == 0xdc:
		d.pos++
		return d.length(2, 1)
	case c == 0xdd:
		d.pos++
		return d.length(4, 1)
	}
	return 0, d.fail("expected an array")
}

func (d *decoder) checkCount(n, min int) (int, error) {
	if n*min > len(d.buf)-d.pos {
		return 0, d.fail("unexpected end of input")
	}
	return n, nil
}

// strBytes returns the bytes of a str, aliasing the input.
func (d *decoder) strBytes() ([]byte, error) {
	start, end, err := d.strSpan()
	return d.buf[start:end], err
}

// strSpan reads a str header and steps over its payload, returning the payload's bounds
// (start == end on error).
func (d *decoder) strSpan() (start, end int, err error) {
	if d.pos >= len(d.buf) {
		return d.pos, d.pos, d.fail("unexpected end of input")
	}
	c := d.buf[d.pos]
	var n int
	switch {
	case c >= 0xa0 && c <= 0xbf:
		// PERF: fixstr (header names, most values) needs no call
		d.pos++
		n = int(c & 0x1f)
		if n > len(d.buf)-d.pos {
			return d.pos, d.pos, d.fail("unexpected end of input")
		}
		d.pos += n
		return d.pos - n, d.pos, nil
	case c == 0xd9:
		d.pos++
		n, err = d.length(1, 1)
	case c == 0xda:
		d.pos++
		n, err = d.length(2, 1)
	case c == 0xdb:
		d.pos++
		n, err = d.length(4, 1)
	default:
		return d.pos, d.pos, d.fail("expected a str")
	}
	if err != nil {
		return d.pos, d.pos, err
	}
	// length checked that n bytes remain
	d.pos += n
	return d.pos - n, d.pos, nil
}

func isStr(c byte) bool { return (c >= 0xa0 && c <= 0xbf) || (c >= 0xd9 && c <= 0xdb) }

// str returns a str as a string: a substring of text when the decoder has it, else a copy.
func (d *decoder) str() (string, error) {
	if p := d.pos; p < len(d.buf) && d.buf[p]&0xe0 == 0xa0 && len(d.text) == len(d.buf) {
		// PERF: a fixstr in a message, without a call
		if end := p + 1 + int(d.buf[p]&0x1f); end <= len(d.buf) {
			d.pos = end
			return d.text[p+1 : end], nil
		}
	}
	return d.strCopy()
}

func (d *decoder) strCopy() (string, error) {
	start, end, err := d.strSpan()
	if len(d.text) == len(d.buf) {
		return d.text[start:end], err
	}
	return string(d.buf[start:end]), err
}

// binOrStr returns a copy of a bin (or str) payload, so callers may keep it after the call
// (a lent decoder's: the payload itself, see own).
func (d *decoder) binOrStr() ([]byte, error) {
	c, err := d.peek()
	if err != nil {
		return nil, err
	}
	if c < 0xc4 || c > 0xc6 {
		if !isStr(c) {
			return nil, d.fail("expected bin or str")
		}
		b, err := d.strBytes()
		return d.own(b), err
	}
	d.pos++
	n, err := d.length(1<<(c-0xc4), 1)
	if err != nil {
		return nil, err
	}
	b, err := d.take(n)
	return d.own(b), err
}

// own returns a copy of b, or for a lent decoder b itself, capped so that an append
// reallocates instead of overwriting the rest of the lent message.
func (d *decoder) own(b []byte) []byte {
	if d.lent {
		return b[:len(b):len(b)]
	}
	return append([]byte{}, b...)
}

// int reads any msgpack integer that fits an int64.
func (d *decoder) int() (int64, error) {
	c, err := d.peek()
	if err != nil {
		return 0, err
	}
	switch {
	case c <= 0x7f:
		d.pos++
		return int64(c), nil
	case c >= 0xe0:
		d.pos++
		return int64(int8(c)), nil
	case c >= 0xcc && c <= 0xcf:
		d.pos++
		u, err := d.uint(1 << (c - 0xcc))
		if err == nil && u > math.MaxInt64 {
			err = d.fail("integer overflows int64")
		}
		return int64(u), err
	case c >= 0xd0 && c <= 0xd3:
		d.pos++
		width := 1 << (c - 0xd0)
		u, err := d.uint(width)
		return signExtend(u, width), err
	}
	return 0, d.fail("expected an int")
}

func signExtend(u uint64, width int) int64 {
	shift := 64 - 8*width
	return int64(u<<shift) >> shift
}

// strMap reads a map of str to str.
func (d *decoder) strMap() (map[string]string, error) {
	n, err := d.mapLen()
	if err != nil || n == 0 {
		return nil, err
	}
	var m map[string]string
	if d.lent {
		m = lentCtxMap(n)
	} else {
		m = make(map[string]string, n)
	}
	for range n {
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		if m[k], err = d.str(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// headers reads [[name, value], ...].
func (d *decoder) headers() (Headers, error) {
	n, err := d.arrayLen()
	if err != nil || n == 0 {
		return nil, err
	}
	var h Headers
	if d.lent {
		h = lentHeaders(n)
	} else {
		h = newHeaders(n)
	}
	buf, text := d.buf, d.text
	inText := len(text) == len(buf)
	for i := range h {
		// PERF: the usual pair, read inline: a fixarray of 2, a fixstr name, a fixstr or str8
		// value, as substrings of text (a call per string costs more than all of this in
		// Go's wasm code). Anything else, or too short, goes the general way below.
		if p := d.pos; inText && p+3 <= len(buf) && buf[p] == 0x92 && buf[p+1]&0xe0 == 0xa0 {
			name, value := p+2, p+2+int(buf[p+1]&0x1f) // value: the value's first byte
			start, end := 0, 0
			if value < len(buf) {
				if c := buf[value]; c&0xe0 == 0xa0 {
					start = value + 1
					end = start + int(c&0x1f)
				} else if c == 0xd9 && value+1 < len(buf) {
					start = value + 2
					end = start + int(buf[value+1])
				}
			}
			if start > 0 && end <= len(buf) {
				h[i] = [2]string{text[name:value], text[start:end]}
				d.pos = end
				continue
			}
		}
		if pair, err := d.arrayLen(); err != nil {
			return nil, err
		} else if pair != 2 {
			return nil, d.fail("a header must be a [name, value] pair")
		}
		if h[i][0], err = d.str(); err != nil {
			return nil, err
		}
		if h[i][1], err = d.str(); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// skip steps over one value of any type without recursion.
func (d *decoder) skip() error {
	for pending := 1; pending > 0; pending-- {
		c, err := d.peek()
		if err != nil {
			return err
		}
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
			d.pos++
		case c <= 0x8f, c == 0xde, c == 0xdf:
			n, err := d.mapLen()
			if err != nil {
				return err
			}
			pending += 2 * n
		case c <= 0x9f, c == 0xdc, c == 0xdd:
			n, err := d.arrayLen()
			if err != nil {
				return err
			}
			pending += n
		case c <= 0xbf, c >= 0xd9 && c <= 0xdb:
			if _, err := d.strBytes(); err != nil {
				return err
			}
		default:
			if err := d.skipScalar(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// scalarSizes maps the fixed-size formats 0xc4..0xd8 to their payload handling:
// a positive value is a fixed payload size, a negative one the width of a length prefix.
var scalarSizes = [...]int{
	0xc4 - 0xc4: -1, -2, -4, // bin 8/16/32
	0xc7 - 0xc4: -1, -2, -4, // ext 8/16/32 (plus the type byte, below)
	0xca - 0xc4: 4, 8, // float 32/64
	0xcc - 0xc4: 1, 2, 4, 8, // uint
	0xd0 - 0xc4: 1, 2, 4, 8, // int
	0xd4 - 0xc4: 2, 3, 5, 9, 17, // fixext 1..16 (type byte + data)
}

func (d *decoder) skipScalar(c byte) error {
	if c < 0xc4 || c > 0xd8 {
		return d.fail("invalid type byte 0x" + strconv.FormatUint(uint64(c), 16))
	}
	d.pos++
	size := scalarSizes[c-0xc4]
	if size < 0 {
		n, err := d.length(-size, 1)
		if err != nil {
			return err
		}
		if c >= 0xc7 && c <= 0xc9 {
			n++ // ext type byte
		}
		size = n
	}
	_, err := d.take(size)
	return err
}

// value decodes any value into nil, bool, int64, uint64 (above MaxInt64), float64, string,
// []byte, []any or map[string]any. Ext values are refused.
func (d *decoder) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, d.fail("nesting deeper than " + strconv.Itoa(maxDepth))
	}
	c, err := d.peek()
	if err != nil {
		return nil, err
	}
	switch {
	case c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3):
		return d.number(c)
	case c <= 0x8f || c == 0xde || c == 0xdf:
		return d.anyMap(depth)
	case c <= 0x9f || c == 0xdc || c == 0xdd:
		return d.anyArray(depth)
	case c <= 0xbf || (c >= 0xd9 && c <= 0xdb):
		return d.str()
	case c >= 0xc4 && c <= 0xc6:
		return d.binOrStr()
	case c == 0xc0 || c == 0xc2 || c == 0xc3:
		d.pos++
		return [...]any{nil, nil, false, true}[c-0xc0], nil
	case c == 0xca || c == 0xcb:
		d.pos++
		return d.float(c)
	}
	return nil, d.fail("unsupported type byte 0x" + strconv.FormatUint(uint64(c), 16))
}

// number reads an integer; only a uint64 too large for int64 stays unsigned.
func (d *decoder) number(c byte) (any, error) {
	if c == 0xcf && len(d.buf)-d.pos >= 9 && d.buf[d.pos+1]&0x80 != 0 {
		d.pos++
		return d.uint(8)
	}
	return d.int()
}

func (d *decoder) float(c byte) (any, error) {
	if c == 0xca {
		u, err := d.uint(4)
		return float64(math.Float32frombits(uint32(u))), err
	}
	u, err := d.uint(8)
	return math.Float64frombits(u), err
}

func (d *decoder) anyArray(depth int) (any, error) {
	n, err := d.arrayLen()
	if err != nil {
		return nil, err
	}
	a := make([]any, n)
	for i := range a {
		if a[i], err = d.value(depth + 1); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (d *decoder) anyMap(depth int) (any, error) {
	n, err := d.mapLen()
	if err != nil {
		return nil, err
	}
	m := make(map[string]any, n)
	for range n {
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		if m[k], err = d.value(depth + 1); err != nil {
			return nil, err
		}
	}
	return m, nil
}
