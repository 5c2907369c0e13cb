package mw

// Message-level codec: decoders for what the host sends, encoders for what the guest
// answers. Decoders ignore unknown keys; encoders write keys in ABI.md's canonical order
// and omit empty optional fields, which reproduces the golden vectors byte for byte.

import "slices"

// PERF: each message decoder is a plain loop over the map's keys with a switch on the key
// (the compiler compares the bytes, no allocation); an earlier version dispatched through a
// closure per key, an indirect call that costs more than the switch in Go's wasm code.

func decodeRequest(in []byte, r *Request) error { return decodeRequestWith(newDecoder(in), r) }

// decodeRequestWith decodes d's message into r (a kept or a lent decoder, lend.go).
func decodeRequestWith(d *decoder, r *Request) error {
	in := d.buf
	var n int
	var err error
	if len(in) > 0 && in[0]&0xf0 == 0x80 && 2*int(in[0]&0x0f) < len(in) {
		n, d.pos = int(in[0]&0x0f), 1 // PERF: a fixmap (every Request), without a call
	} else {
		n, err = d.mapLen()
	}
	for ; err == nil && n > 0; n-- {
		err = d.requestField(r)
	}
	return d.end(err)
}

func (d *decoder) requestField(r *Request) error {
	var key []byte
	var err error
	if p := d.pos; p < len(d.buf) && d.buf[p]&0xe0 == 0xa0 && p+1+int(d.buf[p]&0x1f) <= len(d.buf) {
		// PERF: a fixstr key (every key the host sends), without a call
		end := p + 1 + int(d.buf[p]&0x1f)
		key, d.pos = d.buf[p+1:end], end
	} else if key, err = d.strBytes(); err != nil {
		return err
	}
	switch string(key) {
	case "v":
		if p := d.pos; p < len(d.buf) && d.buf[p] <= 0x7f {
			r.V, d.pos = int(d.buf[p]), p+1 // PERF: a positive fixint (1), without a call
		} else {
			r.V, err = d.intField()
		}
	case "method":
		r.Method, err = d.str()
	case "path":
		r.Path, err = d.str()
	case "query":
		r.Query, err = d.str()
	case "headers":
		r.Headers, err = d.headers()
	case "remote_addr":
		r.RemoteAddr, err = d.str()
	case "scheme":
		r.Scheme, err = d.str()
	case "ctx":
		if p := d.pos; p < len(d.buf) && d.buf[p] == 0x80 {
			r.Ctx, d.pos = nil, p+1 // PERF: an empty ctx (the first stage's), without a call
		} else {
			r.Ctx, err = d.strMap()
		}
	case "body":
		r.Body, err = d.optionalBody()
	default:
		err = d.skip()
	}
	return err
}

func decodeResponse(in []byte, r *Response) error {
	d := newDecoder(in)
	n, err := d.mapLen()
	for ; err == nil && n > 0; n-- {
		err = d.responseField(r)
	}
	return d.end(err)
}

func (d *decoder) responseField(r *Response) error {
	key, err := d.strBytes()
	if err != nil {
		return err
	}
	switch string(key) {
	case "v":
		r.V, err = d.intField()
	case "status":
		r.Status, err = d.intField()
	case "headers":
		r.Headers, err = d.headers()
	case "ctx":
		r.Ctx, err = d.strMap()
	case "request":
		err = d.requestLine(&r.Request)
	case "body":
		r.Body, err = d.optionalBody()
	default:
		err = d.skip()
	}
	return err
}

func (d *decoder) requestLine(line *RequestLine) error {
	n, err := d.mapLen()
	for ; err == nil && n > 0; n-- {
		var key []byte
		if key, err = d.strBytes(); err != nil {
			break
		}
		switch string(key) {
		case "method":
			line.Method, err = d.str()
		case "path":
			line.Path, err = d.str()
		default:
			err = d.skip()
		}
	}
	return err
}

// end finishes a top-level message: the first error, else the message must fill the input.
func (d *decoder) end(err error) error {
	if err != nil {
		return err
	}
	return d.done()
}

func (d *decoder) intField() (int, error) {
	v, err := d.int()
	return int(v), err
}

// optionalBody reads bin (or str); nil counts as absent.
func (d *decoder) optionalBody() ([]byte, error) {
	if d.isNil() {
		return nil, nil
	}
	return d.binOrStr()
}

func decodeConfig(in []byte) (Config, error) {
	d := &decoder{buf: in}
	v, err := d.value(0)
	if err == nil {
		err = d.done()
	}
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &DecodeError{Reason: "expected a map"}
	}
	return Config(m), nil
}

// Keys as encoded (fixstr header and bytes), prepared once. PERF: one append per key.
var (
	keyAction          = fixstr("action")
	keyBody            = fixstr("body")
	keyCtx             = fixstr("ctx")
	keyHeaders         = fixstr("headers")
	keyPath            = fixstr("path")
	keyQuery           = fixstr("query")
	keyRemoveHeaders   = fixstr("remove_headers")
	keyResponseHeaders = fixstr("response_headers")
	keySetHeaders      = fixstr("set_headers")
	keyStatus          = fixstr("status")
	valueContinue      = fixstr("continue")
	valueRespond       = fixstr("respond")
)

// fixstr encodes a key of at most 31 bytes.
func fixstr(s string) string { return string(appendStr(nil, s)) }

func appendAction(b []byte, a Action) []byte {
	if a.Kind == ActionRespond {
		return appendRespond(b, a)
	}
	n := 1 + count(len(a.SetHeaders) > 0, len(a.RemoveHeaders) > 0, a.Path != nil,
		a.Query != nil, len(a.Ctx) > 0, len(a.ResponseHeaders) > 0)
	b = append(appendMapLen(b, n), keyAction...)
	b = append(b, valueContinue...)
	b = appendHeadersField(b, keySetHeaders, a.SetHeaders)
	b = appendNamesField(b, keyRemoveHeaders, a.RemoveHeaders)
	if a.Path != nil {
		b = appendStr(append(b, keyPath...), *a.Path)
	}
	if a.Query != nil {
		b = appendStr(append(b, keyQuery...), *a.Query)
	}
	if len(a.Ctx) > 0 {
		b = appendStrMap(append(b, keyCtx...), a.Ctx)
	}
	return appendHeadersField(b, keyResponseHeaders, a.ResponseHeaders)
}

func appendRespond(b []byte, a Action) []byte {
	b = appendMapLen(b, 2+count(len(a.Headers) > 0, a.Body != nil))
	b = append(append(b, keyAction...), valueRespond...)
	b = appendInt(append(b, keyStatus...), int64(a.Status))
	b = appendHeadersField(b, keyHeaders, a.Headers)
	if a.Body != nil {
		b = appendBin(append(b, keyBody...), a.Body)
	}
	return b
}

func appendResponseAction(b []byte, r ResponseAction) []byte {
	b = appendMapLen(b, count(r.Status != 0, len(r.SetHeaders) > 0, len(r.RemoveHeaders) > 0, r.Body != nil))
	if r.Status != 0 {
		b = appendInt(append(b, keyStatus...), int64(r.Status))
	}
	b = appendHeadersField(b, keySetHeaders, r.SetHeaders)
	b = appendNamesField(b, keyRemoveHeaders, r.RemoveHeaders)
	if r.Body != nil {
		b = appendBin(append(b, keyBody...), r.Body)
	}
	return b
}

func count(present ...bool) int {
	n := 0
	for _, p := range present {
		if p {
			n++
		}
	}
	return n
}

// appendHeadersField writes key (encoded) and h, or nothing when h is empty.
func appendHeadersField(b []byte, key string, h Headers) []byte {
	if len(h) == 0 {
		return b
	}
	b = appendArrayLen(append(b, key...), len(h))
	for _, kv := range h {
		b = appendStr(appendStr(append(b, 0x92), kv[0]), kv[1])
	}
	return b
}

// appendNamesField writes key (encoded) and names, or nothing when names is empty.
func appendNamesField(b []byte, key string, names []string) []byte {
	if len(names) == 0 {
		return b
	}
	b = appendArrayLen(append(b, key...), len(names))
	for _, name := range names {
		b = appendStr(b, name)
	}
	return b
}

// appendStrMap writes m with sorted keys so the same action always encodes the same way.
func appendStrMap(b []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = appendMapLen(b, len(m))
	for _, k := range keys {
		b = appendStr(appendStr(b, k), m[k])
	}
	return b
}
