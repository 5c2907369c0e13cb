"""The per-request state the pipeline reads and edits, and how edits apply to it."""

from __future__ import annotations

import json

from ..abi.codec import Codec
from ..abi.messages import CONTINUE, Action
from ..runtime import accel
from .environ import environ_headers

HeaderList = list  # list[tuple[str, str]], names lower case


class RequestState:
    """One request as the stages see it, plus what the pipeline owes the response phase.

    Made ``from_environ``, the headers stay in the WSGI environ until something reads
    ``headers`` (a rollout's key, a snapshot): the request is packed straight from the
    environ (in C when the accelerator is built), and header edits are kept as an overlay
    (the names in ``edited_names`` dropped from the environ's headers, then ``_added``), so
    a request whose stages only edit a few headers never turns its headers into a list.
    """

    __slots__ = ("method", "path", "query", "_headers", "_environ", "_entries", "_added", "remote_addr",
                 "scheme", "ctx",
                 "ran", "response_calls", "edited_names", "edited_target", "variants", "shadows",
                 "message", "env", "env_edited", "held", "wants_response_body")

    def __init__(self, method: str, path: str, query: str, headers: HeaderList | None,
                 remote_addr: str, scheme: str, environ: dict | None = None) -> None:
        self.method = method
        self.path = path
        self.query = query
        self._headers = headers
        # the WSGI environ the headers are read from when ``headers`` is None (from_environ)
        self._environ = environ
        # PERF: the environ's headers packed once (the accelerator's HeaderEntries, or the
        # environ itself when only Python may pack it): a stage after an edit copies the
        # unedited headers' bytes instead of reading the environ again. This request's only.
        self._entries = None
        # the overlay's added pairs (set_headers, in order), once a stage edited a lazy state
        self._added: HeaderList | None = None
        self.remote_addr = remote_addr
        self.scheme = scheme
        self.ctx: dict[str, str] = {}
        # (stage, response_headers) for each stage whose request phase completed, in order
        self.ran: list = []
        # whether any stage in ``ran`` exports mw_on_response
        self.response_calls = False
        # header names some stage removed or set (the web layer rewrites only these)
        self.edited_names: set[str] = set()
        self.edited_target = False
        # stage name -> (CanaryStage, variant) for stages under a rollout; None without any
        self.variants: dict | None = None
        # shadow jobs (host/pipeline/shadow.py) for the web layer to hand over; None without any
        self.shadows: list | None = None
        # PERF: the packed Request the stages are sent, made by the first stage that needs it
        # and reused until an edit; change the request only through ``apply`` (or reset this).
        self.message: bytes | None = None
        # NOTE: for http-wasm stages (httpwasm_stage.py): the WSGI environ the request came
        # in (raw URI, protocol, body stream; None outside a server), whether such a stage
        # changed its method or body there (the web layer then re-reads them), the guest
        # instances they hold from the request to the response phase, and whether one asked
        # for the response body (buffer_response)
        self.env = environ
        self.env_edited = False
        self.held: dict | None = None
        self.wants_response_body = False

    @classmethod
    def from_environ(cls, method: str, path: str, query: str, environ: dict, remote_addr: str,
                     scheme: str) -> "RequestState":
        """A request whose headers are read from ``environ`` when first needed."""
        return cls(method, path, query, None, remote_addr, scheme, environ)

    @property
    def headers(self) -> HeaderList:
        """The request's headers as (name, value) pairs, names lower case, in environ order."""
        headers = self._headers
        if headers is None:
            headers = environ_headers(self._environ)
            if self._added is not None:  # the overlay's edits, applied once
                edited = self.edited_names
                headers = [pair for pair in headers if pair[0] not in edited]
                headers.extend(self._added)
                self._added = None
            self._headers = headers
        return headers

    @headers.setter
    def headers(self, headers: HeaderList) -> None:
        self._headers = headers
        self._added = None

    def edited_headers(self) -> HeaderList:
        """Pairs holding every value the names in ``edited_names`` now have (what the web
        layer writes back): the overlay's added pairs while the headers are still in the
        environ (edited names were dropped from it), else the whole list."""
        if self._headers is None:
            return self._added or []
        return self._headers

    def pack(self, codec: Codec) -> bytes:
        """The Request message as stages receive it (``message`` caches it per request)."""
        # PERF: in C straight from the environ (or the edited list) when the accelerator is
        # built; the codec otherwise, or for an input only Python packs (the same bytes)
        headers = self._headers
        native = accel.ACCEL
        if native is None:
            message = None
        elif headers is None:  # PERF: the extension called directly (no wrapper frame)
            entries = self._entries
            if entries is None:
                entries = self._entries = native.header_entries(self._environ) or self._environ
            if self.env_edited:  # NOTE: an http-wasm stage changed the environ: read it again
                entries = self._entries = self._environ
            added = self._added
            message = native.pack_request(self.method, self.path, self.query, entries, self.remote_addr,
                                          self.scheme, self.ctx, None if added is None else self.edited_names,
                                          added)
        else:
            message = native.pack_request(self.method, self.path, self.query, headers, self.remote_addr,
                                          self.scheme, self.ctx, None, None)
        if message is None:
            message = codec.encode_request(self.method, self.path, self.query, self.headers,
                                           self.remote_addr, self.scheme, self.ctx)
        return message

    def request_id(self) -> str | None:
        """The request's id for logs: a stage's ``request_id`` ctx, else ``x-request-id``."""
        rid = self.ctx.get("request_id")
        if rid is None:
            if self._headers is None and self._added is None:  # NOTE: no edit: the environ's value
                return self._environ.get("HTTP_X_REQUEST_ID")
            rid = next((value for name, value in self.headers if name == "x-request-id"), None)
        return rid

    def apply(self, action: Action) -> None:
        """Apply a ``continue`` action's request edits and ctx."""
        if action is CONTINUE:
            return  # PERF: the shared bare continue (the common case) changes nothing
        remove, set_ = action.remove_headers, action.set_headers
        if remove or set_:
            edited = self.edited_names
            if remove:
                edited.update(remove)
            if self._headers is None:
                # PERF: ``edit_headers`` on the overlay, written out (one frame less per
                # stage that edits): earlier added pairs of a dropped name go, ``set_`` is
                # appended (to a new list: decoded actions are shared, never mutated)
                added = self._added
                if not added:
                    added = []  # nothing added yet, nothing to drop (the common first edit)
                elif remove or len(set_) != 1:
                    drop = set(remove) if remove else set()
                    if set_:
                        for name, _ in set_:
                            drop.add(name)
                    added = [pair for pair in added if pair[0] not in drop]
                else:  # PERF: one header set (add_header's case): no drop set to make
                    name = set_[0][0]
                    added = [pair for pair in added if pair[0] != name]
                if set_:
                    added.extend(set_)
                self._added = added
            else:
                self._headers = edit_headers(self._headers, remove, set_)
            if set_:
                for name, _ in set_:  # PERF: a loop, not a generator (one per stage that edits)
                    edited.add(name)
            self.message = None  # each edit means the next stage gets the request packed again
        if action.path is not None:
            self.path = action.path
            self.edited_target = True
            self.message = None
        if action.query is not None:
            self.query = action.query
            self.edited_target = True
            self.message = None
        if action.ctx:
            self.ctx.update(action.ctx)
            self.message = None


#: PERF: a state ``__init__`` made, which ``_accel.clone_state`` copies slot by slot (the web
#: layer makes each request's state that way: no ``__init__`` frame); it holds only immutable
#: defaults and empty containers (the copy gets new empty ones)
STATE_PROTOTYPE = RequestState("", "", "", None, "", "", None)


class ResponseState:
    """The response as the response phase sees and edits it."""

    __slots__ = ("status", "headers", "body", "changed", "is_error")

    def __init__(self, status: int, headers: HeaderList, body: bytes | None = None,
                 is_error: bool = False) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.changed = False
        # the app raised (falcon's req_succeeded was false): http-wasm's handle_response is_error
        self.is_error = is_error

    def replace(self, status: int, headers: HeaderList, body: bytes | None) -> None:
        self.status, self.headers, self.body = status, headers, body
        self.changed = True


def edit_headers(headers: HeaderList, remove: list[str] | None, set_: HeaderList | None) -> HeaderList:
    """ABI v1 header edits: drop ``remove`` and every name in ``set_``, then append ``set_``."""
    drop = set(remove) if remove else set()
    if set_:
        drop.update(name for name, _ in set_)
    edited = [pair for pair in headers if pair[0] not in drop]
    if set_:
        edited.extend(set_)
    return edited


def problem(status: int, title: str, detail: str, **extra: str) -> tuple[int, HeaderList, bytes]:
    """An RFC 9457 problem response as (status, headers, body)."""
    body = json.dumps({"type": "about:blank", "title": title, "status": status,
                       "detail": detail, **extra}).encode()
    return status, [("content-type", "application/problem+json")], body


def stage_failed(stage_name: str) -> tuple[int, HeaderList, bytes]:
    """What a client sees when a fail_closed stage fails: the stage's name, no guest internals."""
    return problem(503, "Service Unavailable",
                   f"The middleware stage {stage_name!r} failed; the request was not processed.",
                   stage=stage_name)
