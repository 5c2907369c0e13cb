package mw

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The host's caps (ABI.md "Validation"): per header list, RemoveHeaders and Ctx.
const (
	MaxEntries    = 100       // entries in one field
	MaxFieldBytes = 64 * 1024 // characters of names and values (keys and values for Ctx) in one field
)

// Validate reports whether the host can use this action (ABI.md "Validation"): header
// names that are HTTP tokens, values a server can send (tab, visible ASCII, space and
// Latin-1 U+0080..U+00FF), a decimal content-length, a final status (200..599), no body on
// 204/304, a path starting with "/", and the caps. The SDK validates every answer before
// encoding it; call it yourself to refuse a config in the init callback.
func (a Action) Validate() error { return a.validate() }

func (a *Action) validate() error {
	if a.Kind == ActionRespond {
		return firstError(validStatus(a.Status), validHeaders("headers", a.Headers),
			validBody(a.Status, a.Body))
	}
	return a.validContinue()
}

// validContinue checks a continue action's fields in Validate's order. PERF: an empty field
// costs no call (the SDK validates every answer; calls are dear in Go's wasm code).
func (a *Action) validContinue() error {
	if len(a.SetHeaders) > 0 {
		if err := validHeaders("set_headers", a.SetHeaders); err != nil {
			return err
		}
	}
	if len(a.RemoveHeaders) > 0 {
		if err := validNames("remove_headers", a.RemoveHeaders); err != nil {
			return err
		}
	}
	if a.Path != nil || a.Query != nil || len(a.Ctx) > 0 {
		if err := firstError(validPath(a.Path), validText("query", a.Query), validCtx(a.Ctx)); err != nil {
			return err
		}
	}
	if len(a.ResponseHeaders) > 0 {
		return validHeaders("response_headers", a.ResponseHeaders)
	}
	return nil
}

// Validate applies Action.Validate's rules to a response action (Status 0 keeps the status).
func (r ResponseAction) Validate() error {
	var status error
	if r.Status != 0 {
		status = validStatus(r.Status)
	}
	return firstError(status, validHeaders("set_headers", r.SetHeaders),
		validNames("remove_headers", r.RemoveHeaders), validBody(r.Status, r.Body))
}

// ValidHeaderName reports whether name is an HTTP token, as the host requires.
func ValidHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !tokenChars[name[i]] { // PERF: one table lookup per byte (Validate runs every call)
			return false
		}
	}
	return true
}

// tokenChars marks the bytes of an HTTP token: letters, digits and !#$%&'*+-.^_`|~.
var tokenChars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
	}
	return t
}()

// ValidHeaderValue reports whether a WSGI server can send value: tab, visible ASCII, space
// and Latin-1 characters; no control characters (CR, LF, NUL, DEL), nothing beyond U+00FF.
func ValidHeaderValue(value string) bool {
	_, ok := headerValueChars(value)
	return ok
}

// headerValueChars checks value as ValidHeaderValue does and counts its characters.
func headerValueChars(value string) (chars int, ok bool) {
	for i := 0; i < len(value); i++ { // PERF: ASCII needs no rune decoding
		c := value[i]
		if c >= 0x80 {
			return i + utf8.RuneCountInString(value[i:]), latin1Value(value[i:])
		}
		if !(c == '\t' || ' ' <= c && c <= '~') {
			return 0, false
		}
	}
	return len(value), true
}

func latin1Value(value string) bool {
	for _, r := range value { // invalid UTF-8 decodes to U+FFFD: refused too
		if !(r == '\t' || ' ' <= r && r <= '~' || 0x80 <= r && r <= 0xff) {
			return false
		}
	}
	return true
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func validStatus(status int) error {
	if status < 200 || status > 599 {
		return fmt.Errorf("status %d is not a final status within 200..599", status)
	}
	return nil
}

func validBody(status int, body []byte) error {
	if (status == 204 || status == 304) && len(body) > 0 {
		return fmt.Errorf("a %d response has no body; got %d bytes", status, len(body))
	}
	return nil
}

func validSize(field string, entries, size int) error {
	if entries > MaxEntries {
		return fmt.Errorf("%s holds %d entries; at most %d are allowed", field, entries, MaxEntries)
	}
	if size > MaxFieldBytes {
		return fmt.Errorf("%s holds %d bytes; at most %d are allowed", field, size, MaxFieldBytes)
	}
	return nil
}

func validHeaders(field string, h Headers) error {
	if len(h) > MaxEntries {
		return validSize(field, len(h), 0)
	}
	size := 0
	for _, kv := range h {
		name, value := kv[0], kv[1]
		if !ValidHeaderName(name) {
			return fmt.Errorf("%s: %q is not a valid header name", field, name)
		}
		chars, ok := headerValueChars(value)
		if !ok {
			return fmt.Errorf("%s: the value of %q contains a control character or a character outside Latin-1", field, name)
		}
		if len(name) == len("content-length") && strings.EqualFold(name, "content-length") && !digits(value) {
			return fmt.Errorf("%s: content-length must be decimal digits", field)
		}
		size += len(name) + chars
	}
	if size > MaxFieldBytes {
		return validSize(field, 0, size)
	}
	return nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func validNames(field string, names []string) error {
	size := 0
	for _, name := range names {
		if !utf8.ValidString(name) {
			return fmt.Errorf("%s: %q is not UTF-8", field, name)
		}
		size += utf8.RuneCountInString(name)
	}
	return validSize(field, len(names), size)
}

func validCtx(ctx map[string]string) error {
	size := 0
	for k, v := range ctx {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("ctx: %q is not UTF-8 text", k)
		}
		size += utf8.RuneCountInString(k) + utf8.RuneCountInString(v)
	}
	return validSize("ctx", len(ctx), size)
}

func validPath(path *string) error {
	if path == nil {
		return nil
	}
	if !strings.HasPrefix(*path, "/") {
		return fmt.Errorf("path %q must start with '/'", *path)
	}
	return validText("path", path)
}

func validText(field string, s *string) error {
	if s != nil && !utf8.ValidString(*s) {
		return fmt.Errorf("%s is not UTF-8", field)
	}
	return nil
}

// refuseInvalid turns an answer the host would refuse into a guest error: logged, then a
// panic (a trap whose message reaches the host log through stderr), so the host applies
// the stage's on_error policy instead of decoding bytes it cannot send.
func refuseInvalid(what string, err error) {
	if err != nil {
		msg := "mw: invalid " + what + " (ABI.md Validation): " + err.Error()
		Error(msg)
		panic(msg)
	}
}
