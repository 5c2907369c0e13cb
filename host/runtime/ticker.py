"""The epoch ticker: every ``TICK_MS`` it advances an engine's epoch, so a guest call past its
deadline traps (wasmtime's epoch interruption).

Two implementations with the same behaviour, chosen when a runtime starts ticking:

- ``NativeTicker``: a C thread (host/runtime/_ticker.c, built by ``pip install`` like the
  accelerator) that calls ``wasmtime_engine_increment_epoch(engine)`` every tick. No Python
  runs on a tick, so a tick never takes the GIL from a request. Measured (issue 13, round 4,
  bench/results/issue13_round4/): a Python ticker thread costs a request with three stages
  2.3-3.4 us in-process (its wake-ups take the GIL whenever a guest call releases it, and
  the call then waits to get it back) and ~3 us of its own CPU per request in a loaded worker.
  (A POSIX timer with ``SIGEV_THREAD`` was tried too: glibc starts a new thread for every
  expiry, which cost as much CPU as the Python thread.)
- ``ThreadTicker``: a Python daemon thread, when the extension was not built or with
  ``MWHOST_THREAD_TICKER=1``.

Neither survives ``fork``: ``Runtime.ensure_ticker`` starts a new one in a forked child.

Which tickers run also decides how a guest call treats the GIL (host/runtime/_accel.c): while
only C tickers tick an engine, the accelerator's call into its stores keeps the GIL through a
short call and gives it up at the first tick; a Python ticker needs the GIL to tick, so while
one ticks the engine (or none does) every call releases the GIL for its whole roundtrip.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import weakref

import wasmtime
from wasmtime import _ffi as ffi

try:
    from . import _ticker
except ImportError:  # NOTE: built by pip install with the machine's C compiler; optional
    _ticker = None
try:
    from . import _accel  # NOTE: its GIL switch only; accel.py decides whether calls use it
except ImportError:
    _accel = None

logger = logging.getLogger("mwhost.runtime")

#: epoch tick length; a stage's timeout is rounded up to whole ticks (plus one)
TICK_MS = 10

#: set to 1 to tick from a Python thread even where the C ticker was built
THREAD_TICKER_ENV = "MWHOST_THREAD_TICKER"


class _Ticking:
    """Which tickers tick one engine in this process, and so whether a call into its stores may
    keep the GIL: only while C tickers alone tick it (its ``switch``, read by the C call)."""

    __slots__ = ("native", "threads", "switch")

    def __init__(self) -> None:
        self.native = 0
        self.threads = 0
        self.switch = _accel.TickSwitch() if _accel is not None else None

    @property
    def keeps_gil(self) -> bool:
        return self.native > 0 and self.threads == 0

    def count(self, native: bool, delta: int) -> None:
        with _lock:
            if native:
                self.native += delta
            else:
                self.threads += delta
            self._publish()

    def forget(self) -> None:
        self.native = self.threads = 0
        self._publish()

    def _publish(self) -> None:
        if self.switch is not None:
            self.switch.keep_gil = self.keeps_gil


_lock = threading.Lock()
_engines: "weakref.WeakKeyDictionary[wasmtime.Engine, _Ticking]" = weakref.WeakKeyDictionary()


def _ticking(engine: wasmtime.Engine) -> _Ticking:
    with _lock:
        made = _engines.get(engine)
        if made is None:
            made = _engines[engine] = _Ticking()
        return made


def tick_switch(engine: wasmtime.Engine):
    """The engine's ``_accel.TickSwitch`` (None without the accelerator): a store's
    ``fastcall.epoch_deadline`` reads it to know whether its calls may keep the GIL."""
    return _ticking(engine).switch


def keeps_gil(engine: wasmtime.Engine) -> bool:
    """Whether a call into ``engine``'s stores may keep the GIL: C tickers alone tick it."""
    return _ticking(engine).keeps_gil


def _forget_parent_tickers() -> None:
    """In a forked child no ticker thread came along: nothing ticks until a new one starts."""
    global _lock
    _lock = threading.Lock()
    for ticking in list(_engines.values()):
        ticking.forget()


os.register_at_fork(after_in_child=_forget_parent_tickers)


class ThreadTicker:
    """Advances ``engine``'s epoch from a Python daemon thread (the portable fallback)."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._stop = threading.Event()
        self._pid = os.getpid()
        # NOTE: counted before the thread starts: no call into the engine keeps the GIL now
        self._ticking = _ticking(engine)
        self._ticking.count(native=False, delta=1)
        threading.Thread(target=self._run, args=(engine, self._stop), name="mwhost-epoch", daemon=True).start()

    @staticmethod
    def _run(engine: wasmtime.Engine, stop: threading.Event) -> None:
        interval = TICK_MS / 1000
        while not stop.wait(interval):
            engine.increment_epoch()

    def stop(self) -> None:
        if not self._stop.is_set() and self._pid == os.getpid():  # a parent's ticker is not counted here
            self._ticking.count(native=False, delta=-1)
        self._stop.set()


#: the C function a tick calls: ``void wasmtime_engine_increment_epoch(wasm_engine_t *)``
_INCREMENT = ctypes.cast(ffi.dll.wasmtime_engine_increment_epoch, ctypes.c_void_p).value


class NativeTicker:
    """Advances ``engine``'s epoch from a C thread (host/runtime/_ticker.c): no Python and no
    GIL on a tick. ``stop()`` waits for the thread, so no tick ever finds the engine freed."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        address = ctypes.cast(engine.ptr(), ctypes.c_void_p).value
        self._ticker = _ticker.Ticker(_INCREMENT, address, TICK_MS * 1_000_000, engine)
        self._ticking = _ticking(engine)
        self._ticking.count(native=True, delta=1)

    @property
    def running(self) -> bool:
        return self._ticker.running

    def stop(self) -> None:
        if self._ticker.running:  # NOTE: False in a forked child, whose count never had it
            self._ticking.count(native=True, delta=-1)
        self._ticker.stop()

    def __del__(self) -> None:
        # NOTE: a dropped ticker stops ticking (the C object's dealloc): uncount it too, so no
        # call keeps the GIL where nothing would tick it free
        if getattr(self, "_ticking", None) is not None:
            self.stop()


def start_ticker(engine: wasmtime.Engine):
    """A running ticker for ``engine`` (``stop()`` ends it): the C thread where it was built."""
    if _ticker is not None and os.environ.get(THREAD_TICKER_ENV, "") in ("", "0"):
        try:
            return NativeTicker(engine)
        except OSError as err:
            logger.warning("epoch ticker: no C thread (%s); ticking from a Python thread", err)
    return ThreadTicker(engine)
