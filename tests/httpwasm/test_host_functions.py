"""Every http_handler host function, called by inline WAT guests, against the spec's rules."""

from __future__ import annotations

import pytest

from mwhost.errors import GuestLoadError, GuestTimeout, GuestTrap, ModuleRefused
from mwhost.runtime import GuestModule, Limits, default_runtime
from mwhost.runtime.httpwasm import Exchange
from mwhost.runtime.httpwasm_instance import HttpWasmInstance

from .wat_guests import NEXT, STOP, data, hw_guest, returns


def instance(wasm: bytes, config: bytes = b"", limits: Limits = Limits()) -> HttpWasmInstance:
    return HttpWasmInstance(GuestModule.from_bytes(default_runtime(), wasm), limits, "hw-test", config)


def exchange(**overrides) -> Exchange:
    fields = dict(method="GET", uri="/a%20b?q=1", protocol="HTTP/1.1", source_addr="10.0.0.7:40000",
                  request_headers=[("host", "example.test"), ("accept", "a"), ("Accept", "b")],
                  request_body=b"hello", max_body=1024)
    fields.update(overrides)
    return Exchange(**fields)


def run(wat_body: str, ex: Exchange | None = None, **kwargs) -> tuple[int, bool, HttpWasmInstance, Exchange]:
    guest = instance(hw_guest(wat_body, **kwargs))
    ex = ex or exchange()
    ctx, next_ = guest.handle_request(ex)
    return ctx, next_, guest, ex


@pytest.mark.parametrize("call, value", [
    ("$get_method", b"GET"), ("$get_uri", b"/a%20b?q=1"), ("$get_protocol_version", b"HTTP/1.1"),
    ("$get_source_addr", b"10.0.0.7:40000"),
])
def test_a_small_buffer_gets_the_length_and_nothing_written(call, value):
    """(buf, buf_limit) -> len: too small a limit returns the needed length and leaves memory alone."""
    ctx, _, guest, _ = run(returns(f"(call {call} (i32.const 100) (i32.const {len(value) - 1}))"),
                           data_=data(100, "#" * 32))
    assert ctx == len(value)
    assert guest._memory.read(100, len(value)) == b"#" * len(value)


@pytest.mark.parametrize("call, value", [
    ("$get_method", b"GET"), ("$get_uri", b"/a%20b?q=1"), ("$get_protocol_version", b"HTTP/1.1"),
    ("$get_source_addr", b"10.0.0.7:40000"),
])
def test_a_large_enough_buffer_gets_the_value(call, value):
    """A limit at least the value's length gets the value written at buf."""
    ctx, _, guest, _ = run(returns(f"(call {call} (i32.const 100) (i32.const {len(value)}))"))
    assert ctx == len(value) and guest._memory.read(100, len(value)) == value


def test_get_config_returns_the_config_bytes_also_in_start():
    """get_config answers during _start (commands read config there) and in handle_request."""
    guest = instance(hw_guest(returns("(i32.load (i32.const 200))"),
                              start="(i32.store (i32.const 200) (call $get_config (i32.const 300) (i32.const 64)))"),
                     config=b'{"a":1}')
    ctx, _ = guest.handle_request(exchange())
    assert ctx == 7 and guest._memory.read(300, 7) == b'{"a":1}'


def test_get_header_names_are_lower_case_unique_and_nul_terminated():
    """count << 32 | len, names in lower case, each once, NUL-terminated."""
    body = """(local.set $w (call $get_header_names (i32.const 0) (i32.const 100) (i32.const 64)))
              (i64.store (i32.const 0) (local.get $w)) (i64.const 1)"""
    _, _, guest, _ = run(body)
    expected = b"host\0accept\0"
    assert guest._memory.read(0, 8) == ((2 << 32) | len(expected)).to_bytes(8, "little")
    assert guest._memory.read(100, len(expected)) == expected


def test_get_header_names_with_a_small_buffer_writes_nothing():
    """A list larger than buf_limit: count_len still returned, memory untouched."""
    body = """(local.set $w (call $get_header_names (i32.const 0) (i32.const 100) (i32.const 4)))
              (i64.store (i32.const 0) (local.get $w)) (i64.const 1)"""
    _, _, guest, _ = run(body, data_=data(100, "#" * 16))
    assert int.from_bytes(guest._memory.read(0, 8), "little") == (2 << 32) | 12
    assert guest._memory.read(100, 12) == b"#" * 12


def test_get_header_values_ignores_case_and_keeps_order():
    """Values of a name in any case, in order, NUL-terminated; a missing name is 0."""
    body = """(local.set $w (call $get_header_values (i32.const 0) (i32.const 50) (i32.const 6) (i32.const 100) (i32.const 64)))
              (i64.store (i32.const 0) (local.get $w))
              (i64.store (i32.const 8) (call $get_header_values (i32.const 0) (i32.const 60) (i32.const 7) (i32.const 200) (i32.const 64)))
              (i64.const 1)"""
    _, _, guest, _ = run(body, data_=data(50, "ACCEPT") + data(60, "missing"))
    assert int.from_bytes(guest._memory.read(0, 8), "little") == (2 << 32) | 4
    assert guest._memory.read(100, 4) == b"a\0b\0"
    assert guest._memory.read(8, 8) == bytes(8)


def test_set_add_and_remove_request_and_response_headers():
    """set replaces every value of a name, add appends one, remove drops all; per kind."""
    body = """(call $set_header_value (i32.const 0) (i32.const 50) (i32.const 6) (i32.const 70) (i32.const 1))
              (call $add_header_value (i32.const 0) (i32.const 60) (i32.const 5) (i32.const 71) (i32.const 1))
              (call $remove_header (i32.const 0) (i32.const 80) (i32.const 4))
              (call $add_header_value (i32.const 1) (i32.const 60) (i32.const 5) (i32.const 70) (i32.const 1))
              (call $add_header_value (i32.const 1) (i32.const 60) (i32.const 5) (i32.const 71) (i32.const 1))
              (i64.const 1)"""
    _, next_, _, ex = run(body, data_=data(50, "Accept") + data(60, "x-new") + data(70, "12") + data(80, "HOST"))
    assert next_
    assert ex.request_headers == [("accept", "1"), ("x-new", "2")]
    assert ex.response_headers == [("x-new", "1"), ("x-new", "2")]
    assert ex.edited == {"request_headers", "response_headers"}


def test_set_method_and_set_uri_edit_the_exchange():
    """set_method and set_uri replace the method and the (escaped) request target."""
    body = """(call $set_method (i32.const 50) (i32.const 4))
              (call $set_uri (i32.const 60) (i32.const 13)) (i64.const 1)"""
    _, _, _, ex = run(body, data_=data(50, "POST") + data(60, "/x%26y?z=%201"))
    assert (ex.method, ex.uri) == ("POST", "/x%26y?z=%201")
    assert {"method", "uri"} <= ex.edited


@pytest.mark.parametrize("call, text, message", [
    ("$set_method", "GE T", "not an HTTP method token"),
    ("$set_uri", "no-slash", "origin-form"),
])
def test_bad_method_or_uri_traps_with_a_reason(call, text, message):
    """An invalid method or URI is the guest's error: a trap naming the function."""
    with pytest.raises(GuestTrap, match=message):
        run(f"(call {call} (i32.const 50) (i32.const {len(text)})) (i64.const 1)", data_=data(50, text))


def test_read_body_streams_with_eof_len():
    """read_body returns eof << 32 | len: chunks of buf_limit, EOF with the last one."""
    body = """(i64.store (i32.const 0) (call $read_body (i32.const 0) (i32.const 100) (i32.const 3)))
              (i64.store (i32.const 8) (call $read_body (i32.const 0) (i32.const 103) (i32.const 3)))
              (i64.store (i32.const 16) (call $read_body (i32.const 0) (i32.const 106) (i32.const 3)))
              (i64.const 1)"""
    _, _, guest, _ = run(body)
    words = [int.from_bytes(guest._memory.read(i, 8), "little") for i in (0, 8, 16)]
    assert words == [3, (1 << 32) | 2, 1 << 32]
    assert guest._memory.read(100, 5) == b"hello"


def test_read_body_with_a_zero_limit_traps():
    """The spec: a zero buf_limit panics."""
    with pytest.raises(GuestTrap, match="read_body: buf_limit is 0"):
        run("(drop (call $read_body (i32.const 0) (i32.const 100) (i32.const 0))) (i64.const 1)")


def test_write_body_replaces_then_appends_within_the_limit():
    """The first write_body replaces the body, later ones append; past the limit it traps."""
    body = """(call $write_body (i32.const 0) (i32.const 50) (i32.const 3))
              (call $write_body (i32.const 0) (i32.const 50) (i32.const 3))
              (call $write_body (i32.const 1) (i32.const 50) (i32.const 2)) (i64.const 1)"""
    _, _, _, ex = run(body, data_=data(50, "abc"))
    assert ex.request_body.written == b"abcabc" and ex.response_body.written == b"ab"
    with pytest.raises(GuestTrap, match="exceed the stage's limit of 4"):
        run(body, ex=exchange(max_body=4), data_=data(50, "abc"))


def test_status_code_and_next_zero():
    """set_status_code and get_status_code; next=0 leaves the answer to the guest."""
    ctx, next_, _, ex = run(f"(call $set_status_code (i32.const 418)) {returns('(call $get_status_code)', 0)}")
    assert (ctx, next_, ex.status) == (418, False, 418)


def test_handle_response_gets_ctx_and_the_apps_response():
    """handle_response(ctx, is_error) runs on the same instance with the app's status."""
    guest = instance(hw_guest(returns("(i32.const 9)"),
                              handle_response="""(i32.store (i32.const 0) (local.get $ctx))
                                                 (call $set_status_code (i32.add (call $get_status_code) (i32.const 1)))"""))
    ex = exchange()
    ctx, _ = guest.handle_request(ex)
    ex.begin_response(200, [("content-type", "text/plain")], b"body")
    guest.handle_response(ex, ctx, False)
    assert guest._memory.read(0, 4) == (9).to_bytes(4, "little") and ex.status == 201


def test_enable_features_offers_buffering_but_no_trailers():
    """enable_features(7) -> 3: buffer_request and buffer_response, never trailers."""
    ctx, *_ = run(returns("(call $enable_features (i32.const 7))"))
    assert ctx == 3


def test_trailers_are_empty_and_setting_one_traps():
    """A host without trailers returns no trailer names and traps on setting one."""
    ctx, *_ = run(returns("(i32.wrap_i64 (call $get_header_names (i32.const 2) (i32.const 100) (i32.const 64)))"))
    assert ctx == 0
    with pytest.raises(GuestTrap, match="trailers are not supported"):
        run("(call $set_header_value (i32.const 3) (i32.const 50) (i32.const 1) (i32.const 50) (i32.const 1)) "
            "(i64.const 1)", data_=data(50, "x"))


def test_log_reaches_the_guest_log_and_log_enabled_says_which_levels():
    """log lines land in the instance's guest log; debug and none are not enabled."""
    body = f"""(call $log (i32.const 1) (i32.const 50) (i32.const 5))
               {returns('(i32.add (i32.mul (call $log_enabled (i32.const 0)) (i32.const 10)) (call $log_enabled (i32.const -1)))')}"""
    ctx, _, guest, _ = run(body, data_=data(50, "hello"))
    assert ctx == 10
    assert any("hello" in line for line in guest.log.recent)


def test_a_pointer_outside_memory_is_a_trap_not_a_host_crash():
    """A buffer past the end of memory traps the guest with the function's name."""
    with pytest.raises(GuestTrap, match="get_uri"):
        run(returns("(call $get_uri (i32.const 65530) (i32.const 64))"))


def test_request_functions_outside_a_request_fail_the_start():
    """get_method in _start (no request yet) fails instantiation, naming the function."""
    with pytest.raises(GuestLoadError, match="get_method called outside"):
        instance(hw_guest(NEXT, start="(drop (call $get_method (i32.const 0) (i32.const 8)))"))


def test_a_command_that_exits_zero_in_start_loads_and_a_nonzero_exit_refuses():
    """_start ending in proc_exit(0) (Go/TinyGo commands) is a normal start; exit 3 is not."""
    exit_import = '(import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))'
    from .wat_guests import IMPORTS
    ok = instance(hw_guest(STOP, start="(call $proc_exit (i32.const 0))", imports=IMPORTS + exit_import))
    assert ok.handle_request(exchange()) == (0, False)
    with pytest.raises(GuestLoadError, match="status 3"):
        instance(hw_guest(STOP, start="(call $proc_exit (i32.const 3))", imports=IMPORTS + exit_import))


def test_initialize_runs_for_reactors_and_enables_features_for_every_request():
    """_initialize runs once; features it enabled apply to each request."""
    guest = instance(hw_guest(NEXT, initialize="(drop (call $enable_features (i32.const 2)))"))
    ex = exchange()
    guest.handle_request(ex)
    assert ex.features == 2


def test_a_looping_guest_is_interrupted_at_its_deadline():
    """handle_request that never returns ends as GuestTimeout within the stage's limit."""
    guest = instance(hw_guest("(loop $forever (br $forever)) (i64.const 1)"), limits=Limits(timeout_ms=50))
    with pytest.raises(GuestTimeout):
        guest.handle_request(exchange())


@pytest.mark.parametrize("wat, message", [
    ('(module (import "http_handler" "get_uri" (func (param i32) (result i32))) (memory (export "memory") 1)'
     ' (func (export "handle_request") (result i64) (i64.const 1)))', "'http_handler.get_uri' must have the signature"),
    ('(module (import "http_handler" "get_uri" (func (param i32 i32) (result i32)))'
     ' (import "mw" "log" (func (param i32 i32 i32))) (memory (export "memory") 1)'
     ' (func (export "handle_request") (result i64) (i64.const 1)))', "mixes two guest ABIs"),
    ('(module (memory (export "memory") 1) (func (export "run")))', "neither 'mw_on_request'"),
    ('(module (import "http_handler" "nope" (func)) (memory (export "memory") 1)'
     ' (func (export "handle_request") (result i64) (i64.const 1)))', "'http_handler.nope'"),
    ('(module (import "http_handler" "log" (func (param i32 i32 i32))) (memory (export "memory") 1))',
     "required function 'handle_request'"),
])
def test_module_checks_refuse_with_a_clear_message(wat, message):
    """Wrong signatures, mixed ABIs, no ABI at all and unknown imports are refused by name."""
    from mwhost.testing import wat_guest
    with pytest.raises(ModuleRefused, match=message):
        GuestModule.from_bytes(default_runtime(), wat_guest(wat))


def test_detected_abi():
    """A module importing http_handler is an http-wasm guest; its response phase is handle_response."""
    module = GuestModule.from_bytes(default_runtime(), hw_guest())
    assert module.abi == "http-wasm" and module.has_on_response
    assert GuestModule.from_bytes(default_runtime(), hw_guest(handle_response=None)).has_on_response is False


class TrickleStream:
    """A request body stream that yields one byte per read, slowly: a slow client."""

    def read(self, size: int = -1) -> bytes:
        import time
        time.sleep(0.01)
        return b"x"


def test_a_body_that_trickles_past_the_deadline_ends_the_call_as_a_timeout():
    """A request body that does not arrive before the call's deadline (the stage's bounded
    read of a trickling stream) ends handle_request as GuestTimeout, not as a guest trap."""
    from mwhost.pipeline.httpwasm_stage import _read_within

    def trickling_body(deadline_ns: int) -> bytes:
        return _read_within({}, TrickleStream(), 10_000, deadline_ns)

    guest = instance(hw_guest("(drop (call $read_body (i32.const 0) (i32.const 100) (i32.const 16))) (i64.const 1)"),
                     limits=Limits(timeout_ms=50))
    with pytest.raises(GuestTimeout):
        guest.handle_request(exchange(request_body=trickling_body))


def test_a_body_read_that_fails_before_the_deadline_is_a_trap():
    """A body stream that fails (not a slow one) is the call's trap, naming read_body."""
    from mwhost.pipeline.httpwasm_stage import _read_within

    class Broken:
        def read(self, size: int = -1) -> bytes:
            raise ConnectionResetError("reset by peer")

    guest = instance(hw_guest("(drop (call $read_body (i32.const 0) (i32.const 100) (i32.const 16))) (i64.const 1)"),
                     limits=Limits(timeout_ms=5000))
    with pytest.raises(GuestTrap, match="read_body: reading the request body failed"):
        guest.handle_request(exchange(request_body=lambda deadline_ns: _read_within({}, Broken(), 10, deadline_ns)))


def test_a_host_call_that_returns_past_the_deadline_ends_the_call_as_a_timeout():
    """A body that arrives too slowly (the read sleeps past timeout_ms) ends handle_request
    as GuestTimeout, not a trap: a blocking host call is bounded by the deadline."""
    import time

    def slow_body(_deadline_ns: int) -> bytes:
        time.sleep(0.2)
        return b"late"

    guest = instance(hw_guest("(drop (call $read_body (i32.const 0) (i32.const 100) (i32.const 16))) (i64.const 1)"),
                     limits=Limits(timeout_ms=50))
    with pytest.raises(GuestTimeout):
        guest.handle_request(exchange(request_body=slow_body))
