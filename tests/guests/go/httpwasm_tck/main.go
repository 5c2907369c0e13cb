// Command httpwasm_tck is a test guest for the http-wasm handler ABI, modelled on the cases
// of http-wasm's TCK: the request header x-httpwasm-tck-testid names the case. Cases that
// check what the guest sees answer 500 with x-httpwasm-tck-failed on a mismatch; cases that
// change the request proceed to the app (next=1), which reports what reached it. Every
// request gets the response header x-httpwasm-tck-handled: 1 (set before next).
// hostile/loop never returns (for the deadline).
package main

import (
	"fmt"
	"strconv"
	"strings"

	hw "mwhost/guests/go/httpwasm"
)

var features uint32

func init() {
	features = hw.EnableFeatures(hw.FeatureBufferRequest | hw.FeatureBufferResponse | hw.FeatureTrailers)
	hw.HandleRequest = handleRequest
	hw.HandleResponse = handleResponse
}

func main() {}

func fail(msg string) {
	hw.SetStatusCode(500)
	hw.SetHeader(hw.Response, "x-httpwasm-tck-failed", msg)
}

func handleRequest() (next bool, ctx uint32) {
	ids := hw.HeaderValues(hw.Request, "x-httpwasm-tck-testid")
	if len(ids) == 0 {
		hw.SetStatusCode(500)
		hw.WriteBody(hw.Response, []byte("missing x-httpwasm-tck-testid header"))
		return false, 0
	}
	id := ids[0]
	switch {
	case id == "get_protocol_version":
		hw.WriteBody(hw.Response, []byte(hw.ProtocolVersion()))
	case id == "get_source_addr":
		hw.WriteBody(hw.Response, []byte(hw.SourceAddr()))
	case id == "get_config":
		hw.WriteBody(hw.Response, hw.Config())
	case id == "features":
		hw.WriteBody(hw.Response, []byte(strconv.Itoa(int(features))))
	case id == "log":
		if !hw.LogEnabled(hw.LogInfo) || hw.LogEnabled(hw.LogDebug) {
			fail("log_enabled: want info on, debug off")
		}
		hw.Log(hw.LogWarn, "tck guest says hello")
	case strings.HasPrefix(id, "get_method/"):
		want := strings.TrimPrefix(id, "get_method/")
		if have := hw.Method(); have != want {
			fail(fmt.Sprintf("get_method: want %s, have %s", want, have))
		}
	case id == "set_method":
		hw.SetMethod("POST")
		next = true
	case strings.HasPrefix(id, "get_uri/"):
		want := hw.HeaderValues(hw.Request, "x-want")[0]
		if have := hw.URI(); have != want {
			fail(fmt.Sprintf("get_uri: want %s, have %s", want, have))
		}
	case strings.HasPrefix(id, "set_uri/"):
		hw.SetURI(hw.HeaderValues(hw.Request, "x-want")[0])
		next = true
	case strings.HasPrefix(id, "get_header_values/"):
		name := hw.HeaderValues(hw.Request, "x-name")[0]
		want := hw.HeaderValues(hw.Request, "x-want")
		have := hw.HeaderValues(hw.Request, name)
		if strings.Join(have, "|") != strings.Join(want, "|") {
			fail(fmt.Sprintf("get_header_values: want %q, have %q", want, have))
		}
	case id == "get_header_names/request":
		have := "|" + strings.Join(hw.HeaderNames(hw.Request), "|") + "|"
		for _, name := range []string{"a-header", "b-header"} {
			if !strings.Contains(have, "|"+name+"|") {
				fail(fmt.Sprintf("get_header_names: want %s, have %s", name, have))
			}
		}
	case strings.HasPrefix(id, "set_header_value/request/"):
		hw.SetHeader(hw.Request, hw.HeaderValues(hw.Request, "x-name")[0], "value")
		next = true
	case strings.HasPrefix(id, "add_header_value/request/"):
		hw.AddHeader(hw.Request, hw.HeaderValues(hw.Request, "x-name")[0], "value")
		next = true
	case strings.HasPrefix(id, "remove_header/request/"):
		hw.RemoveHeader(hw.Request, hw.HeaderValues(hw.Request, "x-name")[0])
		next = true
	case strings.HasPrefix(id, "read_body/request/"):
		size, _ := strconv.Atoi(hw.HeaderValues(hw.Request, "x-want")[0])
		body := hw.ReadBody(hw.Request)
		if len(body) != size || string(body) != strings.Repeat("a", size) {
			fail(fmt.Sprintf("read_body/request: want %d bytes, have %d", size, len(body)))
		}
		next = true // the app must still see the body
	case id == "write_body/request":
		hw.WriteBody(hw.Request, []byte("from the guest"))
		next = true
	case id == "response":
		next, ctx = true, 42
	case id == "hostile/loop": // never returns: the stage's deadline must end it
		for spin := 0; ; spin++ {
			_ = spin
		}
	default:
		fail("unknown x-httpwasm-tck-testid " + id)
	}
	hw.SetHeader(hw.Response, "x-httpwasm-tck-handled", "1")
	return next, ctx
}

// handleResponse: for the "response" case, report what it saw and rewrite the response.
func handleResponse(ctx uint32, isError bool) {
	if ctx != 42 {
		return
	}
	body := hw.ReadBody(hw.Response)
	hw.SetHeader(hw.Response, "x-httpwasm-tck-seen",
		fmt.Sprintf("ctx=%d status=%d error=%v body=%d", ctx, hw.StatusCode(), isError, len(body)))
	hw.RemoveHeader(hw.Response, "x-backend")
	hw.SetStatusCode(203)
	hw.WriteBody(hw.Response, []byte("rewritten"))
}
