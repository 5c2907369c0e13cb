"""The fast call path: ``wasmtime_func_call_unchecked`` with preallocated arguments.

wasmtime-py's public ``Func.__call__`` re-queries the function type and converts every value
on each call (~27 us); the unchecked C entry point with a reused ``wasmtime_val_raw_t`` array
costs ~1.3 us. It does no type or arity checks, so this module is the ONE place that uses it:
``module.check_abi`` has verified every signature before a ``RawFunc`` is built, and every
memory access here is bounds-checked against the live memory size.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, c_size_t, c_void_p

import wasmtime
from wasmtime import _ffi as ffi

from ..errors import AbiError, GuestTimeout, GuestTrap

_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF

# NOTE: our own prototypes over the same library, so wasmtime-py's bindings stay untouched.
# PERF: every pointer travels as a plain int (c_void_p): no pointer objects or type checks per
# call, which halves the cost of each crossing (1.1 us instead of 1.6 us for a bare call).
_call_unchecked = ctypes.CFUNCTYPE(c_void_p, c_void_p, c_void_p, c_void_p, c_size_t, c_void_p)(
    ("wasmtime_func_call_unchecked", ffi.dll))
_memory_data = ctypes.CFUNCTYPE(c_void_p, c_void_p, c_void_p)(("wasmtime_memory_data", ffi.dll))
_memory_data_size = ctypes.CFUNCTYPE(c_size_t, c_void_p, c_void_p)(
    ("wasmtime_memory_data_size", ffi.dll))
set_epoch_deadline = ctypes.CFUNCTYPE(None, c_void_p, ctypes.c_uint64)(
    ("wasmtime_context_set_epoch_deadline", ffi.dll))


def store_context(store: wasmtime.Store) -> int:
    """The address of the store's context; valid only while ``store`` is open."""
    return ctypes.cast(store._context(), c_void_p).value


def _raise_failure(error: int | None, trap: "ctypes._Pointer[ffi.wasm_trap_t]") -> None:
    if trap:
        # NOTE: Trap takes ownership of the pointer; clear our slot so it is not reused.
        trap_obj = wasmtime.Trap._from_ptr(ctypes.cast(ctypes.addressof(trap.contents), POINTER(ffi.wasm_trap_t)))
        ctypes.memset(ctypes.addressof(trap), 0, ctypes.sizeof(trap))
        code = trap_obj.trap_code
        if code == wasmtime.TrapCode.INTERRUPT:
            raise GuestTimeout("the guest ran past its time limit and was interrupted")
        name = code.name.lower() if code is not None else None
        raise GuestTrap(f"guest trapped: {_trap_summary(trap_obj.message)}", trap_code=name)
    error_obj = wasmtime.WasmtimeError._from_ptr(ctypes.cast(error, POINTER(ffi.wasmtime_error_t)))
    raise GuestTrap(f"guest call failed: {error_obj}")


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

    def __init__(self, context: int, func: wasmtime.Func, slots: int) -> None:
        self._context = context
        self._owner = func  # keeps the wasmtime_func_t struct that _func points at alive
        self._func = ctypes.addressof(func._func)
        self._slots = max(slots, 1)
        self._vals = (ffi.wasmtime_val_raw_t * self._slots)()
        self._vals_addr = ctypes.addressof(self._vals)
        self._trap = POINTER(ffi.wasm_trap_t)()
        self._trap_addr = ctypes.addressof(self._trap)

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

    def __init__(self, context: int, memory: wasmtime.Memory) -> None:
        self._context = context
        self._owner = memory
        self._memory = ctypes.addressof(memory._memory)
        self._size = -1
        self._base = 0
        self.refresh()

    def refresh(self) -> None:
        # PERF: one FFI call when the size is unchanged (the common case), two when it grew.
        size = _memory_data_size(self._context, self._memory)
        if size != self._size:
            self._size = size
            self._base = _memory_data(self._context, self._memory)

    def size(self) -> int:
        return self._size

    def _check(self, ptr: int, length: int, what: str) -> None:
        if ptr + length > self._size:
            raise AbiError(f"{what} [{ptr}, {ptr + length}) lies outside guest memory of {self._size} bytes")

    def write(self, ptr: int, data: bytes) -> None:
        self._check(ptr, len(data), "input buffer")
        ctypes.memmove(self._base + ptr, data, len(data))

    def read(self, ptr: int, length: int) -> bytes:
        self._check(ptr, length, "output buffer")
        return ctypes.string_at(self._base + ptr, length)
