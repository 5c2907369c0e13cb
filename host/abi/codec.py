"""The msgpack codec of ABI v1: host messages out, validated guest messages in.

Every malformed guest output becomes an ``AbiDecodeError`` naming what is wrong; nothing
else escapes (``tests/abi/test_codec_fuzz.py`` checks that with hypothesis).
"""

from __future__ import annotations

import re
from typing import Any

import msgpack

from ..errors import AbiDecodeError
from .messages import CONTINUE, UNCHANGED, Action, ResponseAction

ABI_VERSION = 1

#: most entries one header list, ``remove_headers`` list or ``ctx`` map may hold (ABI.md)
MAX_ENTRIES = 100
#: most bytes of names and values (keys and values for ``ctx``) in one such field (ABI.md)
MAX_FIELD_BYTES = 64 * 1024
#: the statuses a final response may have: 1xx are interim, and WSGI servers send no other
FINAL_STATUSES = range(200, 600)
#: statuses whose responses never carry a body (RFC 9110 6.4.1)
BODILESS_STATUSES = frozenset((204, 304))

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# NOTE: what a WSGI server can put on the wire (gunicorn's HEADER_VALUE_RE): visible ASCII,
# space, tab and obs-text, i.e. Latin-1 without control characters (CR, LF, NUL, DEL...).
_BAD_VALUE_CHAR = re.compile(r"[^\t\x20-\x7e\x80-\xff]")
_DECODE_FAILURES = (ValueError, TypeError, msgpack.UnpackException, OverflowError, RecursionError)


def _unpack(data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except _DECODE_FAILURES as err:
        raise AbiDecodeError(f"not a single msgpack message: {err}") from err


def _field_error(field: str, expected: str, value: Any) -> AbiDecodeError:
    return AbiDecodeError(f"field {field!r} must be {expected}, got {type(value).__name__}")


def _status(value: Any, field: str = "status") -> int:
    # NOTE: bool is an int subclass in Python but not an int in msgpack; refuse it.
    if type(value) is not int:
        raise _field_error(field, "an int", value)
    if value not in FINAL_STATUSES:
        raise AbiDecodeError(f"field {field!r} must be a final status within 200..599, got {value}")
    return value


def _check_size(field: str, entries: int, size: int) -> None:
    if entries > MAX_ENTRIES:
        raise AbiDecodeError(f"field {field!r} holds {entries} entries; at most {MAX_ENTRIES} are allowed")
    if size > MAX_FIELD_BYTES:
        raise AbiDecodeError(f"field {field!r} holds {size} bytes; at most {MAX_FIELD_BYTES} are allowed")


def _headers(value: Any, field: str) -> list[tuple[str, str]]:
    """Validate ``[[name, value], ...]``: lower-case token names, values a WSGI server can
    send, within the caps."""
    if type(value) is not list:
        raise _field_error(field, "an array of [name, value] pairs", value)
    # PERF: refuse an oversized list before looking at any of its entries.
    _check_size(field, len(value), 0)
    pairs = []
    size = 0
    for pair in value:
        if type(pair) is not list or len(pair) != 2:
            raise AbiDecodeError(f"field {field!r} must hold [name, value] pairs, got {pair!r:.60}")
        name, text = pair
        if type(name) is not str or type(text) is not str:
            raise AbiDecodeError(f"field {field!r}: header names and values must be str")
        if _TOKEN.fullmatch(name) is None:
            raise AbiDecodeError(f"field {field!r}: {name!r:.60} is not a valid header name")
        if _BAD_VALUE_CHAR.search(text) is not None:
            raise AbiDecodeError(f"field {field!r}: the value of {name!r} contains a control character"
                                 " or a character outside Latin-1")
        name = name.lower()
        if name == "content-length" and not (text.isascii() and text.isdigit()):
            raise AbiDecodeError(f"field {field!r}: content-length must be decimal digits")
        size += len(name) + len(text)
        pairs.append((name, text))
    _check_size(field, 0, size)
    return pairs


def _names(value: Any, field: str) -> list[str]:
    if type(value) is not list or any(type(name) is not str for name in value):
        raise _field_error(field, "an array of str", value)
    _check_size(field, len(value), sum(map(len, value)))
    return [name.lower() for name in value]


def _str_map(value: Any, field: str) -> dict[str, str]:
    # NOTE: strict_map_key lets bin keys through as bytes; ctx keys must be text too.
    if (type(value) is not dict or any(type(k) is not str for k in value)
            or any(type(v) is not str for v in value.values())):
        raise _field_error(field, "a map of str to str", value)
    _check_size(field, len(value), sum(map(len, value)) + sum(map(len, value.values())))
    return value


def _optional_str(message: dict, field: str) -> str | None:
    value = message.get(field)
    if value is not None and type(value) is not str:
        raise _field_error(field, "a str", value)
    return value


def _body(value: Any) -> bytes | None:
    if value is None or type(value) is bytes:
        return value
    if type(value) is str:
        return value.encode()
    raise _field_error("body", "bin or str", value)


def _body_for(status: int | None, value: Any) -> bytes | None:
    body = _body(value)
    if body and status in BODILESS_STATUSES:
        raise AbiDecodeError(f"a {status} response has no body; got {len(body)} bytes")
    return body


def _message_map(data: bytes, what: str) -> dict:
    message = _unpack(data)
    if type(message) is not dict:
        raise AbiDecodeError(f"{what} must be a msgpack map, got {type(message).__name__}")
    return message


def decode_action(data: bytes) -> Action:
    """Decode and validate the output of ``mw_on_request``."""
    message = _message_map(data, "an action")
    kind = message.get("action")
    if kind == "continue":
        # PERF: most stages answer a bare continue; share one immutable result.
        return CONTINUE if len(message) == 1 else _continue(message)
    if kind == "respond":
        headers = message.get("headers")
        status = _status(message.get("status"))
        return Action(
            respond=True,
            status=status,
            headers=None if headers is None else _headers(headers, "headers"),
            body=_body_for(status, message.get("body")),
        )
    if kind is None:
        raise AbiDecodeError("an action needs the field 'action'")
    raise AbiDecodeError(f"field 'action' must be 'continue' or 'respond', got {kind!r:.40}")


def _continue(message: dict) -> Action:
    get = message.get
    set_headers = get("set_headers")
    remove_headers = get("remove_headers")
    ctx = get("ctx")
    response_headers = get("response_headers")
    path = _optional_str(message, "path")
    if path is not None and not path.startswith("/"):
        raise AbiDecodeError(f"field 'path' must start with '/', got {path!r:.60}")
    return Action(
        set_headers=None if set_headers is None else _headers(set_headers, "set_headers"),
        remove_headers=None if remove_headers is None else _names(remove_headers, "remove_headers"),
        path=path,
        query=_optional_str(message, "query"),
        ctx=None if ctx is None else _str_map(ctx, "ctx"),
        response_headers=None if response_headers is None
        else _headers(response_headers, "response_headers"),
    )


def decode_response_action(data: bytes) -> ResponseAction:
    """Decode and validate the output of ``mw_on_response``."""
    message = _message_map(data, "a response action")
    if not message:
        return UNCHANGED
    status = message.get("status")
    set_headers = message.get("set_headers")
    remove_headers = message.get("remove_headers")
    status = None if status is None else _status(status)
    return ResponseAction(
        status=status,
        set_headers=None if set_headers is None else _headers(set_headers, "set_headers"),
        remove_headers=None if remove_headers is None else _names(remove_headers, "remove_headers"),
        body=_body_for(status, message.get("body")),
    )


class Codec:
    """Packs host messages with one prebuilt packer. Not thread-safe: one per guest instance."""

    __slots__ = ("_pack",)

    def __init__(self) -> None:
        self._pack = msgpack.Packer(autoreset=True, use_bin_type=True).pack

    def encode_request(self, method: str, path: str, query: str, headers: list,
                       remote_addr: str, scheme: str, ctx: dict[str, str],
                       body: bytes | None = None) -> bytes:
        message = {"v": ABI_VERSION, "method": method, "path": path, "query": query,
                   "headers": headers, "remote_addr": remote_addr, "scheme": scheme, "ctx": ctx}
        if body is not None:
            message["body"] = body
        return self._pack(message)

    def encode_response(self, status: int, headers: list, ctx: dict[str, str],
                        method: str, path: str, body: bytes | None = None) -> bytes:
        message = {"v": ABI_VERSION, "status": status, "headers": headers, "ctx": ctx,
                   "request": {"method": method, "path": path}}
        if body is not None:
            message["body"] = body
        return self._pack(message)

    def encode_config(self, config: dict[str, Any]) -> bytes:
        return self._pack(config)

    decode_action = staticmethod(decode_action)
    decode_response_action = staticmethod(decode_response_action)
