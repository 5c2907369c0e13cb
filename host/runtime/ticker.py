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
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading

import wasmtime
from wasmtime import _ffi as ffi

try:
    from . import _ticker
except ImportError:  # NOTE: built by pip install with the machine's C compiler; optional
    _ticker = None

logger = logging.getLogger("mwhost.runtime")

#: epoch tick length; a stage's timeout is rounded up to whole ticks (plus one)
TICK_MS = 10

#: set to 1 to tick from a Python thread even where the C ticker was built
THREAD_TICKER_ENV = "MWHOST_THREAD_TICKER"


class ThreadTicker:
    """Advances ``engine``'s epoch from a Python daemon thread (the portable fallback)."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._stop = threading.Event()
        threading.Thread(target=self._run, args=(engine, self._stop), name="mwhost-epoch", daemon=True).start()

    @staticmethod
    def _run(engine: wasmtime.Engine, stop: threading.Event) -> None:
        interval = TICK_MS / 1000
        while not stop.wait(interval):
            engine.increment_epoch()

    def stop(self) -> None:
        self._stop.set()


#: the C function a tick calls: ``void wasmtime_engine_increment_epoch(wasm_engine_t *)``
_INCREMENT = ctypes.cast(ffi.dll.wasmtime_engine_increment_epoch, ctypes.c_void_p).value


class NativeTicker:
    """Advances ``engine``'s epoch from a C thread (host/runtime/_ticker.c): no Python and no
    GIL on a tick. ``stop()`` waits for the thread, so no tick ever finds the engine freed."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        address = ctypes.cast(engine.ptr(), ctypes.c_void_p).value
        self._ticker = _ticker.Ticker(_INCREMENT, address, TICK_MS * 1_000_000, engine)

    @property
    def running(self) -> bool:
        return self._ticker.running

    def stop(self) -> None:
        self._ticker.stop()


def start_ticker(engine: wasmtime.Engine):
    """A running ticker for ``engine`` (``stop()`` ends it): the C thread where it was built."""
    if _ticker is not None and os.environ.get(THREAD_TICKER_ENV, "") in ("", "0"):
        try:
            return NativeTicker(engine)
        except OSError as err:
            logger.warning("epoch ticker: no C thread (%s); ticking from a Python thread", err)
    return ThreadTicker(engine)
