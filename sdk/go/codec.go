package mw

// Message-level codec: decoders for what the host sends, encoders for what the guest
// answers. Decoders ignore unknown keys; encoders write keys in ABI.md's canonical order
// and omit empty optional fields, which reproduces the golden vectors byte for byte.

import "slices"

// PERF: each message decoder is a plain loop over the map's keys with a switch on the key
// (the compiler compares the bytes, no allocation); an earlier version dispatched through a
// closure per key, an indirect call that costs more than the switch in Go's wasm code.

func decodeRequest(in []byte, r *Request) error {
	d := newDecoder(in)
	n, err := d.mapLen()
	for ; err == nil && n > 0; n-- {
		err = d.requestField(r)
	}
	return d.end(err)
}

func (d *decoder) requestField(r *Request) error {
	key, err := d.strBytes()
	if err != nil {
		return err
	}
	switch string(key) {
	case "v":
		r.V, err = d.intField()
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
		r.Ctx, err = d.strMap()
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

func appendAction(b []byte, a Action) []byte {
	if a.Kind == ActionRespond {
		return appendRespond(b, a)
	}
	n := 1 + count(len(a.SetHeaders) > 0, len(a.RemoveHeaders) > 0, a.Path != nil,
		a.Query != nil, len(a.Ctx) > 0, len(a.ResponseHeaders) > 0)
	b = appendMapLen(b, n)
	b = appendStr(appendStr(b, "action"), "continue")
	b = appendHeadersField(b, "set_headers", a.SetHeaders)
	b = appendNamesField(b, "remove_headers", a.RemoveHeaders)
	if a.Path != nil {
		b = appendStr(appendStr(b, "path"), *a.Path)
	}
	if a.Query != nil {
		b = appendStr(appendStr(b, "query"), *a.Query)
	}
	if len(a.Ctx) > 0 {
		b = appendStrMap(appendStr(b, "ctx"), a.Ctx)
	}
	return appendHeadersField(b, "response_headers", a.ResponseHeaders)
}

func appendRespond(b []byte, a Action) []byte {
	b = appendMapLen(b, 2+count(len(a.Headers) > 0, a.Body != nil))
	b = appendStr(appendStr(b, "action"), "respond")
	b = appendInt(appendStr(b, "status"), int64(a.Status))
	b = appendHeadersField(b, "headers", a.Headers)
	if a.Body != nil {
		b = appendBin(appendStr(b, "body"), a.Body)
	}
	return b
}

func appendResponseAction(b []byte, r ResponseAction) []byte {
	b = appendMapLen(b, count(r.Status != 0, len(r.SetHeaders) > 0, len(r.RemoveHeaders) > 0, r.Body != nil))
	if r.Status != 0 {
		b = appendInt(appendStr(b, "status"), int64(r.Status))
	}
	b = appendHeadersField(b, "set_headers", r.SetHeaders)
	b = appendNamesField(b, "remove_headers", r.RemoveHeaders)
	if r.Body != nil {
		b = appendBin(appendStr(b, "body"), r.Body)
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

// appendHeadersField writes key and h, or nothing when h is empty.
func appendHeadersField(b []byte, key string, h Headers) []byte {
	if len(h) == 0 {
		return b
	}
	b = appendArrayLen(appendStr(b, key), len(h))
	for _, kv := range h {
		b = appendStr(appendStr(append(b, 0x92), kv[0]), kv[1])
	}
	return b
}

// appendNamesField writes key and names, or nothing when names is empty.
func appendNamesField(b []byte, key string, names []string) []byte {
	if len(names) == 0 {
		return b
	}
	b = appendArrayLen(appendStr(b, key), len(names))
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
