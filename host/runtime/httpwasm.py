"""The http-wasm handler ABI's host functions (module ``http_handler``), the second guest ABI.

Semantics follow http-wasm's ``http-handler-abi.md``: strings go in as (ptr, len), results
come out through (buf, buf_limit) -> len, where a too-small buffer gets nothing written and
the needed length back; header name and value lists are NUL-terminated sequences returned as
``count << 32 | len``; ``read_body`` returns ``eof << 32 | len``.

The request state of one call lives in the host, on an ``Exchange`` the instance hands to its
store's ``HttpState`` before each guest call; the guest only ever holds the opaque ``ctx``.

Every function is a raw ``wasmtime_linker_define_func_unchecked`` callback, like our WASI
shadows (wasi.py): no per-call type conversion, and a trap is returned as a pointer of our
own, never parked in wasmtime-py's module global. Where the spec says a host "will trap"
(an unknown kind, a set on trailers, a call outside a request, a pointer outside memory),
the callback returns a trap whose message names the function.
"""

from __future__ import annotations

import ctypes
import logging
import re
from time import monotonic_ns

import cffi
import wasmtime
from wasmtime import _ffi as ffi

from ..errors import AbiError
from .fastcall import DEADLINE_TRAP, GuestMemory
from .stores import StoreRegistry
from .wasi import _trap, define_unchecked

logger = logging.getLogger("mwhost.runtime")

# NOTE: the caller's store context through cffi: wasmtime-py's ctypes binding returns a
# pointer object that references itself (a reference cycle per host call, garbage for the
# cyclic collector on every request)
_cffi = cffi.FFI()
_cffi.cdef("void *wasmtime_caller_context(void *caller);")
_caller_context = _cffi.dlopen(ffi.dll._name).wasmtime_caller_context


def _context_of(caller) -> object:
    return _caller_context(_cffi.cast("void *", ctypes.addressof(caller.contents)))

MODULE = "http_handler"
_U32 = 0xFFFF_FFFF

# features (enable_features's bit flags)
FEATURE_BUFFER_REQUEST, FEATURE_BUFFER_RESPONSE, FEATURE_TRAILERS = 1, 2, 4
#: what this host supports: both buffers, no trailers
SUPPORTED_FEATURES = FEATURE_BUFFER_REQUEST | FEATURE_BUFFER_RESPONSE
# header and body kinds
REQUEST, RESPONSE, REQUEST_TRAILERS, RESPONSE_TRAILERS = 0, 1, 2, 3
# log levels: debug -1 .. error 2, none 3; the guest log keeps info and above
LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_NONE = -1, 0, 1, 2, 3
#: http-wasm level -> the guest log's level (mw.log's: 0 debug .. 3 error)
_LOG_LEVELS = {LOG_DEBUG: 0, LOG_INFO: 1, LOG_WARN: 2, LOG_ERROR: 3}

_I32, _I64 = "i32", "i64"
#: name -> (params, results), as the spec declares them
IMPORTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "enable_features": ((_I32,), (_I32,)),
    "get_config": ((_I32, _I32), (_I32,)),
    "log_enabled": ((_I32,), (_I32,)),
    "log": ((_I32, _I32, _I32), ()),
    "get_method": ((_I32, _I32), (_I32,)),
    "set_method": ((_I32, _I32), ()),
    "get_uri": ((_I32, _I32), (_I32,)),
    "set_uri": ((_I32, _I32), ()),
    "get_protocol_version": ((_I32, _I32), (_I32,)),
    "get_header_names": ((_I32, _I32, _I32), (_I64,)),
    "get_header_values": ((_I32, _I32, _I32, _I32, _I32), (_I64,)),
    "set_header_value": ((_I32, _I32, _I32, _I32, _I32), ()),
    "add_header_value": ((_I32, _I32, _I32, _I32, _I32), ()),
    "remove_header": ((_I32, _I32, _I32), ()),
    "read_body": ((_I32, _I32, _I32), (_I64,)),
    "write_body": ((_I32, _I32, _I32), ()),
    "get_status_code": ((), (_I32,)),
    "set_status_code": ((_I32,), ()),
    "get_source_addr": ((_I32, _I32), (_I32,)),
}
#: guest exports: name -> (params, results)
REQUIRED_EXPORTS = {"handle_request": ((), (_I64,))}
OPTIONAL_EXPORTS = {"handle_response": ((_I32, _I32), ()), "_start": ((), ()), "_initialize": ((), ())}


class HostTrap(Exception):
    """A host function's refusal: the guest traps with this message."""


class HostDeadline(HostTrap):
    """A host function ran out of the call's time (a request body that did not arrive before
    the deadline): the call ends as a timeout (``GuestTimeout``), not as the guest's trap."""


class Body:
    """One message body as the guest streams it: what it reads, and what it writes in place."""

    __slots__ = ("source", "read_pos", "written", "limit")

    def __init__(self, source, limit: int) -> None:
        #: the body's bytes, or a callable ``source(deadline_ns)`` that reads them once (the
        #: request's stream, before the call's deadline)
        self.source = source
        self.read_pos = 0
        #: the replacement body once the guest wrote one (the first write replaces)
        self.written: bytearray | None = None
        self.limit = limit

    def content(self, deadline_ns: int = 0) -> bytes:
        if callable(self.source):
            self.source = self.source(deadline_ns)
        return self.source

    def read(self, size: int, deadline_ns: int = 0) -> tuple[bytes, bool]:
        data = self.content(deadline_ns)
        if len(data) > self.limit:
            # NOTE: the app's body (buffer_response) is whatever the app made: the bound is here
            raise HostTrap(f"read_body: the body of {len(data)} bytes exceeds the stage's limit of {self.limit} bytes")
        chunk = data[self.read_pos:self.read_pos + size]
        self.read_pos += len(chunk)
        return chunk, self.read_pos >= len(data)

    def write(self, data: bytes) -> None:
        if self.written is None:
            self.written = bytearray()
        if len(self.written) + len(data) > self.limit:
            raise HostTrap(f"write_body: the body would exceed the stage's limit of {self.limit} bytes")
        self.written += data


class Exchange:
    """One request (and its response) as an http-wasm guest sees and edits it.

    Header lists are ``(name, value)`` pairs in order, names in lower case (as WSGI and falcon
    give them, and as the functions store them), so lookups lower-case only the guest's name.
    The stage builds one per request and reads the edits back: ``touched`` holds the header
    names the guest set, added or removed, per kind.
    """

    __slots__ = ("method", "uri", "protocol", "source_addr", "request_headers", "response_headers",
                 "status", "features", "request_body", "response_body", "phase", "edited",
                 "touched", "wait_until_ns")

    def __init__(self, method: str, uri: str, protocol: str, source_addr: str,
                 request_headers: list, request_body, max_body: int, features: int = 0) -> None:
        self.method = method
        self.uri = uri or "/"
        self.protocol = protocol
        self.source_addr = source_addr
        self.request_headers = [(name.lower(), value) for name, value in request_headers]  # a copy
        self.response_headers: list = []
        self.status = 200
        self.features = features
        self.request_body = Body(request_body, max_body)
        self.response_body = Body(b"", max_body)
        #: "request" during handle_request, "response" during handle_response
        self.phase = "request"
        #: what the guest changed: a subset of {"method", "uri", "request_headers", "request_body",
        #: "response_headers", "status", "response_body"}
        self.edited: set[str] = set()
        self.touched: tuple[set[str], set[str]] = (set(), set())
        self.wait_until_ns = 0

    def begin_response(self, status: int, headers: list, body) -> None:
        """Enter ``handle_response`` with the app's answer (``body`` only with buffer_response)."""
        self.phase = "response"
        self.status = status
        self.response_headers = headers
        self.response_body = Body(body if body is not None else b"", self.response_body.limit)
        self.edited = set()
        self.touched = (set(), set())

    def headers(self, kind: int) -> list:
        if kind == REQUEST:
            return self.request_headers
        if kind == RESPONSE:
            return self.response_headers
        raise HostTrap(f"header kind {kind} is not supported (trailers are not)")

    def body(self, kind: int) -> Body:
        if kind == REQUEST:
            return self.request_body
        if kind == RESPONSE:
            return self.response_body
        raise HostTrap(f"body kind {kind} does not exist")


class HttpState:
    """What the http_handler functions know about one instance: its config and features,
    and the exchange of the call in progress (None between calls)."""

    __slots__ = ("config", "features", "exchange", "memory")

    def __init__(self, config: bytes) -> None:
        self.config = config
        #: the instance's GuestMemory, bound before its start functions run
        self.memory: GuestMemory | None = None
        #: features enabled outside a request (in _start or _initialize): every request gets them
        self.features = 0
        self.exchange: Exchange | None = None


# ---- the functions ----------------------------------------------------------------------------

#: an HTTP token (RFC 9110): methods and header names
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
#: what a header value may not hold
_VALUE_BREAK = re.compile(r"[\r\n\0]")
#: an escaped origin-form target: a leading slash, then visible ASCII only
_TARGET = re.compile(r"/[\x21-\x7e]*\Z")


def _text(memory: GuestMemory, ptr: int, length: int) -> str:
    # NOTE: GuestMemory bounds-checks (AbiError, which the boundary turns into a trap)
    return memory.read(ptr, length).decode("latin-1")


def _write_bounded(memory: GuestMemory, buf: int, limit: int, data: bytes) -> int:
    """The spec's (buf, buf_limit) -> len: write only when it fits, always return the length."""
    size = len(data)
    if size <= limit:
        memory.write(buf, data)
    return size


def _write_list(memory: GuestMemory, buf: int, limit: int, items: list[str]) -> int:
    """NUL-terminated ``items`` under the buffer rule, as ``count << 32 | len``."""
    if not items:
        return 0
    data = b"".join(item.encode("latin-1") + b"\0" for item in items)
    _write_bounded(memory, buf, limit, data)
    return len(items) << 32 | len(data)


def _exchange(http: HttpState, name: str) -> Exchange:
    exchange = http.exchange
    if exchange is None:
        raise HostTrap(f"{name} called outside handle_request and handle_response")
    return exchange


def enable_features(http: HttpState, memory, features: int) -> int:
    """Enable what this host supports of ``features``; the flags now in effect. Outside a
    request (``_start``) for every request, inside one for that request only."""
    enabled = features & SUPPORTED_FEATURES
    exchange = http.exchange
    if exchange is None:
        http.features |= enabled
        return http.features
    exchange.features |= enabled
    return exchange.features


def get_config(http: HttpState, memory, buf: int, limit: int) -> int:
    return _write_bounded(memory, buf, limit, http.config)


def log_enabled(http: HttpState, memory, level: int) -> int:
    """Info, warn and error are kept (as the guest log keeps mw.log's levels); debug is not."""
    return 1 if LOG_INFO <= _signed(level) < LOG_NONE else 0


def get_method(http: HttpState, memory, buf: int, limit: int) -> int:
    return _write_bounded(memory, buf, limit, _exchange(http, "get_method").method.encode("latin-1"))


def set_method(http: HttpState, memory, ptr: int, length: int) -> None:
    exchange = _request_phase(http, "set_method")
    method = _text(memory, ptr, length)
    if not _TOKEN.match(method):
        raise HostTrap(f"set_method: {method[:40]!r} is not an HTTP method token")
    exchange.method = method
    exchange.edited.add("method")


def get_uri(http: HttpState, memory, buf: int, limit: int) -> int:
    return _write_bounded(memory, buf, limit, _exchange(http, "get_uri").uri.encode("latin-1"))


def set_uri(http: HttpState, memory, ptr: int, length: int) -> None:
    exchange = _request_phase(http, "set_uri")
    uri = _text(memory, ptr, length) or "/"
    if not _TARGET.match(uri):
        raise HostTrap(f"set_uri: {uri[:80]!r} is not an escaped origin-form request target")
    exchange.uri = uri
    exchange.edited.add("uri")


def get_protocol_version(http: HttpState, memory, buf: int, limit: int) -> int:
    return _write_bounded(memory, buf, limit, _exchange(http, "get_protocol_version").protocol.encode("latin-1"))


def get_source_addr(http: HttpState, memory, buf: int, limit: int) -> int:
    return _write_bounded(memory, buf, limit, _exchange(http, "get_source_addr").source_addr.encode("latin-1"))


def get_header_names(http: HttpState, memory, kind: int, buf: int, limit: int) -> int:
    exchange = _exchange(http, "get_header_names")
    if kind in (REQUEST_TRAILERS, RESPONSE_TRAILERS):
        return 0  # no trailers here: an empty list, as the spec asks of such hosts
    names = list(dict.fromkeys(name for name, _ in exchange.headers(kind)))
    return _write_list(memory, buf, limit, names)


def get_header_values(http: HttpState, memory, kind: int, name_ptr: int, name_len: int,
                      buf: int, limit: int) -> int:
    exchange = _exchange(http, "get_header_values")
    if kind in (REQUEST_TRAILERS, RESPONSE_TRAILERS):
        return 0
    name = _text(memory, name_ptr, name_len).lower()
    values = [value for have, value in exchange.headers(kind) if have == name]
    return _write_list(memory, buf, limit, values)


def _header_edit(http: HttpState, memory, kind: int, name_ptr: int, name_len: int, what: str) -> tuple[Exchange, str]:
    exchange = _exchange(http, what)
    if kind in (REQUEST_TRAILERS, RESPONSE_TRAILERS):
        raise HostTrap(f"{what}: trailers are not supported")
    if kind == REQUEST and exchange.phase != "request":
        raise HostTrap(f"{what}: the request headers are read-only in handle_response")
    name = _text(memory, name_ptr, name_len).lower()
    if not _TOKEN.match(name):
        raise HostTrap(f"{what}: {name[:40]!r} is not a header name")
    exchange.edited.add("request_headers" if kind == REQUEST else "response_headers")
    exchange.touched[kind].add(name)
    return exchange, name


def _value(memory, ptr: int, length: int, what: str) -> str:
    value = _text(memory, ptr, length)
    if _VALUE_BREAK.search(value):
        raise HostTrap(f"{what}: a header value may not hold CR, LF or NUL")
    return value


def set_header_value(http: HttpState, memory, kind: int, name_ptr: int, name_len: int,
                     value_ptr: int, value_len: int) -> None:
    exchange, name = _header_edit(http, memory, kind, name_ptr, name_len, "set_header_value")
    value = _value(memory, value_ptr, value_len, "set_header_value")
    headers = exchange.headers(kind)
    headers[:] = [pair for pair in headers if pair[0] != name]
    headers.append((name, value))


def add_header_value(http: HttpState, memory, kind: int, name_ptr: int, name_len: int,
                     value_ptr: int, value_len: int) -> None:
    exchange, name = _header_edit(http, memory, kind, name_ptr, name_len, "add_header_value")
    exchange.headers(kind).append((name, _value(memory, value_ptr, value_len, "add_header_value")))


def remove_header(http: HttpState, memory, kind: int, name_ptr: int, name_len: int) -> None:
    exchange, name = _header_edit(http, memory, kind, name_ptr, name_len, "remove_header")
    headers = exchange.headers(kind)
    headers[:] = [pair for pair in headers if pair[0] != name]


def read_body(http: HttpState, memory, kind: int, buf: int, limit: int) -> int:
    exchange = _exchange(http, "read_body")
    if limit == 0:
        raise HostTrap("read_body: buf_limit is 0")
    if buf + limit > memory.size():
        raise HostTrap(f"read_body: buffer [{buf}, {buf + limit}) lies outside guest memory")
    chunk, eof = exchange.body(kind).read(limit, exchange.wait_until_ns)
    memory.write(buf, chunk)
    return int(eof) << 32 | len(chunk)


def write_body(http: HttpState, memory, kind: int, ptr: int, length: int) -> None:
    exchange = _exchange(http, "write_body")
    if kind == REQUEST and exchange.phase != "request":
        raise HostTrap("write_body: the request body is read-only in handle_response")
    exchange.body(kind).write(memory.read(ptr, length))
    exchange.edited.add("request_body" if kind == REQUEST else "response_body")


def get_status_code(http: HttpState, memory) -> int:
    return _exchange(http, "get_status_code").status


def set_status_code(http: HttpState, memory, status: int) -> None:
    exchange = _exchange(http, "set_status_code")
    if not 100 <= status <= 999:
        raise HostTrap(f"set_status_code: {status} is not an HTTP status code")
    exchange.status = status
    exchange.edited.add("status")


def _request_phase(http: HttpState, name: str) -> Exchange:
    exchange = _exchange(http, name)
    if exchange.phase != "request":
        raise HostTrap(f"{name} may only be called in handle_request")
    return exchange


def _signed(value: int) -> int:
    return value - (1 << 32) if value & 0x8000_0000 else value


# ---- the boundary ---------------------------------------------------------------------------

_FUNCTIONS = {
    "enable_features": enable_features, "get_config": get_config, "log_enabled": log_enabled,
    "get_method": get_method, "set_method": set_method, "get_uri": get_uri, "set_uri": set_uri,
    "get_protocol_version": get_protocol_version, "get_header_names": get_header_names,
    "get_header_values": get_header_values, "set_header_value": set_header_value,
    "add_header_value": add_header_value, "remove_header": remove_header, "read_body": read_body,
    "write_body": write_body, "get_status_code": get_status_code, "set_status_code": set_status_code,
    "get_source_addr": get_source_addr,
}


def _log(registry: StoreRegistry):
    """``log(level, ptr, len)``: a line into the guest log; never traps (the spec asks hosts
    to ignore a message they cannot log)."""
    @ffi.wasmtime_func_unchecked_callback_t
    def callback(_env, caller, vals, _count):
        try:
            state = registry.get(_context_of(caller))
            if state is None:
                return 0
            level = _signed(vals[0].i32 & _U32)
            ptr, length = vals[1].i32 & _U32, vals[2].i32 & _U32
            mapped = _LOG_LEVELS.get(level)
            if mapped is None or state.log.over_budget(length):
                return 0
            http = state.http
            if http is None or http.memory is None:
                return 0
            memory = http.memory
            memory.refresh()
            if ptr + length > memory.size():
                state.log.line(3, b"http_handler.log called with a buffer outside guest memory")
                return 0
            state.log.line(mapped, memory.read(ptr, length))
        except BaseException:  # noqa: BLE001 - nothing may unwind into wasmtime
            logger.exception("http_handler.log failed")
        return 0
    return callback


def _callback(registry: StoreRegistry, name: str):
    """A raw host function: i32 arguments in, the body's int result out (i32 or i64 by the
    spec's signature), a HostTrap or any failure as a trap naming the function."""
    body = _FUNCTIONS[name]
    params, results = IMPORTS[name]
    arity = len(params)
    wide = results == (_I64,)
    returns = bool(results)

    @ffi.wasmtime_func_unchecked_callback_t
    def callback(_env, caller, vals, _count):
        http = None
        try:
            state = registry.get(_context_of(caller))
            http = state.http if state is not None else None
            if http is None or http.memory is None:
                return _trap(f"http_handler.{name}: this instance has no http-wasm state")
            # PERF: the instance's own GuestMemory (one FFI size check), no caller export lookup
            memory = http.memory
            memory.refresh()
            args = [vals[i].i32 & _U32 for i in range(arity)]
            result = body(http, memory, *args)
            exchange = http.exchange
            if exchange is not None and exchange.wait_until_ns and monotonic_ns() > exchange.wait_until_ns:
                return _trap(DEADLINE_TRAP)  # a body read from a slow client ran past the deadline
            if returns:
                if wide:
                    vals[0].i64 = result - (1 << 64) if result >= (1 << 63) else result
                else:
                    result &= _U32
                    vals[0].i32 = result - (1 << 32) if result >= (1 << 31) else result
            return 0
        except HostDeadline:
            return _trap(DEADLINE_TRAP)
        except (HostTrap, AbiError) as err:
            return _trap(f"http_handler.{name}: {err}")
        except BaseException as err:  # noqa: BLE001 - nothing may unwind into wasmtime
            exchange = http.exchange if http is not None else None
            if exchange is not None and exchange.wait_until_ns and monotonic_ns() > exchange.wait_until_ns:
                return _trap(DEADLINE_TRAP)  # e.g. the client's body did not arrive in time
            logger.exception("http_handler.%s failed", name)
            return _trap(f"http_handler.{name} failed in the host: {type(err).__name__}")
    return callback


def define_http_handler(linker: wasmtime.Linker, registry: StoreRegistry) -> list:
    """Define every ``http_handler`` function on ``linker``; returns the callbacks, which must
    live as long as the linker's engine."""
    callbacks = []
    for name, (params, results) in IMPORTS.items():
        functype = wasmtime.FuncType([wasmtime.ValType.i32() if p == _I32 else wasmtime.ValType.i64() for p in params],
                                     [wasmtime.ValType.i32() if r == _I32 else wasmtime.ValType.i64() for r in results])
        callback = _log(registry) if name == "log" else _callback(registry, name)
        callbacks.append(define_unchecked(linker, MODULE, name, functype, callback))
    return callbacks


def config_bytes(config) -> bytes:
    """What ``get_config`` returns for a stage config: a table ``{"raw": "..."}`` with that one
    key gives the string's UTF-8 bytes as they are; any other table its compact JSON (keys
    sorted, as Traefik hands plugin configs to http-wasm guests); an empty table, no bytes."""
    import json

    if not config:
        return b""
    if set(config) == {"raw"} and isinstance(config["raw"], str):
        return config["raw"].encode()
    return json.dumps(config, separators=(",", ":"), sort_keys=True, default=str).encode()
