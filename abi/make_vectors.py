"""Write the ABI v1 golden vectors: ``vectors/<name>.msgpack`` plus a readable ``.json`` twin.

The Python literals below are the source of truth. The host's tests and both guest SDKs'
tests read the files; ``tests/abi/test_vectors.py`` checks the files still match this script,
so run ``python abi/make_vectors.py`` after changing a vector.

Keys appear in the canonical order of ABI.md, and msgpack uses its smallest encodings
(``use_bin_type=True``): an SDK encoder that follows the spec reproduces these bytes exactly.
"""

from __future__ import annotations

import base64
import json
import pathlib

import msgpack

HERE = pathlib.Path(__file__).resolve().parent
VECTORS = HERE / "vectors"

# (name, kind, message or raw bytes, note). Valid messages of each kind.
VALID = [
    ("request_minimal", "request", {
        "v": 1, "method": "GET", "path": "/", "query": "", "headers": [],
        "remote_addr": "127.0.0.1", "scheme": "http", "ctx": {},
    }, "smallest request the host sends"),
    ("request_typical", "request", {
        "v": 1, "method": "GET", "path": "/api/items", "query": "limit=10&sort=name",
        "headers": [
            ["host", "example.test"],
            ["user-agent", "curl/8.5.0"],
            ["accept", "*/*"],
            ["authorization", "Bearer abc.def.ghi"],
            ["x-forwarded-for", "10.0.0.1"],
            ["x-forwarded-for", "10.0.0.2"],
        ],
        "remote_addr": "192.0.2.7", "scheme": "https", "ctx": {"request_id": "r-42"},
    }, "repeated header names keep their order; ctx set by an earlier stage"),
    ("request_with_body", "request", {
        "v": 1, "method": "POST", "path": "/upload", "query": "",
        "headers": [["content-type", "application/json"], ["content-length", "7"]],
        "remote_addr": "::1", "scheme": "http", "ctx": {}, "body": b'{"a":1}',
    }, "body is bin, present only when the stage asked for bodies"),
    ("request_unicode", "request", {
        "v": 1, "method": "GET", "path": "/caf\u00e9/\u65e5\u672c", "query": "q=\u00fc",
        "headers": [["x-name", "J\u00fcrgen"]],
        "remote_addr": "127.0.0.1", "scheme": "http", "ctx": {"user": "\u00e9lodie"},
    }, "strings are UTF-8 msgpack str"),
    ("action_continue_empty", "action", {"action": "continue"}, "let the request through unchanged"),
    ("action_continue_full", "action", {
        "action": "continue",
        "set_headers": [["x-user", "alice"], ["x-tags", "a"], ["x-tags", "b"]],
        "remove_headers": ["cookie"],
        "path": "/v2/items", "query": "limit=5",
        "ctx": {"user": "alice"},
        "response_headers": [["x-served-by", "mw"]],
    }, "every continue field"),
    ("action_respond", "action", {
        "action": "respond", "status": 403,
        "headers": [["content-type", "text/plain"]], "body": b"forbidden\n",
    }, "short-circuit: later stages and the app are skipped"),
    ("action_respond_minimal", "action", {"action": "respond", "status": 204}, "headers and body optional"),
    ("response_typical", "response", {
        "v": 1, "status": 200,
        "headers": [["content-type", "application/json"], ["set-cookie", "a=1"], ["set-cookie", "b=2"]],
        "ctx": {"request_id": "r-42"}, "request": {"method": "GET", "path": "/api/items"},
    }, "response phase input"),
    ("response_with_body", "response", {
        "v": 1, "status": 404, "headers": [["content-type", "text/plain"]], "ctx": {},
        "request": {"method": "GET", "path": "/missing"}, "body": b"not found",
    }, "body only when the stage asked for bodies"),
    ("response_action_empty", "response_action", {}, "leave the response unchanged"),
    ("response_action_full", "response_action", {
        "status": 201,
        "set_headers": [["x-frame-options", "DENY"]],
        "remove_headers": ["server"],
        "body": b"created",
    }, "every response action field"),
    ("config_example", "config", {
        "headers": {"x-a": "1"}, "prefixes": ["/admin", "/internal"],
        "limit": 10, "enabled": True, "ratio": 0.5,
    }, "what mw_init receives: the stage's config table as a map"),
]

# Guest outputs the host must refuse with AbiError (kind: the message the host expected).
INVALID = [
    ("bad_empty", "action", b"", "zero bytes where a message is required"),
    ("bad_truncated", "action", msgpack.packb({"action": "continue", "path": "/x"})[:-2], "cut mid-message"),
    ("bad_trailing", "action", msgpack.packb({"action": "continue"}) + b"\xc0", "bytes after the message"),
    ("bad_not_map", "action", msgpack.packb(["continue"]), "top level is not a map"),
    ("bad_missing_action", "action", msgpack.packb({"status": 200}), "no action key"),
    ("bad_unknown_action", "action", msgpack.packb({"action": "explode"}), "action is neither continue nor respond"),
    ("bad_status_type", "action", msgpack.packb({"action": "respond", "status": "200"}), "status must be an int"),
    ("bad_respond_no_status", "action", msgpack.packb({"action": "respond"}), "respond needs a status"),
    ("bad_headers_type", "action", msgpack.packb({"action": "continue", "set_headers": {"a": "b"}}), "header list is a map"),
    ("bad_header_pair", "action", msgpack.packb({"action": "continue", "set_headers": [["a"]]}), "pair of one"),
    ("bad_header_name", "action", msgpack.packb({"action": "continue", "set_headers": [[1, "b"]]}), "name not str"),
    ("bad_header_crlf", "action", msgpack.packb({"action": "continue", "set_headers": [["x", "a\r\nset-cookie: b"]]}), "header injection"),
    ("bad_header_token", "action", msgpack.packb({"action": "continue", "set_headers": [["bad name", "v"]]}), "name is not an HTTP token"),
    ("bad_ctx_value", "action", msgpack.packb({"action": "continue", "ctx": {"n": 1}}), "ctx values are str"),
    ("bad_path", "action", msgpack.packb({"action": "continue", "path": "no-slash"}), "path must start with /"),
    ("bad_body_type", "action", msgpack.packb({"action": "respond", "status": 200, "body": 5}), "body must be bin or str"),
    ("bad_remove_headers", "action", msgpack.packb({"action": "continue", "remove_headers": "cookie"}), "remove_headers is a list"),
    ("bad_invalid_utf8", "action", b"\x81\xa6action\xa8contin\xff\xfe", "str that is not UTF-8"),
    ("bad_response_action_status", "response_action", msgpack.packb({"status": True}), "bool is not a status"),
    ("bad_response_action_not_map", "response_action", msgpack.packb(7), "top level is not a map"),
    ("bad_ctx_key_bin", "action", msgpack.packb({"action": "continue", "ctx": {b"k": "v"}}, use_bin_type=True), "ctx keys are str, not bin"),
]

# Output no WSGI server can send, or over the caps: well-typed, so a typed SDK builder can
# express each one; the SDKs' tests build every one of these and check their validation
# refuses it (index.json marks them "sdk": true).
CAPPED = 101  # one more than MAX_ENTRIES
UNSENDABLE = [
    ("bad_status_range", "action", {"action": "respond", "status": 600}, "status outside 200..599"),
    ("bad_status_interim", "action", {"action": "respond", "status": 100},
     "1xx is interim, never a final status"),
    ("bad_response_action_interim", "response_action", {"status": 103}, "1xx is interim"),
    ("bad_bodiless_with_body", "action", {"action": "respond", "status": 204, "body": b"x"},
     "204 and 304 responses have no body"),
    ("bad_response_action_bodiless_with_body", "response_action", {"status": 304, "body": b"x"},
     "204 and 304 responses have no body"),
    ("bad_header_control_char", "action", {"action": "continue", "set_headers": [["x-a", "a\x01b"]]},
     "control characters in a header value"),
    ("bad_header_del", "action", {"action": "continue", "response_headers": [["x-a", "a\x7f"]]},
     "DEL in a header value"),
    ("bad_header_not_latin1", "action", {"action": "respond", "status": 200, "headers": [["x-a", "snow \u2603"]]},
     "a header value character outside Latin-1"),
    ("bad_content_length", "action", {"action": "respond", "status": 200, "headers": [["content-length", "abc"]]},
     "content-length must be decimal digits"),
    ("bad_too_many_headers", "action", {"action": "continue", "set_headers": [["x-a", "1"]] * CAPPED},
     "more than 100 headers in one field"),
    ("bad_header_bytes", "action", {"action": "continue", "response_headers": [["x-a", "v" * 65536]]},
     "more than 64 KiB of header names and values in one field"),
    ("bad_too_many_remove_headers", "action", {"action": "continue", "remove_headers": [f"x-{i:03}" for i in range(CAPPED)]},
     "more than 100 names in remove_headers"),
    ("bad_too_many_ctx", "action", {"action": "continue", "ctx": {f"k{i:03}": "v" for i in range(CAPPED)}},
     "more than 100 ctx entries"),
]


def pack(message: object) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


def readable(value: object) -> object:
    """JSON twin of a message: bin becomes {"$bin": base64}."""
    if isinstance(value, bytes):
        return {"$bin": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [readable(v) for v in value]
    return value


def expected_files() -> dict[str, bytes]:
    """Every file under vectors/, by name, with the bytes it must hold."""
    files: dict[str, bytes] = {}
    index = []
    for name, kind, message, note in VALID:
        files[f"{name}.msgpack"] = pack(message)
        files[f"{name}.json"] = (json.dumps(readable(message), indent=2, ensure_ascii=False) + "\n").encode()
        index.append({"name": name, "kind": kind, "valid": True, "note": note})
    for name, kind, raw, note in INVALID:
        files[f"{name}.msgpack"] = raw
        index.append({"name": name, "kind": kind, "valid": False, "note": note})
    for name, kind, message, note in UNSENDABLE:
        files[f"{name}.msgpack"] = pack(message)
        index.append({"name": name, "kind": kind, "sdk": True, "valid": False, "note": note})
    files["index.json"] = (json.dumps(index, indent=2) + "\n").encode()
    return files


def main() -> None:
    VECTORS.mkdir(exist_ok=True)
    for old in VECTORS.iterdir():
        old.unlink()
    for name, data in expected_files().items():
        (VECTORS / name).write_bytes(data)
    print(f"wrote {len(expected_files())} files to {VECTORS}")


if __name__ == "__main__":
    main()
