"""One guest instance in its own store: the ABI's call sequence over the fast call path."""

from __future__ import annotations

from time import monotonic_ns

import wasmtime

from ..abi import ABI_VERSION
from ..errors import AbiError, GuestError, GuestLoadError, ModuleRefused
from .fastcall import (GuestMemory, RawFunc, epoch_deadline, message_call, set_epoch_deadline, set_fuel,
                       store_context)
from .guestlog import GuestLog
from .limits import Limits
from .module import GuestModule
from .stores import StoreState
from .ticker import tick_switch


#: the least time an instance gets to start (``_initialize`` and ``mw_init``), in milliseconds
START_TIMEOUT_MS = 1000


class GuestInstance:
    """A module instance with its exports resolved once. Serves one call at a time.

    After any failure (trap, timeout, bad output) the instance must be discarded: its memory
    may be half-written. ``close()`` is idempotent; calls after it fail loudly.
    """

    __slots__ = ("module", "limits", "log", "_store", "_context", "_memory", "_alloc",
                 "_on_request", "_on_response", "_init", "_deadline", "_start_ms", "_state", "_call_clock",
                 "_runtime", "_max_output", "_fuel", "_epoch", "closed", "request_call", "__weakref__")

    def __init__(self, module: GuestModule, limits: Limits, label: str) -> None:
        runtime = module.runtime
        runtime.ensure_ticker()
        self.module = module
        self.limits = limits
        self.log = GuestLog(label, limits.max_log_bytes, module.sha256)
        self._runtime = runtime
        self._deadline = runtime.deadline_ticks(limits.timeout_ms)
        # NOTE: starting (``_initialize``, ``mw_init``) is once per instance, not a request:
        # it gets at least START_TIMEOUT_MS, so a loaded machine does not refuse a Go runtime
        # that starts in ~1 ms on an idle one (a looping start is still interrupted)
        self._start_ms = max(limits.timeout_ms, START_TIMEOUT_MS)
        self._max_output = limits.max_output_bytes
        self._fuel = limits.fuel if module.fuel else 0
        self._state = StoreState(self.log, limits.timeout_ms)
        self._call_clock = self._state if module.can_wait else None
        self._store = wasmtime.Store(module.flavour.engine)
        self._context = store_context(self._store)
        self.closed = False
        # PERF: for a caller that runs the request call itself (Stage.on_request): the
        # roundtrip ``(message) -> bytes`` with this instance's limits, set only while the
        # instance is open and needs no per-call work besides its log's (no fuel to refill,
        # no guest clock to start in Python); None otherwise: then call ``on_request``
        self.request_call = None
        self._epoch = None
        runtime.track(self)
        try:
            # NOTE: before any guest code runs in the store: from now on every call into it
            # ends at its deadline through the callback (fastcall.epoch_deadline)
            self._epoch = epoch_deadline(self._store, tick_switch(module.flavour.engine))
            self._store.set_limits(memory_size=limits.max_memory_bytes)
            if module.needs_wasi:
                self._store.set_wasi(self._wasi_config())
                self._state.clock_base_ns = monotonic_ns()  # the WASI monotonic clock starts now
            runtime.register_store(self._context, self._state)
            self._store.set_epoch_deadline(self._deadline)
            if module.fuel:
                set_fuel(self._context, limits.fuel)
            self._bind(module.instantiate(self._store))
        except wasmtime.WasmtimeError as err:
            self.close()
            raise GuestLoadError(f"cannot instantiate the module: {err}") from err
        except Exception:
            self.close()
            raise

    @staticmethod
    def _wasi_config() -> wasmtime.WasiConfig:
        # NOTE: no preopened folders, no env, no args, empty stdin: WASI here means clock,
        # random and stdio. stdout and stderr reach the guest log through our own fd_write
        # (wasi.py), never through WasiConfig's custom streams: those call Python from
        # wasmtime's tokio threads, which aborted the process at interpreter exit.
        return wasmtime.WasiConfig()

    def _bind(self, instance: wasmtime.Instance) -> None:
        exports = instance.exports(self._store)
        context = self._context
        self._memory = GuestMemory(context, exports["memory"])
        self._alloc = RawFunc(context, exports["mw_alloc"], 1)
        self._on_request = message_call(context, exports["mw_alloc"], exports["mw_on_request"], self._memory,
                                        self._epoch)
        self._on_request.max_output = self._max_output
        self._on_request.deadline = self._deadline
        if self._call_clock is not None and hasattr(self._on_request, "started_ns"):
            # PERF: the C roundtrip records each call's start: a guest that can wait in
            # poll_oneoff (every Go guest: its runtime imports it) reads its deadline from
            # there, and its request calls need no Python clock read (the flat path)
            self._state.request_clock = self._on_request
        if not self._fuel and (self._call_clock is None or self._state.request_clock is not None):
            self.request_call = self._on_request
        names = self.module.exports
        self._on_response = (message_call(context, exports["mw_alloc"], exports["mw_on_response"], self._memory,
                                          self._epoch)
                             if "mw_on_response" in names else None)
        self._init = RawFunc(context, exports["mw_init"], 2) if "mw_init" in names else None
        self._enter(start=True)
        try:
            if "_initialize" in names:
                RawFunc(context, exports["_initialize"], 0).call()
            version = RawFunc(context, exports["mw_abi_version"], 1).call_i32()
        except GuestError as err:
            raise GuestLoadError(f"the module failed while starting: {err}") from err
        finally:
            self._leave(start=True)
        if version != ABI_VERSION:
            raise ModuleRefused(f"mw_abi_version returned {version}; this host speaks ABI v{ABI_VERSION}")

    # ---- the call sequence --------------------------------------------------------------

    def _enter(self, start: bool = False) -> None:
        if self.closed:
            raise GuestError("the instance is closed")
        self.log.begin_call()
        clock = self._call_clock
        if clock is not None:  # PERF: only a guest that can wait in poll_oneoff pays a clock read
            clock.started_ns = monotonic_ns()
        if start:
            self._state.timeout_ns = self._start_ms * 1_000_000
            set_epoch_deadline(self._context, self._runtime.deadline_ticks(self._start_ms))
        else:
            set_epoch_deadline(self._context, self._deadline)
        if self._fuel:
            set_fuel(self._context, self._fuel)

    def _leave(self, start: bool = False) -> None:
        if start:
            self._state.timeout_ns = self.limits.timeout_ms * 1_000_000
        if self.log.pending:
            self.log.end_call()

    def _write_input(self, data: bytes) -> int:
        size = len(data)
        ptr = self._alloc.call_u32_u32(size)
        self._memory.refresh()
        if ptr == 0 and size:
            raise AbiError(f"mw_alloc({size}) returned 0")
        self._memory.write(ptr, data)
        return ptr

    def init(self, config: bytes) -> None:
        """Hand the stage's config to ``mw_init``; a refusal is a GuestLoadError."""
        if self._init is None:
            return
        self._enter(start=True)
        try:
            status = self._init.call_ptr_len_i32(self._write_input(config), len(config))
        except (GuestError, AbiError) as err:
            raise GuestLoadError(f"mw_init failed: {err}") from err
        finally:
            self._leave(start=True)
        if status != 0:
            detail = f"; the guest logged: {' | '.join(self.log.recent)}" if self.log.recent else ""
            raise GuestLoadError(f"mw_init refused the config (returned {status}){detail}")

    def on_request(self, request: bytes) -> bytes:
        """Request in, the raw Action bytes out (validated by the caller's codec)."""
        # PERF: the per-request call, with ``_enter`` written out (one Python call less; the
        # roundtrip sets the epoch deadline itself); keep the two in step, and in step with
        # Stage.on_request, which writes this out for an instance with ``request_call``.
        if self.closed:
            raise GuestError("the instance is closed")
        log = self.log
        log.begin_call()
        clock = self._call_clock
        if clock is not None:
            clock.started_ns = monotonic_ns()
        if self._fuel:
            set_fuel(self._context, self._fuel)
        try:
            return self._on_request(request, self._max_output, self._deadline)
        finally:
            if log.pending:
                log.end_call()

    def on_response(self, response: bytes) -> bytes:
        """Response in, the raw ResponseAction bytes out; only when the module exports it."""
        assert self._on_response is not None, "check module.has_on_response first"
        self._enter()
        try:
            return self._on_response(response, self._max_output, self._deadline)
        finally:
            if self.log.pending:
                self.log.end_call()

    def memory_exhausted(self) -> bool:
        """Whether linear memory reached 3/4 of the stage's limit: after a trap, the likely
        cause is a failed ``memory.grow`` (guests abort when allocation fails; normal ones
        stay far below the limit)."""
        if self.closed:
            return False
        self._memory.refresh()
        return self._memory.size() * 4 >= self.limits.max_memory_bytes * 3

    # ---- ownership ----------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.request_call = None
        self._runtime.unregister_store(self._context)
        self._store.close()

    def __enter__(self) -> "GuestInstance":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
