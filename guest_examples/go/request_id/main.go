// Command request_id is an mwhost middleware that gives every request an id: it keeps a
// sane incoming one or makes a random 128-bit hex id, passes it to the app as a request
// header, to later stages as ctx "request_id", and back to the client on the response.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"

	"mwhost/sdk"
)

const maxIDLen = 200

// header carries the id; config key "header".
var header = "x-request-id"

func init() {
	mw.HandleInit(configure)
	// lent: handle keeps nothing past the call (an incoming id is encoded before it returns)
	mw.HandleRequestLent(handle)
}

func main() {}

func configure(cfg mw.Config) error {
	if err := cfg.CheckKeys("header"); err != nil {
		return err
	}
	name, err := cfg.String("header", header)
	if err != nil {
		return err
	}
	if !isToken(name) {
		return errors.New(`config key "header": not a valid header name`)
	}
	header = strings.ToLower(name)
	return nil
}

// handle answers in one call: the response header rides on the continue action, so the
// module needs no response phase.
func handle(req *mw.Request) mw.Action {
	action := mw.Continue()
	id, ok := incomingID(req.Headers)
	if !ok {
		id = newID()
		action = action.SetHeader(header, id) // replaces any unusable incoming values
	}
	return action.SetCtx("request_id", id).SetResponseHeader(header, id)
}

// incomingID returns the client's id when there is exactly one and it is sane.
func incomingID(h mw.Headers) (string, bool) {
	values := h.Values(header)
	if len(values) != 1 || !saneID(values[0]) {
		return "", false
	}
	return values[0], true
}

// saneID keeps ids short and free of characters that could confuse logs or parsers.
func saneID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := range len(id) {
		if !isIDChar(id[i]) {
			return false
		}
	}
	return true
}

func isIDChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("-_.:+/=@~", c) >= 0
}

func isToken(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}

// newID returns 32 hex digits from the WASI random source.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails: Go aborts the program if the source is broken
	return hex.EncodeToString(b[:])
}
