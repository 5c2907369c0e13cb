"""The fast call path: ``wasmtime_func_call_unchecked`` with preallocated arguments.

wasmtime-py's public ``Func.__call__`` re-queries the function type and converts every value
on each call (~27 us); the unchecked C entry point with a reused ``wasmtime_val_raw_t`` array
costs ~1.3 us. It does no type or arity checks, so this module is the ONE place that uses it:
``module.check_abi`` has verified every signature before a ``RawFunc`` is built, and every
memory access here is bounds-checked against the live memory size.
"""

from __future__ import annotations

import ctypes
import functools
import os
from ctypes import POINTER, c_void_p

import cffi
import wasmtime
from wasmtime import _ffi as ffi

from ..errors import AbiError, GuestOutOfFuel, GuestTimeout, GuestTrap
from . import accel
from .ticker import TICK_MS

_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF

#: the message of the trap our WASI ``poll_oneoff`` raises when a guest would sleep past its
#: call's deadline (host/runtime/wasi.py); the call path reports it as a GuestTimeout
DEADLINE_TRAP = "mwhost: the guest asked to wait past its call's deadline"

#: the message of the error our epoch-deadline callback fails a call with at its real
#: deadline (``_accel.EpochDeadline``); reported as the GuestTimeout an epoch interrupt is
EPOCH_DEADLINE_ERROR = "mwhost: the guest reached its call's epoch deadline"
#: ``MWHOST_RELEASE_GIL=1`` (for benchmarks' A/B: bench/README.md) registers no epoch-deadline
#: callback, so every guest call releases the GIL for its whole roundtrip and its deadline
#: counts ticks, as before the callback existed
RELEASE_GIL_ENV = "MWHOST_RELEASE_GIL"
_INTERRUPTED = "the guest ran past its time limit and was interrupted"

# NOTE: the hot entry points go through cffi (ABI mode, over the very library wasmtime-py
# loaded), which costs ~0.55 us per call against ~0.9 us for ctypes; everything else stays
# on wasmtime-py's ctypes bindings. cffi releases the GIL during each call, as ctypes does,
# so the epoch ticker can interrupt a guest that never returns (the C MessageCall keeps it
# through short calls where it can: host/runtime/_accel.c).
_cffi = cffi.FFI()
_cffi.cdef("""
    void *wasmtime_func_call_unchecked(void *context, void *func, void *args_and_results,
                                       size_t args_and_results_len, void *trap);
    size_t wasmtime_memory_data_size(void *context, void *memory);
    uint8_t *wasmtime_memory_data(void *context, void *memory);
    void wasmtime_context_set_epoch_deadline(void *context, uint64_t ticks_beyond_current);
    void *wasmtime_context_set_fuel(void *context, uint64_t fuel);
    void wasmtime_store_epoch_deadline_callback(void *store, void *func, void *env, void *finalizer);
    void *wasmtime_error_new(const char *message);
""")
_lib = _cffi.dlopen(ffi.dll._name)
_call_unchecked = _lib.wasmtime_func_call_unchecked
_memory_data_size = _lib.wasmtime_memory_data_size
_set_epoch_deadline = _lib.wasmtime_context_set_epoch_deadline
_NULL = _cffi.NULL
_memmove = _cffi.memmove
_unpack = _cffi.unpack


def _address(value: int):
    """A cffi ``void *`` for an address (a ctypes object's, or a store context's)."""
    return _cffi.cast("void *", value)


def address_of(pointer) -> int:
    """The address held by a cffi pointer."""
    return int(_cffi.cast("uintptr_t", pointer))


def set_epoch_deadline(context, ticks: int) -> None:
    """Allow the store's next guest call ``ticks`` epoch ticks from now."""
    _set_epoch_deadline(context, ticks)


def set_fuel(context, fuel: int) -> None:
    """Refill the store's fuel (stores of a fuel-metering engine only)."""
    error = _lib.wasmtime_context_set_fuel(context, fuel)
    if error:
        _raise_failure(error, None)


def store_context(store: wasmtime.Store):
    """The store's context as a cffi pointer; valid only while ``store`` is open."""
    return _address(ctypes.cast(store._context(), c_void_p).value)


def _raise_failure(error, trap: "ctypes._Pointer[ffi.wasm_trap_t]") -> None:
    if trap:
        # NOTE: Trap takes ownership of the pointer; clear our slot so it is not reused.
        trap_obj = wasmtime.Trap._from_ptr(ctypes.cast(ctypes.addressof(trap.contents), POINTER(ffi.wasm_trap_t)))
        ctypes.memset(ctypes.addressof(trap), 0, ctypes.sizeof(trap))
        code = trap_obj.trap_code
        if code == wasmtime.TrapCode.INTERRUPT:
            raise GuestTimeout(_INTERRUPTED)
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            raise GuestOutOfFuel("the guest used up its fuel for this call")
        message = trap_obj.message
        _raise_if_deadline(message)
        name = code.name.lower() if code is not None else None
        raise GuestTrap(f"guest trapped: {_trap_summary(message)}", trap_code=name)
    address = int(_cffi.cast("uintptr_t", error))
    error_obj = wasmtime.WasmtimeError._from_ptr(ctypes.cast(address, POINTER(ffi.wasmtime_error_t)))
    _raise_if_deadline(str(error_obj))
    raise GuestTrap(f"guest call failed: {error_obj}")


def _raise_if_deadline(message: str) -> None:
    """A trap from our own poll_oneoff (a wait past the deadline) or the error of our epoch
    callback (a call past its deadline) is a timeout, not a trap."""
    if DEADLINE_TRAP in message:
        raise GuestTimeout("the guest waited in a host call past its time limit and was stopped")
    if EPOCH_DEADLINE_ERROR in message:
        raise GuestTimeout(_INTERRUPTED)


def _trap_summary(message: str) -> str:
    """The cause line of a wasmtime trap message, without the backtrace."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("wasm trap:"):
            return line[len("wasm trap:"):].strip()
    return lines[-1] if lines else "unknown trap"


class RawFunc:
    """One guest export, callable through the unchecked path with up to two i32 arguments.

    ``slots`` is max(params, results); the same raw array carries arguments in and results out.
    """

    __slots__ = ("_context", "_owner", "_func", "_vals", "_vals_addr", "_slots", "_trap", "_trap_addr")

    def __init__(self, context, func: wasmtime.Func, slots: int) -> None:
        self._context = context
        self._owner = func  # keeps the wasmtime_func_t struct that _func points at alive
        self._func = _address(ctypes.addressof(func._func))
        self._slots = max(slots, 1)
        self._vals = (ffi.wasmtime_val_raw_t * self._slots)()
        self._vals_addr = _address(ctypes.addressof(self._vals))
        self._trap = POINTER(ffi.wasm_trap_t)()
        self._trap_addr = _address(ctypes.addressof(self._trap))

    def _invoke(self) -> None:
        error = _call_unchecked(self._context, self._func, self._vals_addr, self._slots, self._trap_addr)
        if error or self._trap:
            _raise_failure(error, self._trap)

    def call(self) -> None:
        """``() -> ()``"""
        self._invoke()

    def call_i32(self) -> int:
        """``() -> i32``"""
        self._invoke()
        return self._vals[0].i32

    def call_u32_u32(self, a: int) -> int:
        """``(i32) -> i32``, both read as unsigned (pointers and sizes)."""
        self._vals[0].i32 = a
        self._invoke()
        return self._vals[0].i32 & _U32

    def call_ptr_len_i32(self, ptr: int, length: int) -> int:
        """``(i32, i32) -> i32``"""
        vals = self._vals
        vals[0].i32 = ptr
        vals[1].i32 = length
        self._invoke()
        return vals[0].i32

    def call_ptr_len_u64(self, ptr: int, length: int) -> int:
        """``(i32, i32) -> i64``, the result read as unsigned (a packed pointer and length)."""
        vals = self._vals
        vals[0].i32 = ptr
        vals[1].i32 = length
        self._invoke()
        return vals[0].i64 & _U64


class GuestMemory:
    """Bounds-checked reads and writes of one instance's linear memory.

    ``refresh()`` must follow every guest call: ``memory.grow`` inside the guest may move the
    base. Memory never shrinks, so an unchanged size means an unchanged base.
    """

    __slots__ = ("_context", "_owner", "_memory", "_base", "_size")

    def __init__(self, context, memory: wasmtime.Memory) -> None:
        self._context = context
        self._owner = memory
        self._memory = _address(ctypes.addressof(memory._memory))
        self._size = -1
        self._base = _NULL  # a cffi ``char *``: pointer arithmetic and copies without ctypes
        self.refresh()

    def refresh(self) -> None:
        # PERF: one FFI call when the size is unchanged (the common case), two when it grew.
        size = _memory_data_size(self._context, self._memory)
        if size != self._size:
            self._size = size
            self._base = _cffi.cast("char *", _lib.wasmtime_memory_data(self._context, self._memory))

    def size(self) -> int:
        return self._size

    def _check(self, ptr: int, length: int, what: str) -> None:
        if ptr + length > self._size:
            raise AbiError(f"{what} [{ptr}, {ptr + length}) lies outside guest memory of {self._size} bytes")

    def write(self, ptr: int, data: bytes) -> None:
        self._check(ptr, len(data), "input buffer")
        _memmove(self._base + ptr, data, len(data))

    def read(self, ptr: int, length: int) -> bytes:
        self._check(ptr, length, "output buffer")
        return _unpack(self._base + ptr, length)


class MessageCall:
    """One ABI message roundtrip on one instance: ``mw_alloc``, write, call, read.

    The per-request hot path, written flat on purpose (every helper call costs ~0.1 us here):
    two unchecked calls, two one-call memory refreshes, one memmove, one copy out. The
    checks are the same as ``GuestMemory``'s and the deadline is set by the caller.
    """

    __slots__ = ("_context", "_owners", "_alloc", "_handler", "_alloc_vals", "_vals",
                 "_trap", "_trap_addr", "_memory", "max_output", "deadline")

    def __init__(self, context, alloc: wasmtime.Func, handler: wasmtime.Func,
                 memory: GuestMemory) -> None:
        self._context = context
        self._owners = (alloc, handler)  # keep the func structs we point at alive
        self._alloc = _address(ctypes.addressof(alloc._func))
        self._handler = _address(ctypes.addressof(handler._func))
        # PERF: the raw argument/result slots as cffi int64 arrays (two int64 per 16-byte
        # wasmtime_val_raw_t): an item access costs ~40 ns against ~250 ns for a ctypes
        # struct field. An i32 argument is written zero-extended (raw values are
        # little-endian), an i32 result read from the low 32 bits.
        self._alloc_vals = _cffi.new("uint64_t[2]")
        self._vals = _cffi.new("uint64_t[4]")
        self._trap = POINTER(ffi.wasm_trap_t)()
        self._trap_addr = _address(ctypes.addressof(self._trap))
        self._memory = memory
        # what a call with the data alone uses (as the C MessageCall's members)
        self.max_output = 0
        self.deadline = 0

    def __call__(self, data: bytes, max_output: int | None = None, deadline: int | None = None) -> bytes:
        # PERF: measured hot path; see the class docstring before splitting it up.
        if max_output is None:
            max_output, deadline = self.max_output, self.deadline
        context, trap, memory = self._context, self._trap, self._memory
        _set_epoch_deadline(context, deadline)
        size = len(data)
        alloc_vals = self._alloc_vals
        alloc_vals[0] = size
        error = _call_unchecked(context, self._alloc, alloc_vals, 1, self._trap_addr)
        if error or trap:
            _raise_failure(error, trap)
        ptr = alloc_vals[0] & _U32
        # PERF: GuestMemory.refresh written out: one FFI call, a Python call only on growth
        if _memory_data_size(context, memory._memory) != memory._size:
            memory.refresh()
        if ptr == 0 and size:
            raise AbiError(f"mw_alloc({size}) returned 0")
        if ptr + size > memory._size:
            raise AbiError(f"input buffer [{ptr}, {ptr + size}) lies outside guest memory of {memory._size} bytes")
        _memmove(memory._base + ptr, data, size)

        vals = self._vals
        vals[0] = ptr
        vals[2] = size
        error = _call_unchecked(context, self._handler, vals, 2, self._trap_addr)
        if error or trap:
            _raise_failure(error, trap)
        packed = vals[0]
        if _memory_data_size(context, memory._memory) != memory._size:
            memory.refresh()
        if packed == 0:
            raise AbiError("the guest returned 0 where a message is required")
        out_ptr, out_len = packed >> 32, packed & _U32
        if out_len > max_output:
            raise AbiError(f"the guest's output of {out_len} bytes exceeds the stage's limit of {max_output}")
        if out_ptr + out_len > memory._size:
            raise AbiError(f"output buffer [{out_ptr}, {out_ptr + out_len}) lies outside guest memory "
                           f"of {memory._size} bytes")
        return _unpack(memory._base + out_ptr, out_len)


# what the C roundtrip reports instead of raising (_accel.c's enum, in the same order)
_FAILED_CALL, _ALLOC_ZERO, _INPUT_OUTSIDE, _RESULT_ZERO, _OUTPUT_TOO_LARGE, _OUTPUT_OUTSIDE = range(1, 7)


def _raise_call_failure(trap, code: int, a: int, b: int, c: int) -> None:
    """Raise what ``MessageCall.__call__`` raises for the failure the C roundtrip met."""
    if code == _FAILED_CALL:
        _raise_failure(_cffi.cast("void *", a), trap)
    if code == _ALLOC_ZERO:
        raise AbiError(f"mw_alloc({a}) returned 0")
    if code == _INPUT_OUTSIDE:
        raise AbiError(f"input buffer [{a}, {a + b}) lies outside guest memory of {c} bytes")
    if code == _RESULT_ZERO:
        raise AbiError("the guest returned 0 where a message is required")
    if code == _OUTPUT_TOO_LARGE:
        raise AbiError(f"the guest's output of {a} bytes exceeds the stage's limit of {b}")
    if code == _OUTPUT_OUTSIDE:
        raise AbiError(f"output buffer [{a}, {a + b}) lies outside guest memory of {c} bytes")
    raise AbiError(f"the guest call failed (code {code})")


def _function_address(name: str) -> int:
    return int(_cffi.cast("uintptr_t", _cffi.addressof(_lib, name)))


def epoch_deadline(store: wasmtime.Store, switch):
    """Register the accelerator's epoch-deadline callback on ``store`` (before any guest call
    in it): the ``_accel.EpochDeadline`` a C ``MessageCall`` needs to keep the GIL through
    short calls while ``switch`` (the engine's ``ticker.tick_switch``) allows it, or None
    without the accelerator (the store then traps at its deadline).

    NOTE: with the callback every call into the store still ends at its deadline, whichever
    path made it (RawFunc, wasmtime-py's checked calls, the Python MessageCall): the callback
    fails it with ``EPOCH_DEADLINE_ERROR``, reported as the interrupt's GuestTimeout. The C
    ``MessageCall``'s deadline is wall time from the call's start (``TICK_MS`` per tick)."""
    native = accel.ACCEL
    if native is None or switch is None or os.environ.get(RELEASE_GIL_ENV) == "1":
        return None
    return native.EpochDeadline(
        _function_address("wasmtime_store_epoch_deadline_callback"), _function_address("wasmtime_error_new"),
        ctypes.cast(store.ptr(), c_void_p).value, EPOCH_DEADLINE_ERROR.encode(), switch, TICK_MS * 1_000_000)


def is_epoch_deadline(message: str) -> bool:
    """Whether a wasmtime error's text is our epoch callback's failure (a call past its deadline)."""
    return EPOCH_DEADLINE_ERROR in message


def message_call(context, alloc: wasmtime.Func, handler: wasmtime.Func, memory: GuestMemory, deadline=None):
    """The roundtrip ``(data, max_output, deadline) -> bytes`` for one export: in C when the
    accelerator is built (and not switched off), else ``MessageCall``. ``deadline`` is the
    store's ``epoch_deadline``: with it the C roundtrip keeps the GIL through short calls."""
    native = accel.ACCEL
    if native is None:
        return MessageCall(context, alloc, handler, memory)
    trap = POINTER(ffi.wasm_trap_t)()
    return native.MessageCall(
        _function_address("wasmtime_func_call_unchecked"), _function_address("wasmtime_memory_data_size"),
        _function_address("wasmtime_memory_data"), _function_address("wasmtime_context_set_epoch_deadline"),
        address_of(context), ctypes.addressof(alloc._func), ctypes.addressof(handler._func),
        ctypes.addressof(memory._owner._memory), ctypes.addressof(trap),
        functools.partial(_raise_call_failure, trap), (alloc, handler, memory, trap), deadline)
