"""A stage whose module speaks the http-wasm handler ABI, in the same pipeline as ABI v1 stages.

To the pipeline, a rollout and a shadow it is a Stage: ``call_request`` answers an Action,
``call_response`` a ResponseAction, failures go through the same policy, meters and logs.
Inside, each request becomes an ``Exchange`` the guest reads and edits through the
``http_handler`` functions:

- ``handle_request`` returning next=0 answers the client with the status, headers and body
  the guest set (an empty 200 when it set none);
- next=1 turns its edits into the Action's header edits, path and query, and the response
  headers it set into ``response_headers`` (merged into the app's response); the method,
  the raw URI and a new request body go straight into the request's WSGI environ (the web
  layer re-reads ``REQUEST_METHOD`` and ``wsgi.input`` when ``state.env_edited``);
- the instance that ran ``handle_request`` is held on the request (``state.held``) until
  ``handle_response(ctx, is_error)`` has run on it after the app: the guest's ``ctx`` and
  any state it keeps in memory belong to that instance.

Bodies (buffer_request and buffer_response, always in effect for reads) are bounded by the
stage's ``max_output_kb``.
"""

from __future__ import annotations

import io
import re
import time
from functools import partial
from urllib.parse import quote, unquote

from ..abi.messages import CONTINUE, UNCHANGED, Action, ResponseAction
from ..runtime.httpwasm import FEATURE_BUFFER_RESPONSE, Exchange, HostDeadline, HostTrap, config_bytes
from ..runtime.httpwasm_instance import HttpWasmInstance
from ..settings import StageSettings
from .failures import annotate
from .messages import RequestState, ResponseState
from .stage import Stage, _Slot

_AUTHORITY = re.compile(r"[^/?#]*")


class HttpWasmStage(Stage):
    """An immutable http-wasm stage with a pool of idle instances (see the module docstring)."""

    __slots__ = ("config_bytes", "max_body")

    def __init__(self, settings: StageSettings, module, *, isolated: bool = False) -> None:
        super().__init__(settings, module, isolated=isolated)
        self.config_bytes = config_bytes(settings.config)
        self.max_body = self.limits.max_output_bytes

    @classmethod
    def load(cls, settings: StageSettings, wasm: bytes, cache, sha256: str | None = None) -> "HttpWasmStage":
        """Compile (or fetch) the module and start the first instance (``_start`` runs there)."""
        return cls.from_module(settings, cache.load(wasm, fuel=settings.fuel > 0, sha256=sha256))

    @classmethod
    def from_module(cls, settings: StageSettings, module, *, isolated: bool = False) -> "HttpWasmStage":
        stage = cls(settings, module, isolated=isolated)
        stage._idle.append(stage._new_slot())
        return stage

    @classmethod
    def isolated(cls, settings: StageSettings, module) -> "HttpWasmStage":
        return cls.from_module(settings, module, isolated=True)

    def _new_slot(self) -> _Slot:
        instance = HttpWasmInstance(self.module, self.limits, self.label, self.config_bytes)
        self.live_instances += 1
        return _Slot(instance)

    # ---- the request phase ----------------------------------------------------------------

    def on_request(self, state: RequestState, _clock=time.perf_counter) -> Action:
        started = _clock()
        meter = self._request_meter
        try:
            slot = self._acquire()
        except BaseException:
            meter.record(_clock() - started, False)
            raise
        exchange = self._exchange(state)
        try:
            ctx, next_ = slot.instance.handle_request(exchange)
        except BaseException as err:
            annotate(err, slot.instance)
            self._discard(slot)
            meter.record(_clock() - started, False)
            raise
        if next_ and slot.instance.has_handle_response:
            if state.held is None:
                state.held = {}
            state.held[self] = (slot, exchange, ctx)
            if exchange.features & FEATURE_BUFFER_RESPONSE:
                state.wants_response_body = True
        else:
            self._idle.append(slot)
        meter.record(_clock() - started, True)
        if not next_:
            return Action(respond=True, status=exchange.status, headers=list(exchange.response_headers),
                          body=bytes(exchange.response_body.written or b""))
        return self._continue(state, exchange)

    def _exchange(self, state: RequestState) -> Exchange:
        env = state.env
        if env is None:  # a probe or a shadow's copy: no server, no body
            return Exchange(state.method, _target(state), "HTTP/1.1", _source(state.remote_addr, "0"),
                            state.headers, b"", self.max_body)
        uri = _raw_target(state, env) or _target(state)
        # NOTE: the body is read on the guest's first read_body only (most requests never pay
        # for it); a partial, not a closure over the exchange, so no reference cycle is made
        return Exchange(state.method, uri, env.get("SERVER_PROTOCOL") or "HTTP/1.1",
                        _source(env.get("REMOTE_ADDR") or state.remote_addr, env.get("REMOTE_PORT") or "0"),
                        state.headers, partial(self._read_body, state), self.max_body)

    def _read_body(self, state: RequestState, deadline_ns: int) -> bytes:
        """The request body, read once (bounded by the stage's limit and the call's deadline)
        and put back as a buffer, so that the app reads it too (buffer_request)."""
        env = state.env
        stream = env.get("wsgi.input")
        chunked = "chunked" in env.get("HTTP_TRANSFER_ENCODING", "").lower()
        try:
            length = int(env.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if stream is None or not (length or chunked):
            return b""
        if length > self.max_body:
            raise HostTrap(f"read_body: the request body of {length} bytes exceeds the stage's limit "
                           f"of {self.max_body}")
        # NOTE: a chunked body has no length: read up to one byte past the limit to see it
        data = _read_within(env, stream, self.max_body + 1 if chunked else length, deadline_ns)
        if len(data) > self.max_body:
            raise HostTrap(f"read_body: the chunked request body exceeds the stage's limit of {self.max_body}")
        env["wsgi.input"] = io.BytesIO(data)
        env["CONTENT_LENGTH"] = str(len(data))  # NOTE: a buffered chunked body now has a length
        state.env_edited = True
        return data

    def _continue(self, state: RequestState, exchange: Exchange) -> Action:
        edited = exchange.edited
        env = state.env
        if "method" in edited and exchange.method != state.method:
            state.method = exchange.method
            state.message = None
            if env is not None:
                env["REQUEST_METHOD"] = exchange.method
                state.env_edited = True
        if "request_body" in edited and env is not None:
            body = bytes(exchange.request_body.written or b"")
            env["wsgi.input"] = io.BytesIO(body)
            env["CONTENT_LENGTH"] = str(len(body))
            state.env_edited = True
        set_headers = remove_headers = path = query = None
        if "request_headers" in edited:
            set_headers, remove_headers = _header_edits(exchange.request_headers, exchange.touched[0])
        if "uri" in edited:
            raw_path, _, raw_query = exchange.uri.partition("?")
            path, query = unquote(raw_path), raw_query
            if env is not None:
                env["RAW_URI"] = env["REQUEST_URI"] = exchange.uri
                # NOTE: the raw URI is current for exactly this (path, query): a later ABI v1
                # rewrite changes them, and the next http-wasm stage then rebuilds the target
                env[RAW_TARGET_OF] = (path, query)
        response_headers = [(name.lower(), value) for name, value in exchange.response_headers] or None
        if not (set_headers or remove_headers or path is not None or response_headers):
            return CONTINUE
        return Action(set_headers=set_headers or None, remove_headers=remove_headers or None, path=path,
                      query=query, response_headers=response_headers)

    # ---- the response phase ---------------------------------------------------------------

    def on_response(self, state: RequestState, response: ResponseState) -> ResponseAction:
        held = state.held.pop(self, None) if state.held else None
        if held is None:
            return UNCHANGED  # next was 0, or the guest exports no handle_response
        slot, exchange, ctx = held
        started = time.perf_counter()
        meter = self._meters["response"]
        headers = [(name.lower(), value) for name, value in response.headers]
        body = response.body if exchange.features & FEATURE_BUFFER_RESPONSE else None
        exchange.begin_response(response.status, headers, body)
        try:
            slot.instance.handle_response(exchange, ctx, response.is_error)
        except BaseException as err:
            annotate(err, slot.instance)
            self._discard(slot)
            meter.record(time.perf_counter() - started, False)
            raise
        self._idle.append(slot)
        meter.record(time.perf_counter() - started, True)
        return _response_action(exchange)

    def release(self, state: RequestState) -> None:
        """Give back the instance held for a response phase that will not run (a shadow's
        copy is never answered)."""
        held = state.held.pop(self, None) if state.held else None
        if held is not None:
            self._idle.append(held[0])

    call_request = on_request
    call_response = on_response


def _response_action(exchange: Exchange) -> ResponseAction:
    edited = exchange.edited
    if not edited:
        return UNCHANGED
    set_headers = remove_headers = None
    if "response_headers" in edited:
        set_headers, remove_headers = _header_edits(exchange.response_headers, exchange.touched[1])
    return ResponseAction(status=exchange.status if "status" in edited else None,
                          set_headers=set_headers or None, remove_headers=remove_headers or None,
                          body=bytes(exchange.response_body.written or b"") if "response_body" in edited else None)


def _header_edits(after: list, touched: set[str]) -> tuple[list, list]:
    """ABI v1 edits (set replaces a name's values, remove drops a name) for the names the
    guest touched: their values in ``after``, or their removal when none is left."""
    set_ = [(name, value) for name, value in after if name in touched]
    kept = {name for name, _ in set_}
    return set_, [name for name in touched if name not in kept]


#: environ key: the (path, query) the environ's RAW_URI was last written for by set_uri
RAW_TARGET_OF = "mwhost.httpwasm.raw_target_of"


def _raw_target(state: RequestState, env: dict) -> str | None:
    """The server's raw URI in origin form while it still names the request's target: always
    before any rewrite, after one only when set_uri wrote it (not after an ABI v1 path edit)."""
    if state.edited_target and env.get(RAW_TARGET_OF) != (state.path, state.query):
        return None
    raw = env.get("RAW_URI") or env.get("REQUEST_URI")
    return _origin_form(raw) if raw else None


def _target(state: RequestState) -> str:
    """The request target rebuilt from the decoded path and the raw query (no server's raw URI)."""
    path = quote(state.path or "/", safe="/:@!$&'()*+,;=-._~%")
    return f"{path}?{state.query}" if state.query else path


def _origin_form(raw: str) -> str:
    """The raw target in origin form: an absolute-form target (a proxy request,
    ``http://host/a?b``) loses its scheme and authority."""
    if raw[:1] == "/":
        return raw
    scheme, sep, rest = raw.partition("://")
    if not sep:
        return raw  # "*" (OPTIONS *) and anything else the server let through, as it came
    path = rest[_AUTHORITY.match(rest).end():]
    return path if path[:1] == "/" else "/" + path


def _source(addr: str, port: str) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


#: the request body is read in chunks of this size, the deadline checked between them
_READ_CHUNK = 16 * 1024


def _read_within(env: dict, stream, length: int, deadline_ns: int) -> bytes:
    """Read ``length`` bytes before ``deadline_ns``: in chunks, the deadline checked between
    them, and each socket wait bounded by the time left when the server exposes the socket
    (gunicorn does), so a slow or silent client cannot hold a guest call far past its deadline."""
    sock = env.get("gunicorn.socket")
    previous = sock.gettimeout() if sock is not None else None
    parts: list[bytes] = []
    left = length
    try:
        while left > 0:
            remaining_s = (deadline_ns - time.monotonic_ns()) / 1e9
            if remaining_s <= 0:
                raise HostDeadline("read_body: the request body did not arrive before the call's deadline")
            if sock is not None:
                sock.settimeout(remaining_s)
            chunk = stream.read(min(left, _READ_CHUNK))
            if not chunk:
                break  # the client sent less than its Content-Length
            parts.append(chunk)
            left -= len(chunk)
    except OSError as err:
        if isinstance(err, TimeoutError) or time.monotonic_ns() >= deadline_ns:
            # NOTE: the socket wait was bounded by the time left: a slow client, not a failure
            raise HostDeadline("read_body: the request body did not arrive before the call's deadline") from err
        raise HostTrap(f"read_body: reading the request body failed: {err}") from err
    finally:
        if sock is not None:
            try:
                sock.settimeout(previous)
            except OSError:
                pass
    return b"".join(parts)
