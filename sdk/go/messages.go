package mw

// ABIVersion is the ABI this SDK implements; mw_abi_version returns it.
const ABIVersion = 1

// Request is what the host sends to mw_on_request. With HandleRequest its strings are
// substrings of one copy of the message, valid after the call: strings.Clone one you keep
// for long, or it keeps the whole message alive. With HandleRequestLent the Request and
// everything in it are valid only until the callback returns.
type Request struct {
	V          int
	Method     string
	Path       string // percent-decoded, starts with "/"
	Query      string // raw, without "?"
	Headers    Headers
	RemoteAddr string
	Scheme     string            // "http" or "https"
	Ctx        map[string]string // set by earlier stages; may be nil
	Body       []byte            // nil unless the stage asked for bodies
}

// Response is what the host sends to mw_on_response.
type Response struct {
	V       int
	Status  int
	Headers Headers
	Ctx     map[string]string // the request's ctx after every request-phase stage
	Request RequestLine       // the request as the app saw it
	Body    []byte            // nil unless the stage asked for bodies
}

// RequestLine is the part of the request the response phase sees.
type RequestLine struct {
	Method string
	Path   string
}

// ActionKind tells whether an Action lets the request through or answers it.
type ActionKind uint8

const (
	ActionContinue ActionKind = iota
	ActionRespond
)

// Action is the answer to a request. The zero value continues unchanged.
// Build one with Continue or Respond and the chainable setters; each setter returns
// the updated copy. Continue fields are ignored on a respond action and vice versa.
type Action struct {
	Kind ActionKind

	// continue
	SetHeaders      Headers // replace request headers of these names
	RemoveHeaders   []string
	Path            *string // nil keeps the path
	Query           *string // nil keeps the query
	Ctx             map[string]string
	ResponseHeaders Headers // set on the response once the app answered

	// respond
	Status  int
	Headers Headers
	Body    []byte // nil sends no body
}

// Continue lets the request through unchanged; add edits with the setters.
func Continue() Action { return Action{} }

// Respond answers the request with status; later stages and the app are skipped.
func Respond(status int) Action { return Action{Kind: ActionRespond, Status: status} }

// SetHeader sets a request header; repeat it for several values of one name.
func (a Action) SetHeader(name, value string) Action {
	a.SetHeaders = addPair(a.SetHeaders, name, value)
	return a
}

// RemoveHeader removes every request header called name (before SetHeader applies).
func (a Action) RemoveHeader(name string) Action {
	a.RemoveHeaders = addName(a.RemoveHeaders, name)
	return a
}

// SetPath rewrites the request path; it must start with "/".
func (a Action) SetPath(path string) Action {
	a.Path = &path
	return a
}

// SetQuery rewrites the raw query string ("" removes it).
func (a Action) SetQuery(query string) Action {
	a.Query = &query
	return a
}

// SetCtx merges key=value into the request's ctx for later stages and the response phase.
func (a Action) SetCtx(key, value string) Action {
	ctx := make(map[string]string, len(a.Ctx)+1)
	for k, v := range a.Ctx {
		ctx[k] = v
	}
	ctx[key] = value
	a.Ctx = ctx
	return a
}

// SetResponseHeader sets a header on the response once the app has answered,
// replacing the app's headers of that name.
func (a Action) SetResponseHeader(name, value string) Action {
	a.ResponseHeaders = addPair(a.ResponseHeaders, name, value)
	return a
}

// Header adds a header to a respond action.
func (a Action) Header(name, value string) Action {
	a.Headers = addPair(a.Headers, name, value)
	return a
}

// Text sets a respond action's body.
func (a Action) Text(body string) Action {
	a.Body = []byte(body)
	return a
}

// Bytes sets a respond action's body.
func (a Action) Bytes(body []byte) Action {
	a.Body = nonNil(body)
	return a
}

// ResponseAction is the answer to a response. The zero value leaves it unchanged.
type ResponseAction struct {
	Status        int     // 0 keeps the status
	SetHeaders    Headers // replace response headers of these names
	RemoveHeaders []string
	Body          []byte // nil keeps the body; empty replaces it with nothing
}

// Unchanged leaves the response as it is; add edits with the setters.
func Unchanged() ResponseAction { return ResponseAction{} }

// SetStatus replaces the status.
func (r ResponseAction) SetStatus(status int) ResponseAction {
	r.Status = status
	return r
}

// SetHeader sets a response header; repeat it for several values of one name.
func (r ResponseAction) SetHeader(name, value string) ResponseAction {
	r.SetHeaders = addPair(r.SetHeaders, name, value)
	return r
}

// RemoveHeader removes every response header called name (before SetHeader applies).
func (r ResponseAction) RemoveHeader(name string) ResponseAction {
	r.RemoveHeaders = addName(r.RemoveHeaders, name)
	return r
}

// Text replaces the body.
func (r ResponseAction) Text(body string) ResponseAction {
	r.Body = []byte(body)
	return r
}

// Bytes replaces the body; nil counts as empty.
func (r ResponseAction) Bytes(body []byte) ResponseAction {
	r.Body = nonNil(body)
	return r
}

// addPair appends without writing into a backing array another copy may share, so a
// base Action can be extended per request without the copies seeing each other's edits.
func addPair(h Headers, name, value string) Headers {
	return append(h[:len(h):len(h)], [2]string{name, value})
}

func addName(names []string, name string) []string {
	return append(names[:len(names):len(names)], name)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
