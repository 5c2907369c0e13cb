"""One wasmtime engine per process, its linker (``mw.log`` + WASI) and its epoch ticker (ticker.py)."""

from __future__ import annotations

import atexit
import ctypes
import importlib.metadata
import logging
import os
import weakref

import wasmtime

from .httpwasm import define_http_handler
from .stores import StoreRegistry, StoreState
from .ticker import TICK_MS, start_ticker
from .wasi import define_shadowed_wasi

logger = logging.getLogger("mwhost.runtime")

_WASMTIME_VERSION = importlib.metadata.version("wasmtime")


class Flavour:
    """One engine configuration with its linker. Epoch interruption is always on; fuel
    metering is a separate flavour because it is an engine-wide setting that costs every
    call (compiled artifacts of the two flavours are not interchangeable)."""

    def __init__(self, parallel_compilation: bool, fuel: bool, host_log, stores: StoreRegistry,
                 epoch: bool = True) -> None:
        config = wasmtime.Config()
        config.epoch_interruption = epoch
        config.consume_fuel = fuel
        config.parallel_compilation = parallel_compilation
        self.fuel = fuel
        self.engine = wasmtime.Engine(config)
        self.linker = wasmtime.Linker(self.engine)
        # NOTE: WASI with our poll_oneoff (bounded by the call's deadline) and fd_write (stdio
        # into the guest log on the calling thread); see wasi.py.
        self._wasi_callbacks = define_shadowed_wasi(self.linker, stores)
        # the http-wasm handler ABI's imports, for guests of that ABI (httpwasm.py)
        self._http_callbacks = define_http_handler(self.linker, stores)
        # NOTE: a FuncType belongs to the engine it was made for; build it per engine.
        log_type = wasmtime.FuncType([wasmtime.ValType.i32()] * 3, [])
        self.linker.define_func("mw", "log", log_type, host_log, access_caller=True)
        #: what a compiled artifact depends on besides the module bytes (see registry.cache)
        self.key = f"wasmtime-{_WASMTIME_VERSION}-{'epoch' if epoch else 'noepoch'}{'-fuel' if fuel else ''}"


class Runtime:
    """Engines, linkers and the epoch ticker shared by every guest instance of this process.

    Create it after fork (gunicorn workers each build their own): neither the engine's
    ticker thread nor compiled state survives ``fork``. ``parallel_compilation`` must be off in
    a process forked from one that compiled in parallel (rayon's pool does not survive fork).
    """

    def __init__(self, parallel_compilation: bool = True, *, epoch_interruption: bool = True) -> None:
        # NOTE: epoch_interruption=False exists to measure what the wall-time limit costs
        # (bench/limits_cost.py); without it a guest that never returns blocks its worker.
        self._parallel = parallel_compilation
        self._epoch = epoch_interruption
        # store context address -> StoreState (log, call deadline) of the instance in that store
        self.stores = StoreRegistry()
        self.plain = Flavour(parallel_compilation, False, self._host_log, self.stores, epoch_interruption)
        self._fueled: Flavour | None = None
        self.engine = self.plain.engine
        self.linker = self.plain.linker
        # NOTE: close every live instance at exit, while the interpreter is whole (tidy; the
        # exit aborts came from WASI stdio callbacks, which no longer exist: see wasi.py).
        self._instances: weakref.WeakSet = weakref.WeakSet()
        atexit.register(self.close_instances)
        self._ticker_pid = 0
        self._tickers: list = []  # one per engine (ticker.py), in the process that started them
        self._owner_pid = os.getpid()

    @property
    def engine_key(self) -> str:
        return self.plain.key

    def flavour(self, fuel: bool) -> Flavour:
        """The plain engine, or the fuel-metering one (made on first use)."""
        if not fuel:
            return self.plain
        if self._fueled is None:
            self._fueled = Flavour(self._parallel, True, self._host_log, self.stores, self._epoch)
            if self._ticker_pid == os.getpid():
                self._tickers.append(start_ticker(self._fueled.engine))
        return self._fueled

    # ---- epoch ticker -------------------------------------------------------------------

    def ensure_ticker(self) -> None:
        """Start this process's epoch tickers once (again in a forked child: neither threads
        nor timers survive fork)."""
        if self._ticker_pid == os.getpid():
            return
        self._ticker_pid = os.getpid()
        self._tickers = [start_ticker(flavour.engine) for flavour in (self.plain, self._fueled) if flavour]

    def stop_ticker(self) -> None:
        tickers, self._tickers = self._tickers, []
        for ticker in tickers:
            ticker.stop()
        self._ticker_pid = 0

    @staticmethod
    def deadline_ticks(timeout_ms: int) -> int:
        """Ticks beyond the current epoch for a call allowed ``timeout_ms``."""
        return -(-timeout_ms // TICK_MS) + 1

    def track(self, instance) -> None:
        """Remember a live instance so that ``close_instances`` can close it at exit."""
        self._instances.add(instance)

    def close_instances(self) -> None:
        for instance in list(self._instances):
            instance.close()
        self.stop_ticker()

    # ---- host functions -----------------------------------------------------------------

    def register_store(self, context, state: StoreState) -> None:
        self.stores.add(context, state)

    def unregister_store(self, context) -> None:
        self.stores.remove(context)

    def _host_log(self, caller: wasmtime.Caller, level: int, ptr: int, length: int) -> None:
        # NOTE: host functions never raise across the wasm boundary: a bad pointer or an
        # unknown store drops the line instead of trapping the guest.
        try:
            state = self.stores.get(caller._context())
            if state is None:
                return
            log = state.log
            length &= 0xFFFF_FFFF
            if log.over_budget(length):  # PERF: a flooding guest costs no memory access
                return
            memory = caller.get("memory")
            if not isinstance(memory, wasmtime.Memory):
                return
            ptr &= 0xFFFF_FFFF
            if ptr + length > memory.data_len(caller):
                log.line(3, b"mw.log called with a buffer outside guest memory")
                return
            data = ctypes.string_at(ctypes.addressof(memory.data_ptr(caller).contents) + ptr, length)
            log.line(level, data)
        except Exception:  # noqa: BLE001 - see NOTE above
            logger.exception("mw.log failed")


_default: Runtime | None = None


def default_runtime() -> Runtime:
    """This process's shared runtime (one engine and one ticker per process); new after fork."""
    global _default
    if _default is None or _default._owner_pid != os.getpid():
        _default = Runtime(parallel_compilation=False)
        _default._owner_pid = os.getpid()
    return _default
