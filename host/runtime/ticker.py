"""The epoch ticker: every ``TICK_MS`` it advances an engine's epoch, so a guest call past its
deadline traps (wasmtime's epoch interruption).

Two implementations with the same behaviour, chosen once per process:

- ``TimerTicker`` (Linux with glibc): a POSIX timer whose ``SIGEV_THREAD`` notification calls
  ``wasmtime_engine_increment_epoch(engine)`` itself, in C. No Python runs on a tick, so a
  tick never takes the GIL from a request. Measured (issue 13, round 4,
  bench/results/issue13_round4/): a Python ticker thread costs a request with three stages
  ~3.4 us in-process (its wake-ups take the GIL whenever a guest call releases it, and the
  call then waits to get it back) and ~3-6 us of its own CPU per request in a loaded
  worker; this one costs neither.
- ``ThreadTicker``: a Python daemon thread (elsewhere, or with ``MWHOST_THREAD_TICKER=1``).

Neither survives ``fork``: ``Runtime.ensure_ticker`` starts a new one in a forked child.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import logging
import os
import sys
import threading
import time

import wasmtime
from wasmtime import _ffi as ffi

logger = logging.getLogger("mwhost.runtime")

#: epoch tick length; a stage's timeout is rounded up to whole ticks (plus one)
TICK_MS = 10

#: set to 1 to tick from a Python thread even where the timer ticker works
THREAD_TICKER_ENV = "MWHOST_THREAD_TICKER"

_CLOCK_MONOTONIC = 1
_SIGEV_THREAD = 2
#: how long a stopped timer's engine is kept alive (see ``TimerTicker.stop``)
_GRACE_S = 1.0


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


class _SigEvent(ctypes.Structure):
    """glibc's ``struct sigevent`` (64 bytes) as SIGEV_THREAD uses it."""

    _fields_ = [("value", ctypes.c_void_p), ("signo", ctypes.c_int), ("notify", ctypes.c_int),
                ("function", ctypes.c_void_p), ("attributes", ctypes.c_void_p),
                ("_pad", ctypes.c_byte * (64 - 32))]


class _TimeSpec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]


class _ITimerSpec(ctypes.Structure):
    _fields_ = [("interval", _TimeSpec), ("value", _TimeSpec)]


def _load_libc():
    """glibc's timer functions, or None where the timer ticker cannot be used."""
    if not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None:
        return None  # NOTE: the sigevent layout above is glibc's (x86-64 and aarch64)
    if ctypes.sizeof(_SigEvent) != 64 or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.timer_create.argtypes = [ctypes.c_int, ctypes.POINTER(_SigEvent), ctypes.POINTER(ctypes.c_void_p)]
        libc.timer_settime.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(_ITimerSpec), ctypes.c_void_p]
        libc.timer_delete.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _load_libc()
#: the C function a tick calls: ``void wasmtime_engine_increment_epoch(wasm_engine_t *)``
_INCREMENT = ctypes.cast(ffi.dll.wasmtime_engine_increment_epoch, ctypes.c_void_p).value
# (stopped at, engine) of stopped timers: see TimerTicker.stop
_RETIRED: collections.deque = collections.deque()
_RETIRED_LOCK = threading.Lock()


class TimerTicker:
    """Advances ``engine``'s epoch from a POSIX timer, without Python or the GIL.

    NOTE: the notification function is ``wasmtime_engine_increment_epoch`` and its
    ``union sigval`` argument the engine pointer: on x86-64 and aarch64 a pointer-sized
    union is passed exactly like the pointer. glibc runs each notification on a thread of
    its own (started by its timer helper thread), never on one of ours.
    """

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine  # NOTE: the timer uses the engine's pointer: keep it alive
        self._pid = os.getpid()
        self._timer = ctypes.c_void_p()
        event = _SigEvent(value=ctypes.cast(engine.ptr(), ctypes.c_void_p).value, notify=_SIGEV_THREAD,
                          function=_INCREMENT)
        if _LIBC.timer_create(_CLOCK_MONOTONIC, ctypes.byref(event), ctypes.byref(self._timer)) != 0:
            raise OSError(ctypes.get_errno(), "timer_create failed")
        period = _TimeSpec(0, TICK_MS * 1_000_000)
        if _LIBC.timer_settime(self._timer, 0, ctypes.byref(_ITimerSpec(period, period)), None) != 0:
            errno = ctypes.get_errno()
            _LIBC.timer_delete(self._timer)
            raise OSError(errno, "timer_settime failed")

    def stop(self) -> None:
        """Delete the timer (in the process that made it only: a forked child's timer ids are
        its own, and the same number may name one of the child's timers)."""
        if self._engine is None or os.getpid() != self._pid:
            self._engine = None
            return
        _LIBC.timer_delete(self._timer)
        # NOTE: glibc's timer_delete does not wait for a notification thread that is already
        # running: keep the engine alive a while longer so such a tick never finds it freed.
        with _RETIRED_LOCK:
            now = time.monotonic()
            while _RETIRED and _RETIRED[0][0] < now - _GRACE_S:
                _RETIRED.popleft()
            _RETIRED.append((now, self._engine))
        self._engine = None

    def __del__(self) -> None:
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - at interpreter exit module globals may be gone
            pass


def start_ticker(engine: wasmtime.Engine):
    """A running ticker for ``engine`` (``stop()`` ends it): the timer one where it works."""
    if _LIBC is not None and os.environ.get(THREAD_TICKER_ENV, "") in ("", "0"):
        try:
            return TimerTicker(engine)
        except OSError as err:
            logger.warning("epoch ticker: no POSIX timer (%s); ticking from a Python thread", err)
    return ThreadTicker(engine)
