"""The call path: bounds, traps, timeouts and limits surface as named errors, never crashes."""

from __future__ import annotations

import logging
import time

import msgpack
import pytest

from mwhost.errors import AbiError, GuestError, GuestLoadError, GuestTimeout, GuestTrap
from mwhost.runtime import TICK_MS, GuestInstance, GuestModule, Limits, default_runtime
from tests.conftest import vector_bytes
from tests.wat import guest, packed

REQUEST = vector_bytes("request_typical")


def instance(wasm: bytes, **limits) -> GuestInstance:
    return GuestInstance(GuestModule.from_bytes(default_runtime(), wasm), Limits(**limits), "test@0")


def test_noop_roundtrip_returns_the_guest_bytes():
    with instance(guest()) as inst:
        assert msgpack.unpackb(inst.on_request(REQUEST)) == {"action": "continue"}


def test_the_input_reaches_guest_memory_intact():
    # the guest echoes its input buffer back as its output
    echo = "(i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len)))"
    with instance(guest(echo)) as inst:
        assert inst.on_request(REQUEST) == REQUEST


@pytest.mark.parametrize("result, message", [
    ("(i64.const 0)", "returned 0"),
    (packed(200_000, 10), "outside guest memory"),        # pointer past the end (2 pages = 131072)
    (packed(131_070, 10), "outside guest memory"),        # straddles the end
    (packed(16, 0xFFFF_FFFF), "exceeds the stage's limit"),  # 4 GiB length
])
def test_bad_result_pointers_are_abi_errors(result, message):
    with instance(guest(result)) as inst, pytest.raises(AbiError, match=message):
        inst.on_request(REQUEST)


def test_output_above_the_stage_limit_is_refused():
    with instance(guest(packed(16, 5000)), max_output_bytes=4096) as inst:
        with pytest.raises(AbiError, match="5000 bytes exceeds"):
            inst.on_request(REQUEST)


@pytest.mark.parametrize("alloc, message", [
    ("(i32.const 0)", "returned 0"),
    ("(i32.const 131000)", "outside guest memory"),
    ("(i32.const -1)", "outside guest memory"),
])
def test_bad_alloc_results_are_abi_errors(alloc, message):
    with instance(guest(alloc=alloc)) as inst, pytest.raises(AbiError, match=message):
        inst.on_request(REQUEST)


def test_a_trap_is_a_guest_trap_with_its_code():
    with instance(guest("(unreachable)")) as inst, pytest.raises(GuestTrap) as caught:
        inst.on_request(REQUEST)
    assert caught.value.trap_code == "unreachable"
    assert "backtrace" not in str(caught.value)


def test_out_of_bounds_access_in_the_guest_is_a_trap():
    with instance(guest("(drop (i32.load (i32.const 1000000))) (i64.const 0)")) as inst:
        with pytest.raises(GuestTrap, match="out of bounds"):
            inst.on_request(REQUEST)


def test_endless_loop_is_interrupted_at_the_deadline():
    with instance(guest("(loop $l (br $l)) (i64.const 0)"), timeout_ms=50) as inst:
        started = time.monotonic()
        with pytest.raises(GuestTimeout):
            inst.on_request(REQUEST)
        assert time.monotonic() - started < (50 + 2 * TICK_MS + 50) / 1000


def test_deep_recursion_is_a_trap():
    extra = '(func $down (param i32) (result i32) (call $down (i32.add (local.get 0) (i32.const 1))))'
    with instance(guest("(drop (call $down (i32.const 0))) (i64.const 0)", extra=extra)) as inst:
        with pytest.raises(GuestTrap):
            inst.on_request(REQUEST)


def test_memory_grow_beyond_the_limit_fails_inside_the_guest():
    # grow by 100 pages (6.25 MiB) under a 4 MiB limit: memory.grow returns -1, the guest traps
    body = "(if (i32.eq (memory.grow (i32.const 100)) (i32.const -1)) (then unreachable)) (i64.const 0x0000001000000011)"
    with instance(guest(body), max_memory_mb=4) as inst, pytest.raises(GuestTrap):
        inst.on_request(REQUEST)
    with instance(guest(body), max_memory_mb=64) as inst:
        assert msgpack.unpackb(inst.on_request(REQUEST)) == {"action": "continue"}


def test_memory_growth_moves_no_stale_base():
    # the guest grows memory then answers from the new pages: the host must re-read the base
    body = ("(drop (memory.grow (i32.const 64))) "
            "(i32.store8 (i32.const 200000) (i32.const 0xc0)) "  # msgpack nil at the new page
            + packed(200_000, 1))
    with instance(guest(body)) as inst:
        assert inst.on_request(REQUEST) == b"\xc0"


def test_mw_log_lines_reach_the_host_log_with_the_stage_label(caplog):
    imports = '(import "mw" "log" (func $log (param i32 i32 i32)))'
    data = '(data (i32.const 16) "\\81" "\\a6" "action" "\\a8" "continue") (data (i32.const 300) "hello")'
    body = "(call $log (i32.const 2) (i32.const 300) (i32.const 5)) (i64.const 0x0000001000000011)"
    with caplog.at_level(logging.INFO, "mwhost.guest"), instance(guest(body, imports=imports, data=data)) as inst:
        inst.on_request(REQUEST)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.WARNING, "[test@0] log: hello")]


def test_mw_log_with_a_bad_pointer_is_dropped_without_trapping(caplog):
    imports = '(import "mw" "log" (func $log (param i32 i32 i32)))'
    body = "(call $log (i32.const 1) (i32.const 131000) (i32.const 5000)) (i64.const 0x0000001000000011)"
    with caplog.at_level(logging.INFO, "mwhost.guest"), instance(guest(body, imports=imports)) as inst:
        assert msgpack.unpackb(inst.on_request(REQUEST)) == {"action": "continue"}
    assert "outside guest memory" in caplog.text


def test_log_flood_is_bounded_per_call(caplog):
    imports = '(import "mw" "log" (func $log (param i32 i32 i32)))'
    body = ("(local $i i32) (loop $l (call $log (i32.const 1) (i32.const 0) (i32.const 1000)) "
            "(local.set $i (i32.add (local.get $i) (i32.const 1))) "
            "(br_if $l (i32.lt_u (local.get $i) (i32.const 100)))) (i64.const 0x0000001000000011)")
    with caplog.at_level(logging.INFO, "mwhost.guest"), instance(guest(body, imports=imports), max_log_bytes=4000) as inst:
        inst.on_request(REQUEST)
    lines = [r.getMessage() for r in caplog.records if "] log: " in r.getMessage()]
    assert len(lines) == 4
    assert all("\n" not in line and "\x00" not in line for line in lines)
    assert "96000 bytes dropped" in caplog.text


def test_init_gets_the_config_and_a_refusal_is_a_load_error():
    config = msgpack.packb({"k": "v"})
    # mw_init returns the config's first byte (0x81 for a one-entry map) -> a refusal
    refuse = instance(guest(init="(i32.load8_u (local.get $ptr))"))
    with refuse, pytest.raises(GuestLoadError, match="returned 129"):
        refuse.init(config)
    with instance(guest(init="(i32.const 0)")) as accept:
        accept.init(config)


def test_a_trap_in_init_is_a_load_error():
    with instance(guest(init="(unreachable)")) as inst, pytest.raises(GuestLoadError, match="mw_init failed"):
        inst.init(b"\x80")


def test_close_is_idempotent_and_later_calls_fail_loudly():
    inst = instance(guest())
    inst.close()
    inst.close()
    with pytest.raises(GuestError, match="closed"):
        inst.on_request(REQUEST)


def test_request_call_is_the_roundtrip_with_the_instances_limits():
    """``request_call(data)`` (what Stage.on_request calls) answers as ``on_request`` and keeps
    the instance's output limit and deadline."""
    with instance(guest()) as inst:
        assert inst.request_call(REQUEST) == inst.on_request(REQUEST)
    with instance(guest(packed(16, 5000)), max_output_bytes=4096) as inst:
        with pytest.raises(AbiError, match="5000 bytes exceeds"):
            inst.request_call(REQUEST)
    with instance(guest("(loop $l (br $l)) (i64.const 0)"), timeout_ms=50) as inst:
        started = time.monotonic()
        with pytest.raises(GuestTimeout):
            inst.request_call(REQUEST)
        assert time.monotonic() - started < (50 + 2 * TICK_MS + 50) / 1000


def test_request_call_is_offered_only_while_open_and_without_fuel():
    """An instance with fuel to refill per call offers no ``request_call`` (its caller takes
    ``on_request``), nor does a closed one (whose ``on_request`` fails loudly)."""
    module = GuestModule.from_bytes(default_runtime(), guest(), fuel=True)
    with GuestInstance(module, Limits(fuel=1_000_000), "test@0") as fueled:
        assert fueled.request_call is None
    plain = instance(guest())
    assert plain.request_call is not None
    plain.close()
    assert plain.request_call is None
    with pytest.raises(GuestError, match="closed"):
        plain.on_request(REQUEST)
