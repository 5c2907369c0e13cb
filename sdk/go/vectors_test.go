package mw

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const vectorDir = "../../abi/vectors"

type vector struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	Valid bool   `json:"valid"`
	SDK   bool   `json:"sdk"` // a bad output a typed builder can express
}

func loadIndex(t *testing.T) []vector {
	t.Helper()
	var index []vector
	if err := json.Unmarshal(readVector(t, "index.json"), &index); err != nil {
		t.Fatal(err)
	}
	return index
}

func readVector(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// twin returns a vector's JSON twin as generic JSON values.
func twin(t *testing.T, name string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readVector(t, name+".json"), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// asJSON converts a decoded value to the twins' shape: bin becomes {"$bin": base64}, and a
// JSON round trip makes numbers float64 as in the twins.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	raw, err := json.Marshal(binToJSON(v))
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func binToJSON(v any) any {
	switch v := v.(type) {
	case []byte:
		return map[string]any{"$bin": base64.StdEncoding.EncodeToString(v)}
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			out[i] = binToJSON(item)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, item := range v {
			out[k] = binToJSON(item)
		}
		return out
	case Config:
		return binToJSON(map[string]any(v))
	}
	return v
}

func requestShape(r *Request) map[string]any {
	m := map[string]any{
		"v": r.V, "method": r.Method, "path": r.Path, "query": r.Query,
		"headers": headersShape(r.Headers), "remote_addr": r.RemoteAddr, "scheme": r.Scheme,
		"ctx": ctxShape(r.Ctx),
	}
	if r.Body != nil {
		m["body"] = r.Body
	}
	return m
}

func responseShape(r *Response) map[string]any {
	m := map[string]any{
		"v": r.V, "status": r.Status, "headers": headersShape(r.Headers), "ctx": ctxShape(r.Ctx),
		"request": map[string]any{"method": r.Request.Method, "path": r.Request.Path},
	}
	if r.Body != nil {
		m["body"] = r.Body
	}
	return m
}

func headersShape(h Headers) any {
	if h == nil {
		return []any{}
	}
	return h
}

func ctxShape(ctx map[string]string) any {
	if ctx == nil {
		return map[string]any{}
	}
	return ctx
}

// Every valid request, response and config vector decodes to exactly its JSON twin.
func TestDecodeVectors(t *testing.T) {
	seen := 0
	for _, v := range loadIndex(t) {
		if !v.Valid {
			continue
		}
		raw := readVector(t, v.Name+".msgpack")
		var got any
		switch v.Kind {
		case "request":
			var r Request
			if err := decodeRequest(raw, &r); err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			got = requestShape(&r)
		case "response":
			var r Response
			if err := decodeResponse(raw, &r); err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			got = responseShape(&r)
		case "config":
			cfg, err := decodeConfig(raw)
			if err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			got = cfg
		default:
			continue
		}
		seen++
		if want := any(twin(t, v.Name)); !reflect.DeepEqual(asJSON(t, got), want) {
			t.Errorf("%s:\n got %v\nwant %v", v.Name, asJSON(t, got), want)
		}
	}
	if seen == 0 {
		t.Fatal("no decodable vectors found")
	}
}

// builders make every action vector through the public API, as a middleware would.
var builders = map[string]func() []byte{
	"action_continue_empty": func() []byte { return appendAction(nil, Continue()) },
	"action_continue_full": func() []byte {
		return appendAction(nil, Continue().
			SetHeader("x-user", "alice").SetHeader("x-tags", "a").SetHeader("x-tags", "b").
			RemoveHeader("cookie").SetPath("/v2/items").SetQuery("limit=5").
			SetCtx("user", "alice").SetResponseHeader("x-served-by", "mw"))
	},
	"action_respond": func() []byte {
		return appendAction(nil, Respond(403).Header("content-type", "text/plain").Text("forbidden\n"))
	},
	"action_respond_minimal": func() []byte { return appendAction(nil, Respond(204)) },
	"response_action_empty":  func() []byte { return appendResponseAction(nil, Unchanged()) },
	"response_action_full": func() []byte {
		return appendResponseAction(nil, Unchanged().SetStatus(201).
			SetHeader("x-frame-options", "DENY").RemoveHeader("server").Bytes([]byte("created")))
	},
}

// Every valid action vector is reproduced byte for byte by the API and by its JSON twin.
func TestEncodeVectors(t *testing.T) {
	for _, v := range loadIndex(t) {
		if !v.Valid || (v.Kind != "action" && v.Kind != "response_action") {
			continue
		}
		want := readVector(t, v.Name+".msgpack")
		build, ok := builders[v.Name]
		if !ok {
			t.Errorf("%s: no builder; add one to builders", v.Name)
		} else if got := build(); !bytes.Equal(got, want) {
			t.Errorf("%s via the API:\n got % x\nwant % x", v.Name, got, want)
		}
		var got []byte
		if v.Kind == "action" {
			got = appendAction(nil, actionFromTwin(t, twin(t, v.Name)))
		} else {
			got = appendResponseAction(nil, responseActionFromTwin(t, twin(t, v.Name)))
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s via the JSON twin:\n got % x\nwant % x", v.Name, got, want)
		}
	}
}

// twinFields decodes a twin into typed fields, so new vectors are checked without new code.
type twinFields struct {
	Action          string            `json:"action"`
	SetHeaders      Headers           `json:"set_headers"`
	RemoveHeaders   []string          `json:"remove_headers"`
	Path            *string           `json:"path"`
	Query           *string           `json:"query"`
	Ctx             map[string]string `json:"ctx"`
	ResponseHeaders Headers           `json:"response_headers"`
	Status          int               `json:"status"`
	Headers         Headers           `json:"headers"`
	Body            *struct {
		Bin []byte `json:"$bin"`
	} `json:"body"`
}

func fieldsFromTwin(t *testing.T, m map[string]any) twinFields {
	t.Helper()
	raw, _ := json.Marshal(m)
	var f twinFields
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f twinFields) body() []byte {
	if f.Body == nil {
		return nil
	}
	return nonNil(f.Body.Bin)
}

func actionFromTwin(t *testing.T, m map[string]any) Action {
	f := fieldsFromTwin(t, m)
	a := Action{
		SetHeaders: f.SetHeaders, RemoveHeaders: f.RemoveHeaders, Path: f.Path, Query: f.Query,
		Ctx: f.Ctx, ResponseHeaders: f.ResponseHeaders,
		Status: f.Status, Headers: f.Headers, Body: f.body(),
	}
	if f.Action == "respond" {
		a.Kind = ActionRespond
	}
	return a
}

func responseActionFromTwin(t *testing.T, m map[string]any) ResponseAction {
	f := fieldsFromTwin(t, m)
	return ResponseAction{Status: f.Status, SetHeaders: f.SetHeaders, RemoveHeaders: f.RemoveHeaders, Body: f.body()}
}

// The bad_* vectors (malformed guest output) never make a decoder panic, and the ones that
// are not one complete map are refused by every decoder.
func TestBadVectorsDoNotPanic(t *testing.T) {
	structural := map[string]bool{
		"bad_empty": true, "bad_truncated": true, "bad_trailing": true,
		"bad_not_map": true, "bad_response_action_not_map": true,
	}
	for _, v := range loadIndex(t) {
		if v.Valid {
			continue
		}
		raw := readVector(t, v.Name+".msgpack")
		errs := decodeAll(raw)
		for i, err := range errs {
			if structural[v.Name] && err == nil {
				t.Errorf("%s: decoder %d accepted it", v.Name, i)
			}
		}
	}
}

func decodeAll(raw []byte) []error {
	var req Request
	var resp Response
	_, cfgErr := decodeConfig(raw)
	_, lentErr := decodeLentRequest(raw)
	return []error{decodeRequest(raw, &req), decodeResponse(raw, &resp), cfgErr, lentErr}
}

func readVectorB(b *testing.B, name string) []byte {
	raw, err := os.ReadFile(filepath.Join(vectorDir, name))
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// badBuilders build every bad output a typed API can express (index.json "sdk": true).
var badBuilders = map[string]func() any{
	"bad_status_range":                       func() any { return Respond(600) },
	"bad_status_interim":                     func() any { return Respond(100) },
	"bad_response_action_interim":            func() any { return Unchanged().SetStatus(103) },
	"bad_bodiless_with_body":                 func() any { return Respond(204).Text("x") },
	"bad_response_action_bodiless_with_body": func() any { return Unchanged().SetStatus(304).Text("x") },
	"bad_header_control_char":                func() any { return Continue().SetHeader("x-a", "a\x01b") },
	"bad_header_del":                         func() any { return Continue().SetResponseHeader("x-a", "a\x7f") },
	"bad_header_not_latin1":                  func() any { return Respond(200).Header("x-a", "snow \u2603") },
	"bad_content_length":                     func() any { return Respond(200).Header("content-length", "abc") },
	"bad_too_many_headers": func() any {
		a := Continue()
		for range 101 {
			a = a.SetHeader("x-a", "1")
		}
		return a
	},
	"bad_header_bytes": func() any { return Continue().SetResponseHeader("x-a", strings.Repeat("v", 65536)) },
	"bad_too_many_remove_headers": func() any {
		a := Continue()
		for i := range 101 {
			a = a.RemoveHeader(fmt.Sprintf("x-%03d", i))
		}
		return a
	},
	"bad_too_many_ctx": func() any {
		ctx := map[string]string{}
		for i := range 101 {
			ctx[fmt.Sprintf("k%03d", i)] = "v"
		}
		return Action{Ctx: ctx}
	},
}

// Every bad output the API can express is built to the vector's exact bytes, and
// Validate refuses it.
func TestSDKRefusesEveryExpressibleBadVector(t *testing.T) {
	checked := 0
	for _, v := range loadIndex(t) {
		if !v.SDK {
			continue
		}
		build, ok := badBuilders[v.Name]
		if !ok {
			t.Errorf("%s: no builder; add one to badBuilders", v.Name)
			continue
		}
		var got []byte
		var err error
		switch a := build().(type) {
		case Action:
			got, err = appendAction(nil, a), a.Validate()
		case ResponseAction:
			got, err = appendResponseAction(nil, a), a.Validate()
		}
		if want := readVector(t, v.Name+".msgpack"); !bytes.Equal(got, want) {
			t.Errorf("%s: built bytes differ from the vector", v.Name)
		}
		if err == nil {
			t.Errorf("%s: Validate accepted it", v.Name)
		}
		checked++
	}
	if checked < 13 {
		t.Errorf("only %d sdk vectors", checked)
	}
}
