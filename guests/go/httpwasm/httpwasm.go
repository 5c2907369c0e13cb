//go:build wasip1

// Package httpwasm is mwhost's small guest helper for the http-wasm handler ABI: the raw
// http_handler imports behind typed calls, and the two guest exports. A guest sets
// HandleRequest (and HandleResponse when it needs a response phase) in init().
package httpwasm

import "unsafe"

// Header and body kinds.
const (
	Request  uint32 = 0
	Response uint32 = 1
)

// Features for EnableFeatures.
const (
	FeatureBufferRequest  uint32 = 1
	FeatureBufferResponse uint32 = 2
	FeatureTrailers       uint32 = 4
)

// Log levels.
const (
	LogDebug int32 = -1
	LogInfo  int32 = 0
	LogWarn  int32 = 1
	LogError int32 = 2
)

// HandleRequest runs for each request; next=true proceeds to the app, ctx reaches
// HandleResponse. The default proceeds.
var HandleRequest = func() (next bool, ctx uint32) { return true, 0 }

// HandleResponse runs after the app when HandleRequest returned next=true.
var HandleResponse = func(ctx uint32, isError bool) {}

//go:wasmexport handle_request
func handleRequest() uint64 {
	next, ctx := HandleRequest()
	result := uint64(ctx) << 32
	if next {
		result |= 1
	}
	return result
}

//go:wasmexport handle_response
func handleResponse(ctx uint32, isError uint32) {
	HandleResponse(ctx, isError != 0)
}

// scratch is reused for every read; it grows when a field does not fit.
var scratch = make([]byte, 2048)

func ptr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

func strPtr(s string) (uint32, uint32) {
	if s == "" {
		return 0, 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s)))), uint32(len(s))
}

// read calls a (buf, buf_limit) -> len function, retrying once with a buffer that fits.
func read(get func(buf, limit uint32) uint32) string {
	n := get(ptr(scratch), uint32(len(scratch)))
	if n > uint32(len(scratch)) {
		scratch = make([]byte, n)
		n = get(ptr(scratch), n)
	}
	return string(scratch[:n])
}

// readList calls a (buf, buf_limit) -> count<<32|len function and splits the NUL-terminated result.
func readList(get func(buf, limit uint32) uint64) []string {
	countLen := get(ptr(scratch), uint32(len(scratch)))
	if countLen == 0 {
		return nil
	}
	size := uint32(countLen)
	if size > uint32(len(scratch)) {
		scratch = make([]byte, size)
		countLen = get(ptr(scratch), size)
		size = uint32(countLen)
	}
	items := make([]string, 0, countLen>>32)
	start := uint32(0)
	for i := uint32(0); i < size; i++ {
		if scratch[i] == 0 {
			items = append(items, string(scratch[start:i]))
			start = i + 1
		}
	}
	return items
}

// EnableFeatures enables what the host supports of features; the features now enabled.
func EnableFeatures(features uint32) uint32 { return enableFeatures(features) }

// Config is the stage's configuration bytes.
func Config() []byte { return []byte(read(getConfig)) }

// LogEnabled reports whether the host keeps messages of level.
func LogEnabled(level int32) bool { return logEnabled(level) == 1 }

// Log writes a message to the host's log at level.
func Log(level int32, message string) {
	p, n := strPtr(message)
	logMessage(level, p, n)
}

// Method is the request method, e.g. GET.
func Method() string { return read(getMethod) }

// SetMethod changes the request method.
func SetMethod(method string) { p, n := strPtr(method); setMethod(p, n) }

// URI is the request target as the client sent it (escaped), e.g. /a%20b?q=1.
func URI() string { return read(getURI) }

// SetURI changes the request target (escaped).
func SetURI(uri string) { p, n := strPtr(uri); setURI(p, n) }

// ProtocolVersion is e.g. HTTP/1.1.
func ProtocolVersion() string { return read(getProtocolVersion) }

// SourceAddr is the client's ip:port.
func SourceAddr() string { return read(getSourceAddr) }

// HeaderNames are the names of the headers of kind, in lower case.
func HeaderNames(kind uint32) []string {
	return readList(func(buf, limit uint32) uint64 { return getHeaderNames(kind, buf, limit) })
}

// HeaderValues are the values of the header name (any case) of kind, in order.
func HeaderValues(kind uint32, name string) []string {
	p, n := strPtr(name)
	return readList(func(buf, limit uint32) uint64 { return getHeaderValues(kind, p, n, buf, limit) })
}

// SetHeader replaces every value of name with value.
func SetHeader(kind uint32, name, value string) {
	np, nn := strPtr(name)
	vp, vn := strPtr(value)
	setHeaderValue(kind, np, nn, vp, vn)
}

// AddHeader adds one value to name.
func AddHeader(kind uint32, name, value string) {
	np, nn := strPtr(name)
	vp, vn := strPtr(value)
	addHeaderValue(kind, np, nn, vp, vn)
}

// RemoveHeader removes every value of name.
func RemoveHeader(kind uint32, name string) { p, n := strPtr(name); removeHeader(kind, p, n) }

// ReadBody reads the whole remaining body of kind.
func ReadBody(kind uint32) []byte {
	var body []byte
	for {
		eofLen := readBody(kind, ptr(scratch), uint32(len(scratch)))
		body = append(body, scratch[:uint32(eofLen)]...)
		if eofLen>>32 == 1 {
			return body
		}
	}
}

// WriteBody writes to the body of kind (the first write replaces it).
func WriteBody(kind uint32, data []byte) { writeBody(kind, ptr(data), uint32(len(data))) }

// StatusCode is the response status.
func StatusCode() uint32 { return getStatusCode() }

// SetStatusCode sets the response status.
func SetStatusCode(code uint32) { setStatusCode(code) }
