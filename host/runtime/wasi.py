"""Our own ``poll_oneoff`` and ``fd_write``, shadowing wasmtime's WASI preview 1 versions.

- ``poll_oneoff`` (``time.Sleep`` in Go, ``thread::sleep`` in Rust, Go's idle scheduler):
  wasmtime's sleeps inside a host call, where epoch interruption cannot reach, so a guest
  could hold its worker far past its deadline. Ours sleeps only within the current call's
  deadline; a wait beyond it ends the call at once with a trap that the call path reports
  as ``GuestTimeout``.
- ``fd_write`` to fds 1 and 2: wasmtime's custom stdio streams call back into Python from
  its tokio threads, also while the interpreter is finalizing, which aborted processes at
  exit (SIGABRT, "panic in a function that cannot unwind"). Ours feeds the GuestLog on the
  calling thread, so no WASI callback into Python exists on any other thread.

Every other WASI call stays wasmtime's (see docs/sandbox.md for why none of them blocks).
Both functions are defined through ``wasmtime_linker_define_func_unchecked`` with a ctypes
callback: they return a trap pointer of their own (wasmtime-py's trampoline would park a
raised exception in a module global shared by all threads). They never raise across the
wasm boundary: a bad pointer is ``EFAULT``, an unexpected failure ``EIO`` and a log line.
"""

from __future__ import annotations

import ctypes
import logging
import struct
import time
from time import monotonic_ns

import wasmtime
from wasmtime import _ffi as ffi

from .fastcall import DEADLINE_TRAP
from .stores import StoreRegistry, StoreState

logger = logging.getLogger("mwhost.runtime")

MODULE = "wasi_snapshot_preview1"
_U32 = 0xFFFF_FFFF

# errno values of WASI preview 1
SUCCESS, EBADF, EFAULT, EINVAL, EIO, ENOTSUP = 0, 8, 21, 28, 29, 58
# event and subscription types, clocks, flags
CLOCK, FD_READ, FD_WRITE = 0, 1, 2
REALTIME, MONOTONIC = 0, 1
ABSTIME = 1
HANGUP = 1

#: userdata u64, tag u8, then the clock (id u32, timeout u64, precision u64, flags u16) or the fd (u32)
SUBSCRIPTION = struct.Struct("<QB7xI4xQQH6x")
#: userdata u64, errno u16, type u8, then fd_readwrite (nbytes u64, flags u16)
EVENT = struct.Struct("<QHB5xQH6x")
IOVEC = struct.Struct("<II")
U32 = struct.Struct("<I")
# NOTE: each entry costs Python work inside one host call; bounding the counts bounds the
# call (POSIX's IOV_MAX is 1024 too). Larger counts are EINVAL.
MAX_ENTRIES = 1024

STREAMS = {1: "stdout", 2: "stderr"}
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()  # a NULL function pointer


class DeadlineReached(Exception):
    """A guest asked to wait past its call's deadline."""


# ---- poll_oneoff ------------------------------------------------------------------------

def poll_oneoff(state: StoreState, memory: memoryview, in_ptr: int, out_ptr: int, count: int,
                nevents_ptr: int) -> int:
    """Wait for the first of ``count`` subscriptions, never past the call's deadline."""
    if count == 0 or count > MAX_ENTRIES:
        return EINVAL
    now = monotonic_ns()
    events: list[tuple[int, int, int, int, int]] = []
    timers: list[tuple[int, int]] = []  # (wake time on the host clock, userdata)
    for offset in range(in_ptr, in_ptr + count * SUBSCRIPTION.size, SUBSCRIPTION.size):
        userdata, tag, ident, timeout, _precision, flags = SUBSCRIPTION.unpack_from(memory, offset)
        if tag == CLOCK:
            wake = _wake_time(state, ident, timeout, flags, now)
            if wake is None:
                events.append((userdata, EINVAL, CLOCK, 0, 0))
            else:
                timers.append((wake, userdata))
        elif tag in (FD_READ, FD_WRITE):
            events.append(_fd_event(userdata, tag, ident))
        else:
            return EINVAL
    if not events:
        now = _sleep_until(min(timers)[0], state.deadline_ns, now)
    events += [(userdata, SUCCESS, CLOCK, 0, 0) for wake, userdata in timers if wake <= now]
    for index, event in enumerate(events):
        EVENT.pack_into(memory, out_ptr + index * EVENT.size, *event)
    U32.pack_into(memory, nevents_ptr, len(events))
    return SUCCESS


def _wake_time(state: StoreState, clock: int, timeout: int, flags: int, now: int) -> int | None:
    """When a clock subscription fires, on the host's monotonic clock (None: unknown clock)."""
    if not flags & ABSTIME:
        return now + timeout
    if clock == MONOTONIC:
        return now + timeout - (now - state.clock_base_ns)
    if clock == REALTIME:
        return now + timeout - time.time_ns()
    return None


def _fd_event(userdata: int, tag: int, fd: int) -> tuple[int, int, int, int, int]:
    """stdin is empty (end of file at once) and stdout/stderr always take more: both are
    ready now. No other fd exists (no preopens, no sockets)."""
    if tag == FD_READ and fd == 0:
        return userdata, SUCCESS, tag, 0, HANGUP
    if tag == FD_WRITE and fd in STREAMS:
        return userdata, SUCCESS, tag, 0, 0
    return userdata, EBADF, tag, 0, 0


def _sleep_until(wake: int, deadline: int, now: int) -> int:
    """Sleep until ``wake``; the new now. A wake past the deadline ends the call instead."""
    if wake > deadline:
        raise DeadlineReached
    if wake > now:
        time.sleep((wake - now) / 1e9)
    return max(monotonic_ns(), wake)


# ---- fd_write -----------------------------------------------------------------------------

def fd_write(state: StoreState, memory: memoryview, fd: int, iovs: int, count: int, nwritten_ptr: int) -> int:
    """Write to stdout or stderr: complete lines go to the guest log, within its budget."""
    stream = STREAMS.get(fd)
    if stream is None:
        return EBADF
    if count > MAX_ENTRIES:
        return EINVAL
    log, size, total = state.log, len(memory), 0
    for offset in range(iovs, iovs + count * IOVEC.size, IOVEC.size):
        ptr, length = IOVEC.unpack_from(memory, offset)
        if ptr + length > size:
            return EFAULT
        total += length
        # PERF: a flooding guest costs no copy once the call's log budget is spent
        if length and not log.over_budget(length):
            log.stream(stream, bytes(memory[ptr:ptr + length]))
    if total > _U32:
        return EINVAL
    U32.pack_into(memory, nwritten_ptr, total)
    return SUCCESS


# ---- the boundary ---------------------------------------------------------------------------

def _guest_memory(caller, context) -> memoryview | None:
    """The calling instance's exported memory as a writable view (valid during this call)."""
    extern = ffi.wasmtime_extern_t()
    if not ffi.wasmtime_caller_export_get(caller, b"memory", 6, ctypes.byref(extern)):
        return None
    if extern.kind != ffi.WASMTIME_EXTERN_MEMORY.value:
        return None
    memory = ctypes.byref(extern.of.memory)
    size = ffi.wasmtime_memory_data_size(context, memory)
    base = ctypes.cast(ffi.wasmtime_memory_data(context, memory), ctypes.c_void_p).value or 0
    return memoryview((ctypes.c_ubyte * size).from_address(base)) if base else memoryview(b"")


def _trap(message: str) -> int:
    """A new trap for wasmtime to own, as the callback's return value."""
    data = message.encode()
    return ctypes.cast(ffi.wasmtime_trap_new(data, len(data)), ctypes.c_void_p).value or 0


def _callback(registry: StoreRegistry, body, name: str):
    """A raw host function running ``body(state, memory, *four u32 arguments) -> errno``."""
    @ffi.wasmtime_func_unchecked_callback_t
    def callback(_env, caller, vals, _count):
        try:
            context = ffi.wasmtime_caller_context(caller)
            state = registry.get(context)
            memory = _guest_memory(caller, context)
            if state is None or memory is None:
                vals[0].i32 = ENOTSUP
                return 0
            args = (vals[0].i32 & _U32, vals[1].i32 & _U32, vals[2].i32 & _U32, vals[3].i32 & _U32)
            try:
                vals[0].i32 = body(state, memory, *args)
            except (struct.error, ValueError, IndexError):  # a pointer outside guest memory
                vals[0].i32 = EFAULT
            return 0
        except DeadlineReached:
            return _trap(DEADLINE_TRAP)
        except BaseException:  # noqa: BLE001 - nothing may unwind into wasmtime
            logger.exception("WASI %s failed", name)
            vals[0].i32 = EIO
            return 0
    return callback


def define_unchecked(linker: wasmtime.Linker, module: str, name: str, functype: wasmtime.FuncType, callback):
    """Define ``module.name`` on ``linker`` as a raw (unchecked) callback; returns the callback,
    which must live as long as the linker's engine."""
    # PERF: the unchecked form hands raw values over; wasmtime-py's Func wraps every call
    module_name, field = module.encode(), name.encode()
    error = ffi.wasmtime_linker_define_func_unchecked(
        linker.ptr(), module_name, len(module_name), field, len(field), functype.ptr(), callback, None, _NO_FINALIZER)
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
    return callback


def define_shadowed_wasi(linker: wasmtime.Linker, registry: StoreRegistry) -> list:
    """Define WASI on ``linker`` with our ``poll_oneoff`` and ``fd_write`` in place of
    wasmtime's; returns the callbacks, which must live as long as the linker's engine."""
    linker.define_wasi()
    linker.allow_shadowing = True
    i32 = wasmtime.ValType.i32()
    functype = wasmtime.FuncType([i32] * 4, [i32])
    callbacks = []
    for name, body in (("poll_oneoff", poll_oneoff), ("fd_write", fd_write)):
        callbacks.append(define_unchecked(linker, MODULE, name, functype, _callback(registry, body, name)))
    linker.allow_shadowing = False
    return callbacks
