package mw

import (
	"bytes"
	"errors"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func decodeValue(b []byte) (any, error) {
	d := &decoder{buf: b}
	v, err := d.value(0)
	if err == nil {
		err = d.done()
	}
	return v, err
}

// Integers encode in the smallest format at every width boundary and decode back.
func TestIntWidths(t *testing.T) {
	cases := []struct {
		v    int64
		wire []byte
	}{
		{0, []byte{0x00}},
		{127, []byte{0x7f}},
		{128, []byte{0xcc, 0x80}},
		{255, []byte{0xcc, 0xff}},
		{256, []byte{0xcd, 0x01, 0x00}},
		{65535, []byte{0xcd, 0xff, 0xff}},
		{65536, []byte{0xce, 0x00, 0x01, 0x00, 0x00}},
		{math.MaxUint32, []byte{0xce, 0xff, 0xff, 0xff, 0xff}},
		{math.MaxUint32 + 1, []byte{0xcf, 0, 0, 0, 1, 0, 0, 0, 0}},
		{math.MaxInt64, []byte{0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{-1, []byte{0xff}},
		{-32, []byte{0xe0}},
		{-33, []byte{0xd0, 0xdf}},
		{-128, []byte{0xd0, 0x80}},
		{-129, []byte{0xd1, 0xff, 0x7f}},
		{-32768, []byte{0xd1, 0x80, 0x00}},
		{-32769, []byte{0xd2, 0xff, 0xff, 0x7f, 0xff}},
		{math.MinInt32, []byte{0xd2, 0x80, 0, 0, 0}},
		{math.MinInt32 - 1, []byte{0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff}},
		{math.MinInt64, []byte{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}},
	}
	for _, c := range cases {
		if got := appendInt(nil, c.v); !bytes.Equal(got, c.wire) {
			t.Errorf("encode %d: got % x, want % x", c.v, got, c.wire)
		}
		d := &decoder{buf: c.wire}
		if got, err := d.int(); err != nil || got != c.v || d.done() != nil {
			t.Errorf("decode % x: got %d, %v", c.wire, got, err)
		}
	}
}

// Non-minimal integer formats from other encoders decode too.
func TestIntNonMinimal(t *testing.T) {
	for wire, want := range map[string]int64{
		"\xcc\x05": 5, "\xcd\x00\x05": 5, "\xce\x00\x00\x00\x05": 5,
		"\xd0\x05": 5, "\xd1\x00\x05": 5, "\xd2\xff\xff\xff\xfb": -5,
		"\xd3\x00\x00\x00\x00\x00\x00\x00\x05": 5,
	} {
		d := &decoder{buf: []byte(wire)}
		if got, err := d.int(); err != nil || got != want {
			t.Errorf("% x: got %d, %v", wire, got, err)
		}
	}
}

// A uint64 above MaxInt64 is refused where an int is required and kept as uint64 in a value.
func TestUint64Overflow(t *testing.T) {
	wire := []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if _, err := (&decoder{buf: wire}).int(); err == nil {
		t.Error("int accepted 2^64-1")
	}
	if v, err := decodeValue(wire); err != nil || v != uint64(math.MaxUint64) {
		t.Errorf("value: %v, %v", v, err)
	}
}

// str, bin, array and map headers use the smallest width at every boundary.
func TestLengthWidths(t *testing.T) {
	cases := []struct {
		n                    int
		str, bin, arr, mapHd []byte
	}{
		{0, []byte{0xa0}, []byte{0xc4, 0}, []byte{0x90}, []byte{0x80}},
		{15, []byte{0xaf}, []byte{0xc4, 15}, []byte{0x9f}, []byte{0x8f}},
		{16, []byte{0xb0}, []byte{0xc4, 16}, []byte{0xdc, 0, 16}, []byte{0xde, 0, 16}},
		{31, []byte{0xbf}, []byte{0xc4, 31}, []byte{0xdc, 0, 31}, []byte{0xde, 0, 31}},
		{32, []byte{0xd9, 32}, []byte{0xc4, 32}, []byte{0xdc, 0, 32}, []byte{0xde, 0, 32}},
		{255, []byte{0xd9, 255}, []byte{0xc4, 255}, []byte{0xdc, 0, 255}, []byte{0xde, 0, 255}},
		{256, []byte{0xda, 1, 0}, []byte{0xc5, 1, 0}, []byte{0xdc, 1, 0}, []byte{0xde, 1, 0}},
		{65535, []byte{0xda, 255, 255}, []byte{0xc5, 255, 255}, []byte{0xdc, 255, 255}, []byte{0xde, 255, 255}},
		{65536, []byte{0xdb, 0, 1, 0, 0}, []byte{0xc6, 0, 1, 0, 0}, []byte{0xdd, 0, 1, 0, 0}, []byte{0xdf, 0, 1, 0, 0}},
	}
	for _, c := range cases {
		s := strings.Repeat("x", c.n)
		check(t, "str", c.n, appendStr(nil, s), c.str, s)
		check(t, "bin", c.n, appendBin(nil, []byte(s)), c.bin, []byte(s))
		check(t, "array", c.n, appendArrayLen(nil, c.n), c.arr, nil)
		check(t, "map", c.n, appendMapLen(nil, c.n), c.mapHd, nil)
		arr := append(appendArrayLen(nil, c.n), bytes.Repeat([]byte{0xc0}, c.n)...)
		if v, err := decodeValue(arr); err != nil || len(v.([]any)) != c.n {
			t.Errorf("array %d: %v", c.n, err)
		}
	}
}

// check compares an encoding's header with want and, for payloads, decodes it back.
func check(t *testing.T, kind string, n int, got, wantHead []byte, payload any) {
	t.Helper()
	if !bytes.HasPrefix(got, wantHead) {
		t.Errorf("%s %d: header % x, want % x", kind, n, got[:min(len(got), 5)], wantHead)
	}
	if payload == nil {
		return
	}
	if v, err := decodeValue(got); err != nil || !reflect.DeepEqual(v, payload) {
		t.Errorf("%s %d: decoded %.20v, %v", kind, n, v, err)
	}
}

// Every scalar type decodes to its Go value.
func TestDecodeScalars(t *testing.T) {
	for wire, want := range map[string]any{
		"\xc0":                                 nil,
		"\xc2":                                 false,
		"\xc3":                                 true,
		"\xca\x3f\xc0\x00\x00":                 1.5,
		"\xcb\x3f\xe0\x00\x00\x00\x00\x00\x00": 0.5,
		"\xa3abc":                              "abc",
		"\xc4\x02\x00\xff":                     []byte{0, 0xff},
		"\x81\xa1k\x92\x01\xa1x":               map[string]any{"k": []any{int64(1), "x"}},
	} {
		if got, err := decodeValue([]byte(wire)); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("% x: got %#v, %v", wire, got, err)
		}
	}
}

// skip steps over every type, ext included, so unknown keys of any shape are ignored.
func TestUnknownKeysSkipped(t *testing.T) {
	values := []string{
		"\xc0", "\xc3", "\x05", "\xe0", "\xcc\x01", "\xcd\x00\x01", "\xce\x00\x00\x00\x01",
		"\xcf\x00\x00\x00\x00\x00\x00\x00\x01", "\xd0\x01", "\xd1\x00\x01", "\xd2\x00\x00\x00\x01",
		"\xd3\x00\x00\x00\x00\x00\x00\x00\x01", "\xca\x00\x00\x00\x00", "\xcb\x00\x00\x00\x00\x00\x00\x00\x00",
		"\xa1x", "\xd9\x01x", "\xda\x00\x01x", "\xdb\x00\x00\x00\x01x",
		"\xc4\x01x", "\xc5\x00\x01x", "\xc6\x00\x00\x00\x01x",
		"\xd4\x01x", "\xd5\x01xy", "\xd6\x01xyzw", "\xd7\x01" + strings.Repeat("x", 8), "\xd8\x01" + strings.Repeat("x", 16),
		"\xc7\x01\x01x", "\xc8\x00\x01\x01x", "\xc9\x00\x00\x00\x01\x01x",
		"\x92\x01\x81\xa1a\x90", "\xdc\x00\x01\x01", "\xdd\x00\x00\x00\x01\x01",
		"\x81\xa1a\x81\xa1b\xc0", "\xde\x00\x01\xa1a\x01", "\xdf\x00\x00\x00\x01\xa1a\x01",
	}
	for _, v := range values {
		msg := "\x82\xa7unknown" + v + "\xa6method\xa3PUT"
		var r Request
		if err := decodeRequest([]byte(msg), &r); err != nil || r.Method != "PUT" {
			t.Errorf("unknown value % x: %v (method %q)", v, err, r.Method)
		}
	}
}

// Every prefix of every valid vector is refused with a *DecodeError, never a panic.
func TestTruncatedInput(t *testing.T) {
	for _, v := range loadIndex(t) {
		if !v.Valid {
			continue
		}
		raw := readVector(t, v.Name+".msgpack")
		for n := range len(raw) {
			for _, err := range decodeAll(raw[:n]) {
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("%s[:%d]: got %v, want a *DecodeError", v.Name, n, err)
				}
			}
		}
	}
}

// Random bytes and random corruptions of real messages never panic.
func TestGarbageInput(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	seeds := [][]byte{readVector(t, "request_typical.msgpack"), readVector(t, "response_typical.msgpack"),
		readVector(t, "config_example.msgpack")}
	for i := range 20000 {
		var b []byte
		if i%2 == 0 {
			b = make([]byte, rng.Intn(64))
			rng.Read(b)
		} else {
			b = bytes.Clone(seeds[i%len(seeds)])
			for range 1 + rng.Intn(4) {
				b[rng.Intn(len(b))] = byte(rng.Intn(256))
			}
		}
		decodeAll(b)
	}
}

// Forged lengths are refused before anything is allocated.
func TestForgedLengths(t *testing.T) {
	for _, wire := range []string{
		"\xdd\xff\xff\xff\xff", "\xdf\xff\xff\xff\xff", "\xdb\xff\xff\xff\xff", "\xc6\xff\xff\xff\xff",
		"\x81\xa1k\xdd\xff\xff\xff\xff", "\x9f", "\x8f",
	} {
		if _, err := decodeValue([]byte(wire)); err == nil {
			t.Errorf("% x accepted", wire)
		}
	}
}

// Deep nesting is refused in values and skipped without recursion in unknown keys.
func TestDeepNesting(t *testing.T) {
	deep := append(bytes.Repeat([]byte{0x91}, 100000), 0xc0)
	if _, err := decodeValue(deep); err == nil {
		t.Error("100000 nested arrays accepted as a value")
	}
	msg := append([]byte("\x81\xa1x"), deep...)
	var r Request
	if err := decodeRequest(msg, &r); err != nil {
		t.Errorf("skipping deep nesting: %v", err)
	}
}

// Wrong types in known fields are errors, not zero values.
func TestWrongFieldTypes(t *testing.T) {
	for _, msg := range []string{
		"\x81\xa1v\xa11", "\x81\xa6method\x01", "\x81\xa7headers\x81\xa1a\xa1b",
		"\x81\xa7headers\x91\x91\xa1a", "\x81\xa7headers\x91\x92\x01\xa1b", "\x81\xa3ctx\x81\xa1n\x01",
		"\x81\xa4body\x05", "\x81\x01\x01", "\x91\xa1x",
	} {
		var r Request
		if err := decodeRequest([]byte(msg), &r); err == nil {
			t.Errorf("% x accepted", msg)
		}
	}
}

// A str body is accepted as bytes and nil counts as no body.
func TestBodyForms(t *testing.T) {
	var r Request
	if err := decodeRequest([]byte("\x81\xa4body\xa2hi"), &r); err != nil || string(r.Body) != "hi" {
		t.Errorf("str body: %q, %v", r.Body, err)
	}
	r = Request{}
	if err := decodeRequest([]byte("\x81\xa4body\xc0"), &r); err != nil || r.Body != nil {
		t.Errorf("nil body: %q, %v", r.Body, err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"request_typical", "response_with_body", "config_example"} {
		raw, err := os.ReadFile(filepath.Join(vectorDir, name+".msgpack"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, b []byte) { decodeAll(b) })
}

// A Request in the longer forms other encoders may choose (map16, str8 keys, v as uint8, a
// non-empty ctx) decodes like the short forms that decodeRequest reads inline, and a
// fixmap that claims more entries than the input holds is refused.
func TestRequestLongFormsDecodeLikeShortOnes(t *testing.T) {
	str8 := func(b []byte, s string) []byte { return append(append(b, 0xd9, byte(len(s))), s...) }
	short := appendMapLen(nil, 3)
	short = appendInt(appendStr(short, "v"), 1)
	short = appendStr(appendStr(short, "path"), "/a")
	short = appendStrMap(appendStr(short, "ctx"), map[string]string{"k": "v"})
	long := []byte{0xde, 0, 3}
	long = append(str8(long, "v"), 0xcc, 1)
	long = appendStr(str8(long, "path"), "/a")
	long = appendStrMap(str8(long, "ctx"), map[string]string{"k": "v"})
	var a, b Request
	if err := decodeRequest(short, &a); err != nil {
		t.Fatal(err)
	}
	if err := decodeRequest(long, &b); err != nil || !reflect.DeepEqual(a, b) || b.Ctx["k"] != "v" || b.V != 1 {
		t.Errorf("long forms: %+v, %v; short forms: %+v", b, err, a)
	}
	if err := decodeRequest([]byte{0x83, 0xa1, 'v', 1}, &a); err == nil {
		t.Error("a fixmap of 3 entries in 4 bytes was accepted")
	}
}
