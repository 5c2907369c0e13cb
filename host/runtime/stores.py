"""Which store is calling: the per-store state host functions need, found by context address."""

from __future__ import annotations

import ctypes
from time import monotonic_ns

from .fastcall import address_of
from .guestlog import GuestLog


def context_key(context) -> int:
    """A store context's address, from a ctypes pointer (a Caller's) or a cffi one (ours)."""
    if isinstance(context, ctypes._Pointer):
        return ctypes.cast(context, ctypes.c_void_p).value or 0
    return address_of(context)


class StoreState:
    """What the host functions know about one instance's store: where its log lines go, and
    when its current call must end (so that no host call sleeps past it)."""

    __slots__ = ("log", "timeout_ns", "started_ns", "clock_base_ns", "http", "request_clock")

    def __init__(self, log: GuestLog, timeout_ms: int) -> None:
        self.log = log
        self.timeout_ns = timeout_ms * 1_000_000
        #: set by the instance as each call starts (one clock read per call)
        self.started_ns = monotonic_ns()
        #: host monotonic time at which the store's WASI monotonic clock read 0
        self.clock_base_ns = self.started_ns
        #: an http-wasm guest's HttpState (host/runtime/httpwasm.py); None for ABI v1
        self.http = None
        #: the C request roundtrip, which records each call's start itself (``started_ns``),
        #: or None: then every call sets ``started_ns`` here
        self.request_clock = None

    @property
    def deadline_ns(self) -> int:
        """The current call's end on the host's monotonic clock."""
        started = self.started_ns
        clock = self.request_clock
        if clock is not None and clock.started_ns > started:
            # NOTE: calls on one store never overlap: the later of the two starts is this call's
            started = clock.started_ns
        return started + self.timeout_ns


class StoreRegistry:
    """Store context address -> StoreState of the instance living in that store."""

    __slots__ = ("_states",)

    def __init__(self) -> None:
        self._states: dict[int, StoreState] = {}

    def add(self, context, state: StoreState) -> None:
        self._states[context_key(context)] = state

    def remove(self, context) -> None:
        self._states.pop(context_key(context), None)

    def get(self, context) -> StoreState | None:
        return self._states.get(context_key(context))
