"""Starting an instance (``_initialize``, ``mw_init``) has its own, longer deadline."""

from __future__ import annotations

import time

import pytest

from mwhost.errors import GuestLoadError
from mwhost.runtime import GuestInstance, GuestModule, Limits, default_runtime
from mwhost.runtime.instance import START_TIMEOUT_MS
from tests.wat import guest

CLOCK = '(import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))'


def busy_init(ms: int) -> str:
    """mw_init that spins (no host call) until ``ms`` of the monotonic clock have passed."""
    return (f"(local $start i64) (drop (call $now (i32.const 1) (i64.const 0) (i32.const 8)))"
            f" (local.set $start (i64.load (i32.const 8)))"
            f" (block $done (loop $spin (drop (call $now (i32.const 1) (i64.const 0) (i32.const 8)))"
            f" (br_if $done (i64.ge_u (i64.sub (i64.load (i32.const 8)) (local.get $start)) (i64.const {ms * 1_000_000})))"
            f" (br $spin))) (i32.const 0)")


def instance(wasm: bytes, timeout_ms: int) -> GuestInstance:
    module = GuestModule.from_bytes(default_runtime(), wasm)
    made = GuestInstance(module, Limits(timeout_ms=timeout_ms), "start")
    made.init(b"\x80")
    return made


def test_a_start_longer_than_the_call_timeout_is_allowed():
    """An mw_init taking 300 ms under timeout_ms = 50 starts: a start is not a request."""
    with instance(guest(imports=CLOCK, init=busy_init(300)), timeout_ms=50):
        pass


def test_a_start_that_never_ends_is_interrupted_at_the_start_deadline():
    """An mw_init that loops forever is refused as a load error once START_TIMEOUT_MS passed."""
    started = time.monotonic()
    with pytest.raises(GuestLoadError, match="time limit"):
        instance(guest(init="(loop $forever (br $forever)) (i32.const 0)"), timeout_ms=50)
    assert time.monotonic() - started >= START_TIMEOUT_MS / 1000
