"""One http-wasm guest instance: ``handle_request`` and ``handle_response`` over the fast call path.

The limits are ABI v1's (GuestInstance's): the store's memory limit, the epoch deadline and
fuel per call, the WASI shadows, a longer allowance for starting. What differs is the call
sequence: no messages cross the boundary; the guest asks for each field through the
``http_handler`` functions, which read and edit the ``Exchange`` the call was given.
"""

from __future__ import annotations

from time import monotonic_ns

import wasmtime

from ..errors import GuestError, GuestLoadError
from .fastcall import GuestMemory, RawFunc, _trap_summary, is_epoch_deadline
from .httpwasm import Exchange, HttpState
from .instance import GuestInstance
from .limits import Limits
from .module import GuestModule

_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF


class _GuestFunc(RawFunc):
    """RawFunc with the two signatures of the http-wasm exports."""

    __slots__ = ()

    def call_u64(self) -> int:
        """``() -> i64``, read as unsigned (``ctx << 32 | next``)."""
        self._invoke()
        return self._vals[0].i64 & _U64

    def call_i32_i32(self, a: int, b: int) -> None:
        """``(i32, i32) -> ()``"""
        vals = self._vals
        vals[0].i32 = a if a < (1 << 31) else a - (1 << 32)
        vals[1].i32 = b
        self._invoke()


class HttpWasmInstance(GuestInstance):
    """An http-wasm guest in its own store; serves one exchange at a time.

    ``_start`` (TinyGo and Go wasip1 commands; an exit with status 0 is a normal end) or
    ``_initialize`` (reactors) runs once at instantiation, with ``get_config`` already
    answering ``config``. Discard the instance after any failure, as with ABI v1.
    """

    __slots__ = ("http", "_handle_request", "_handle_response")

    def __init__(self, module: GuestModule, limits: Limits, label: str, config: bytes) -> None:
        self.http = HttpState(config)
        super().__init__(module, limits, label)

    def _bind(self, instance: wasmtime.Instance) -> None:
        self._state.http = self.http
        exports = instance.exports(self._store)
        context = self._context
        names = self.module.exports
        self._memory = GuestMemory(context, exports["memory"])
        self.http.memory = self._memory
        self._init = None
        self._on_response = None
        self._handle_request = _GuestFunc(context, exports["handle_request"], 1)
        self._handle_response = (_GuestFunc(context, exports["handle_response"], 2)
                                 if "handle_response" in names else None)
        self._enter(start=True)
        try:
            if "_initialize" in names:
                RawFunc(context, exports["_initialize"], 0).call()
            elif "_start" in names:
                self._run_start(exports["_start"])
        except GuestError as err:
            raise GuestLoadError(f"the module failed while starting: {err}") from err
        finally:
            self._leave(start=True)

    def _run_start(self, start: wasmtime.Func) -> None:
        # NOTE: once per instance, so wasmtime-py's checked call: it tells an exit (Go and
        # TinyGo commands call proc_exit(0) when main returns) from a trap.
        try:
            start(self._store)
        except wasmtime.ExitTrap as err:
            if err.code != 0:
                raise GuestError(f"_start exited with status {err.code}") from err
        except wasmtime.Trap as err:
            raise GuestError(f"_start trapped: {_trap_summary(err.message or '')}") from err
        except wasmtime.WasmtimeError as err:
            if is_epoch_deadline(str(err)):  # the store's epoch callback ended it: an interrupt
                raise GuestError("_start trapped: interrupt") from err
            raise GuestError(f"_start failed: {_trap_summary(str(err))}") from err

    @property
    def has_handle_response(self) -> bool:
        return self._handle_response is not None

    def handle_request(self, exchange: Exchange) -> tuple[int, bool]:
        """Run ``handle_request`` on ``exchange``; returns (ctx, next)."""
        exchange.features |= self.http.features
        packed = self._call(exchange, None)
        return packed >> 32, bool(packed & 1)

    def handle_response(self, exchange: Exchange, ctx: int, is_error: bool) -> None:
        """Run ``handle_response(ctx, is_error)`` on ``exchange`` (in its response phase)."""
        assert self._handle_response is not None, "check has_handle_response first"
        self._call(exchange, (ctx, int(is_error)))

    def _call(self, exchange: Exchange, response_args: tuple[int, int] | None) -> int:
        self._enter()
        state = self._state
        state.started_ns = monotonic_ns()
        exchange.wait_until_ns = state.deadline_ns
        self.http.exchange = exchange
        try:
            if response_args is None:
                return self._handle_request.call_u64()
            self._handle_response.call_i32_i32(*response_args)
            return 0
        finally:
            self.http.exchange = None
            self._memory.refresh()
            if self.log.pending:
                self.log.end_call()
