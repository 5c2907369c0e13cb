"""The http-wasm TCK's cases, through gunicorn: the Go TCK guest (tests/guests/go/httpwasm_tck)
in front of the TCK backend (backend.py), each case one real HTTP request."""

from __future__ import annotations

import http.client

import pytest

pytestmark = pytest.mark.slow

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"]


def send(host, test_id: str, target: str = "/", method: str = "GET", headers=(), body: bytes | None = None):
    """One request with the case's id; headers as (name, value) pairs, repeats kept."""
    conn = http.client.HTTPConnection("127.0.0.1", host.port, timeout=10)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        conn.putheader("x-httpwasm-tck-testid", test_id)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def header(headers, name: str) -> str | None:
    values = [value for key, value in headers if key.lower() == name.lower()]
    return values[0] if values else None


def passed(status, headers) -> None:
    """The guest handled the case and found nothing wrong."""
    assert header(headers, "x-httpwasm-tck-failed") is None, header(headers, "x-httpwasm-tck-failed")
    assert header(headers, "x-httpwasm-tck-handled") == "1"
    assert status == 200


@pytest.mark.parametrize("method", METHODS)
def test_get_method_sees_every_method(tck_host, method):
    """get_method returns the request's method for each of the eight methods."""
    status, headers, _ = send(tck_host, f"get_method/{method}", method=method)
    passed(status, headers)


def test_set_method_reaches_the_app(tck_host):
    """set_method("POST") on a GET changes the method the app sees (and routes by)."""
    status, headers, _ = send(tck_host, "set_method")
    passed(status, headers)
    assert header(headers, "x-httpwasm-next-method") == "POST"


@pytest.mark.parametrize("uri", ["/simple", "/simple%26clean", "/animal?name=panda", "/disney?name=chip%26dale"])
def test_get_uri_is_the_raw_escaped_target(tck_host, uri):
    """get_uri returns the request target as the client sent it, still escaped."""
    status, headers, _ = send(tck_host, "get_uri/case", target=uri, headers=[("x-want", uri)])
    passed(status, headers)


@pytest.mark.parametrize("uri", ["/simple", "/simple%26clean", "/animal?name=panda", "/disney?name=chip%26dale"])
def test_set_uri_becomes_the_apps_raw_uri(tck_host, uri):
    """set_uri takes an escaped target; the app sees it as its raw URI, unchanged."""
    status, headers, _ = send(tck_host, "set_uri/case", target="/before?x=1", headers=[("x-want", uri)])
    passed(status, headers)
    assert header(headers, "x-httpwasm-next-uri") == uri


@pytest.mark.parametrize("name, sent, want", [
    ("single-header", [("single-header", "value")], "value"),           # lower-case key
    ("Single-Header", [("single-header", "value")], "value"),           # mixed-case key
    ("not-header", [], None),                                           # missing
    ("multi-header", [("multi-header", "value1"), ("multi-header", "value2")], "value1,value2"),
])
def test_get_header_values(tck_host, name, sent, want):
    """get_header_values ignores the name's case, answers nothing for a missing header, and
    keeps a repeated header's values in order (joined by the server: one WSGI environ key)."""
    wants = [("x-want", want)] if want is not None else []
    status, headers, _ = send(tck_host, "get_header_values/case", headers=[("x-name", name), *wants, *sent])
    passed(status, headers)


def test_get_header_names(tck_host):
    """get_header_names lists the request's header names in lower case."""
    status, headers, _ = send(tck_host, "get_header_names/request",
                              headers=[("A-Header", "1"), ("b-header", "2")])
    passed(status, headers)


@pytest.mark.parametrize("verb, existing, want", [
    ("set_header_value", False, ["value"]),
    ("set_header_value", True, ["value"]),
    ("add_header_value", False, ["value"]),
    ("add_header_value", True, ["existing", "value"]),
    ("remove_header", False, []),
    ("remove_header", True, []),
])
def test_request_header_edits_reach_the_app(tck_host, verb, existing, want):
    """set, add and remove of a new and an existing request header: the app sees the result."""
    name = "existing-header" if existing else "new-header"
    sent = [("existing-header", "existing")]
    status, headers, _ = send(tck_host, f"{verb}/request/x", headers=[("x-name", name), *sent])
    passed(status, headers)
    canonical = "-".join(part.capitalize() for part in name.split("-"))
    have = [header(headers, f"x-httpwasm-next-header-{canonical}-{i}") for i in range(3)]
    assert [value for value in have if value is not None] == want
    if name == "new-header":  # the other header is untouched
        assert header(headers, "x-httpwasm-next-header-Existing-Header-0") == "existing"


@pytest.mark.parametrize("size", [0, 5, 2048, 4096, 5000])
def test_read_body_reads_the_whole_body_and_the_app_reads_it_too(tck_host, size):
    """read_body returns the request body in chunks up to EOF; the app then reads it whole."""
    body = b"a" * size
    status, headers, answer = send(tck_host, "read_body/request/case", method="POST",
                                   headers=[("x-want", str(size))], body=body)
    passed(status, headers)
    assert answer == body


def test_write_body_replaces_the_request_body(tck_host):
    """write_body on the request replaces the body the app reads."""
    status, headers, answer = send(tck_host, "write_body/request", method="POST", body=b"original")
    passed(status, headers)
    assert answer == b"from the guest"


def test_get_source_addr_is_ip_and_port(tck_host):
    """get_source_addr is the client's ip:port."""
    conn = http.client.HTTPConnection("127.0.0.1", tck_host.port, timeout=10)
    try:
        conn.request("GET", "/", headers={"x-httpwasm-tck-testid": "get_source_addr"})
        port = conn.sock.getsockname()[1]
        response = conn.getresponse()
        assert response.status == 200 and response.read() == f"127.0.0.1:{port}".encode()
    finally:
        conn.close()


def test_get_protocol_version(tck_host):
    """get_protocol_version is the request's protocol, HTTP/1.1."""
    status, headers, body = send(tck_host, "get_protocol_version")
    passed(status, headers)
    assert body == b"HTTP/1.1"


def test_get_config_is_the_stage_config_as_json(tck_host):
    """get_config returns the stage's TOML config table as compact JSON, keys sorted."""
    status, headers, body = send(tck_host, "get_config")
    passed(status, headers)
    assert body == b'{"greeting":"hello","limit":3}'


def test_features_buffering_on_trailers_off(tck_host):
    """enable_features (in _initialize) enables both buffers; trailers are not supported."""
    _, _, body = send(tck_host, "features")
    assert body == b"3"


def test_handle_response_sees_and_rewrites_the_apps_response(tck_host):
    """handle_response gets the ctx from handle_request, the app's status and buffered body,
    and its status, header and body edits reach the client."""
    status, headers, body = send(tck_host, "response", method="POST", body=b"12345")
    assert status == 203 and body == b"rewritten"
    assert header(headers, "x-httpwasm-tck-seen") == "ctx=42 status=200 error=false body=5"
    assert header(headers, "x-backend") is None
    assert header(headers, "x-httpwasm-tck-handled") == "1"  # set before next, merged


def test_unknown_case_answers_what_the_guest_wrote(tck_host):
    """next=0 answers with the status and headers the guest set, without calling the app."""
    status, headers, _ = send(tck_host, "no-such-case")
    assert status == 500 and "unknown" in header(headers, "x-httpwasm-tck-failed")
    assert header(headers, "x-backend") is None


def test_get_uri_of_an_absolute_form_target_is_its_origin_form(tck_host):
    """A proxy-style absolute-form target reaches get_uri as its escaped origin form."""
    target = f"http://127.0.0.1:{tck_host.port}/simple%26clean?x=%20"
    status, headers, _ = send(tck_host, "get_uri/absolute", target=target, headers=[("x-want", "/simple%26clean?x=%20")])
    passed(status, headers)


def test_log_lines_reach_the_host_log(tck_host):
    """log_enabled says info is on and debug off; a log line lands in the server's log."""
    import time

    status, headers, _ = send(tck_host, "log")
    passed(status, headers)
    deadline = time.monotonic() + 10
    while "tck guest says hello" not in tck_host.output():
        assert time.monotonic() < deadline, tck_host.output()[-2000:]
        time.sleep(0.05)  # NOTE: polling the log file for the line (the event), bounded


def test_a_chunked_request_body_is_read_and_still_reaches_the_app(tck_host):
    """A body without Content-Length (chunked) is read to its end and replayed to the app."""
    conn = http.client.HTTPConnection("127.0.0.1", tck_host.port, timeout=10)
    try:
        conn.request("POST", "/", body=iter([b"a" * 3000, b"a" * 2000]),
                     headers={"x-httpwasm-tck-testid": "read_body/request/chunked", "x-want": "5000"},
                     encode_chunked=True)
        response = conn.getresponse()
        assert response.getheader("x-httpwasm-tck-failed") is None, response.getheader("x-httpwasm-tck-failed")
        assert response.status == 200 and response.read() == b"a" * 5000
    finally:
        conn.close()


def test_a_body_past_the_stage_limit_fails_the_request_by_its_policy(tck_host):
    """read_body of a body over max_output_kb traps the guest: 503 naming the stage (fail_closed)."""
    status, headers, body = send(tck_host, "read_body/request/huge", method="POST",
                                 headers=[("x-want", "0")], body=b"a" * (1024 * 1024 + 1))
    assert status == 503 and b'"stage": "tck"' in body


def test_a_guest_that_never_returns_is_stopped_and_the_worker_serves_on(tck_host):
    """A handle_request that loops forever ends at the stage's deadline with a 503 naming the
    stage; the next request is served normally."""
    status, _, body = send(tck_host, "hostile/loop")
    assert status == 503 and b'"stage": "tck"' in body
    status, headers, _ = send(tck_host, "get_method/GET")
    passed(status, headers)
