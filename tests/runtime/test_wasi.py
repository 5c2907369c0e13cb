"""The host's own WASI poll_oneoff and fd_write (host/runtime/wasi.py), and the WASI calls
left to wasmtime that could block: every wait is bounded by the call's deadline."""

from __future__ import annotations

import logging
import struct
import threading
import time

import msgpack
import pytest

from mwhost.errors import GuestTimeout
from mwhost.runtime import GuestInstance, GuestModule, Limits, default_runtime
from tests.conftest import vector_bytes
from tests.hostile.guests import FORTY_FIVE_S, clock_now
from tests.wat import data_segment, guest, packed

REQUEST = vector_bytes("request_typical")
WASI = " ".join(
    f'(import "wasi_snapshot_preview1" "{name}" (func ${alias} (param {params}) (result i32)))'
    for name, alias, params in [("poll_oneoff", "poll", "i32 i32 i32 i32"), ("clock_time_get", "clock", "i32 i64 i32"),
                                ("fd_write", "write", "i32 i32 i32 i32"), ("fd_read", "read", "i32 i32 i32 i32")])
SUBS, REPORT_AT, REPORT_LEN = 1024, 4096, 80  # report: errno u32, count u32, then up to two events
EVENTS = REPORT_AT + 8
ESUCCESS, EBADF, EFAULT, EINVAL = 0, 8, 21, 28
CLOCK, FD_READ, FD_WRITE = 0, 1, 2
MS = 1_000_000


def report_guest(body: str) -> bytes:
    """A guest that runs ``body`` and answers with a respond Action whose body is the
    REPORT_LEN bytes at REPORT_AT, where ``body`` stores its WASI results."""
    action = {"action": "respond", "status": 200, "body": bytes(REPORT_LEN)}
    start = REPORT_AT - (len(msgpack.packb(action)) - REPORT_LEN)
    data, length = data_segment(start, action)
    return guest(f"{body} {packed(start, length)}", imports=WASI, data=data)


def run(body: str, **limits) -> tuple[int, int, bytes]:
    """Call a report guest once: the errno, the count and the rest of its report."""
    with GuestInstance(GuestModule.from_bytes(default_runtime(), report_guest(body)), Limits(**limits), "wasi@0") as inst:
        report = msgpack.unpackb(inst.on_request(REQUEST))["body"]
    errno, count = struct.unpack_from("<II", report)
    return errno, count, report[8:]


def events(rest: bytes, count: int) -> list[tuple[int, int, int, int, int]]:
    """(userdata, errno, type, nbytes, flags) of each event in a report."""
    return [struct.unpack_from("<QHB5xQH6x", rest, 32 * i) for i in range(count)]


def clock_sub(index: int, userdata: int, timeout: str, clock: int = 1, flags: int = 0) -> str:
    at = SUBS + 48 * index
    return (f"(i64.store (i32.const {at}) (i64.const {userdata})) (i32.store8 (i32.const {at + 8}) (i32.const {CLOCK}))"
            f" (i32.store (i32.const {at + 16}) (i32.const {clock})) (i64.store (i32.const {at + 24}) {timeout})"
            f" (i32.store16 (i32.const {at + 40}) (i32.const {flags}))")


def fd_sub(index: int, userdata: int, tag: int, fd: int) -> str:
    at = SUBS + 48 * index
    return (f"(i64.store (i32.const {at}) (i64.const {userdata})) (i32.store8 (i32.const {at + 8}) (i32.const {tag}))"
            f" (i32.store (i32.const {at + 16}) (i32.const {fd}))")


def poll(count: int, subs: int = SUBS, out: int = EVENTS) -> str:
    return f"(i32.store (i32.const {REPORT_AT}) (call $poll (i32.const {subs}) (i32.const {out}) (i32.const {count}) (i32.const {REPORT_AT + 4})))"


def ns(value: int) -> str:
    return f"(i64.const {value})"


# ---- poll_oneoff: sleeps ----------------------------------------------------------------

@pytest.mark.parametrize("timeout, clock, flags", [
    (ns(5 * MS), 1, 0),
    (f"(i64.add {clock_now(1)} {ns(5 * MS)})", 1, 1),
    (f"(i64.add {clock_now(0)} {ns(5 * MS)})", 0, 1),
], ids=["relative", "absolute_monotonic", "absolute_realtime"])
def test_a_sleep_within_the_deadline_sleeps_and_reports_its_clock(timeout, clock, flags):
    """A 5 ms sleep under a 100 ms timeout waits about 5 ms and reports the clock event."""
    started = time.monotonic()
    errno, count, rest = run(clock_sub(0, 7, timeout, clock, flags) + poll(1), timeout_ms=100)
    elapsed = time.monotonic() - started
    assert (errno, count) == (ESUCCESS, 1)
    assert events(rest, 1) == [(7, ESUCCESS, CLOCK, 0, 0)]
    assert 0.004 <= elapsed < 0.100


@pytest.mark.parametrize("timeout, clock, flags", [
    (ns(FORTY_FIVE_S), 1, 0),
    (f"(i64.add {clock_now(1)} {ns(FORTY_FIVE_S)})", 1, 1),
    (f"(i64.add {clock_now(0)} {ns(FORTY_FIVE_S)})", 0, 1),
    (ns(FORTY_FIVE_S), 0, 0),
], ids=["relative", "absolute_monotonic", "absolute_realtime", "relative_realtime"])
def test_a_sleep_past_the_deadline_is_a_timeout_at_once(timeout, clock, flags):
    """A 45 s sleep under a 100 ms timeout ends the call as a GuestTimeout without sleeping
    (not even until the deadline: the call itself ends well before 100 ms)."""
    wasm = report_guest(clock_sub(0, 7, timeout, clock, flags) + poll(1))
    # NOTE: compiled and instantiated before the clock starts: only the call is timed
    with GuestInstance(GuestModule.from_bytes(default_runtime(), wasm), Limits(timeout_ms=100), "wasi@0") as inst:
        started = time.monotonic()
        with pytest.raises(GuestTimeout, match="waited in a host call") as failure:
            inst.on_request(REQUEST)
        took = time.monotonic() - started
    assert failure.value.kind == "timeout"
    assert took < 0.100


def test_sleeps_never_outlive_the_time_left_in_the_call():
    """Two 60 ms sleeps under a 100 ms timeout: the first sleeps, the second (past the
    deadline by then) ends the call as a timeout, within the timeout plus a margin."""
    started = time.monotonic()
    with pytest.raises(GuestTimeout):
        run(clock_sub(0, 1, ns(60 * MS)) + poll(1) + poll(1), timeout_ms=100)
    assert 0.060 <= time.monotonic() - started < 0.150


def test_each_call_gets_its_own_deadline():
    """Two calls of 60 ms sleeps on one instance under a 100 ms timeout both succeed."""
    wasm = report_guest(clock_sub(0, 1, ns(60 * MS)) + poll(1))
    with GuestInstance(GuestModule.from_bytes(default_runtime(), wasm), Limits(timeout_ms=100), "wasi@0") as inst:
        for _ in range(2):
            assert msgpack.unpackb(inst.on_request(REQUEST))["body"][:8] == struct.pack("<II", ESUCCESS, 1)


# ---- poll_oneoff: fds and bad arguments -------------------------------------------------

def test_ready_stdio_answers_at_once_beside_a_long_clock():
    """stdin (at end of file) and stdout are ready now: poll returns their events without
    waiting for the 45 s clock and without a timeout."""
    body = fd_sub(0, 1, FD_READ, 0) + clock_sub(1, 2, ns(FORTY_FIVE_S)) + fd_sub(2, 3, FD_WRITE, 1) + poll(3)
    errno, count, rest = run(body, timeout_ms=100)
    assert (errno, count) == (ESUCCESS, 2)
    assert events(rest, 2) == [(1, ESUCCESS, FD_READ, 0, 1), (3, ESUCCESS, FD_WRITE, 0, 0)]


def test_fds_that_do_not_exist_are_ebadf_events():
    """Subscriptions to fds other than stdio (or stdio the wrong way) come back as EBADF events."""
    errno, count, rest = run(fd_sub(0, 5, FD_WRITE, 9) + fd_sub(1, 6, FD_READ, 1) + poll(2))
    assert (errno, count) == (ESUCCESS, 2)
    assert events(rest, 2) == [(5, EBADF, FD_WRITE, 0, 0), (6, EBADF, FD_READ, 0, 0)]


@pytest.mark.parametrize("body, expected", [
    (poll(0), EINVAL),                                                     # nothing to wait for
    (poll(2000), EINVAL),                                                  # over the 1024 entries bound
    (clock_sub(0, 1, ns(0)) + poll(1, subs=131_060), EFAULT),              # subscriptions past memory
    (clock_sub(0, 1, ns(0)) + poll(1, out=131_060), EFAULT),               # events past memory
    (f"(i32.store8 (i32.const {SUBS + 8}) (i32.const 9))" + poll(1), EINVAL),  # unknown tag
], ids=["zero", "too_many", "subs_oob", "events_oob", "bad_tag"])
def test_bad_poll_arguments_are_errnos_not_traps(body, expected):
    """Malformed poll_oneoff calls get a WASI errno back; the guest goes on."""
    assert run(body)[0] == expected


def test_an_unknown_clock_is_an_einval_event():
    """An absolute timeout on a clock we cannot compare (process CPU time) is an EINVAL event."""
    errno, count, rest = run(clock_sub(0, 4, ns(1), clock=2, flags=1) + poll(1))
    assert (errno, count) == (ESUCCESS, 1)
    assert events(rest, 1) == [(4, EINVAL, CLOCK, 0, 0)]


# ---- the calls left to wasmtime ---------------------------------------------------------

def test_reading_stdin_is_end_of_file_at_once():
    """No stdin is configured: wasmtime's fd_read on fd 0 returns 0 bytes at once (no block)."""
    body = ("(i32.store (i32.const 2000) (i32.const 2100)) (i32.store (i32.const 2004) (i32.const 64))"
            f" (i32.store (i32.const {REPORT_AT}) (call $read (i32.const 0) (i32.const 2000) (i32.const 1) (i32.const {REPORT_AT + 4})))")
    started = time.monotonic()
    assert run(body, timeout_ms=100)[:2] == (ESUCCESS, 0)
    assert time.monotonic() - started < 0.100


# ---- fd_write ---------------------------------------------------------------------------

def write(fd: int, text: bytes, at: int = 2100, iovs: int = 1, iov_at: int = 2000) -> str:
    """WAT storing ``text`` at ``at`` and writing it to ``fd``, ``iovs`` iovecs at ``iov_at``
    (the first one for the text)."""
    data = "".join(f"(i32.store8 (i32.const {at + i}) (i32.const {b}))" for i, b in enumerate(text))
    return (f"{data} (i32.store (i32.const {iov_at}) (i32.const {at})) (i32.store (i32.const {iov_at + 4}) (i32.const {len(text)}))"
            f" (i32.store (i32.const {REPORT_AT}) (call $write (i32.const {fd}) (i32.const {iov_at}) (i32.const {iovs}) (i32.const {REPORT_AT + 4})))")


def test_stdout_and_stderr_reach_the_guest_log_on_the_calling_thread(caplog):
    """Lines written to fds 1 and 2 are logged by the thread that called the guest (no
    callback from wasmtime's own threads), with nwritten counting every byte."""
    with caplog.at_level(logging.INFO, logger="mwhost.guest"):
        errno, count, _ = run(write(1, b"hello\n") + write(2, b"oops\n"))
    assert (errno, count) == (ESUCCESS, 5)
    lines = [(r.levelno, r.getMessage(), r.thread) for r in caplog.records if r.name == "mwhost.guest"]
    me = threading.get_ident()
    assert lines == [(logging.INFO, "[wasi@0] stdout: hello", me), (logging.WARNING, "[wasi@0] stderr: oops", me)]


@pytest.mark.parametrize("body, expected", [
    (write(0, b"x"), EBADF),                      # stdin is not writable
    (write(3, b"x"), EBADF),                      # no other fd exists
    (f"(i32.store (i32.const {REPORT_AT}) (call $write (i32.const 1) (i32.const 131064) (i32.const 2) (i32.const {REPORT_AT + 4})))",
     EFAULT),                                     # the iovec array runs past memory
    ("(i32.store (i32.const 2000) (i32.const 131000)) (i32.store (i32.const 2004) (i32.const 1000))"
     f" (i32.store (i32.const {REPORT_AT}) (call $write (i32.const 1) (i32.const 2000) (i32.const 1) (i32.const {REPORT_AT + 4})))",
     EFAULT),                                     # a buffer past memory
    (write(1, b"x", iovs=5000), EINVAL),          # over the 1024 entries bound
], ids=["stdin", "fd3", "iovs_oob", "buffer_oob", "too_many"])
def test_bad_writes_are_errnos_and_log_nothing(body, expected, caplog):
    """fd_write refuses bad fds and pointers with a WASI errno; nothing reaches the log."""
    with caplog.at_level(logging.INFO, logger="mwhost.guest"):
        assert run(body)[0] == expected
    assert not [r for r in caplog.records if r.name == "mwhost.guest"]


def test_writes_over_the_log_budget_are_counted_and_dropped(caplog):
    """A write beyond the per-call log budget reports every byte written and logs the drop."""
    with caplog.at_level(logging.INFO):
        errno, count, _ = run(write(1, b"x" * 40 + b"\n"), max_log_bytes=16)
    assert (errno, count) == (ESUCCESS, 41)
    assert "41 bytes dropped" in caplog.text
    assert "stdout: x" not in caplog.text


# ---- the fast path ----------------------------------------------------------------------

def test_only_guests_that_can_wait_pay_for_a_call_clock():
    """A module without poll_oneoff gets no per-call clock read; one with it does."""
    runtime = default_runtime()
    assert not GuestModule.from_bytes(runtime, guest()).can_wait
    assert GuestModule.from_bytes(runtime, report_guest(poll(0))).can_wait


def test_a_guest_that_can_wait_takes_the_flat_call_where_the_roundtrip_keeps_the_clock(both_hot_paths):
    """With the C roundtrip (which records each call's start) a module importing poll_oneoff
    gets ``request_call`` like any other; on the pure-Python path it keeps the clocked call."""
    wasm = report_guest(clock_sub(0, 1, ns(MS)) + poll(1))
    with GuestInstance(GuestModule.from_bytes(default_runtime(), wasm), Limits(timeout_ms=100), "wasi@0") as inst:
        assert (inst.request_call is not None) == (both_hot_paths == "accel")


def test_a_flat_call_counts_its_deadline_from_its_own_start(both_hot_paths):
    """Through ``request_call`` (no Python clock read), each call's sleeps are bounded by that
    call's own start: after the instance sat idle for longer than its timeout, a 60 ms sleep
    under 100 ms still sleeps, twice in a row, and a second 60 ms sleep in one call is a timeout."""
    once = report_guest(clock_sub(0, 1, ns(60 * MS)) + poll(1))
    twice = report_guest(clock_sub(0, 1, ns(60 * MS)) + poll(1) + poll(1))
    runtime = default_runtime()
    with GuestInstance(GuestModule.from_bytes(runtime, once), Limits(timeout_ms=100), "wasi@0") as inst, \
            GuestInstance(GuestModule.from_bytes(runtime, twice), Limits(timeout_ms=100), "wasi@1") as late:
        call = inst.request_call or inst.on_request
        time.sleep(0.15)  # NOTE: not a synchronisation: idle past the timeout since the instance started
        for _ in range(2):
            started = time.monotonic()
            assert msgpack.unpackb(call(REQUEST))["body"][:8] == struct.pack("<II", ESUCCESS, 1)
            assert time.monotonic() - started >= 0.055
        started = time.monotonic()
        with pytest.raises(GuestTimeout, match="waited in a host call"):
            (late.request_call or late.on_request)(REQUEST)
        assert 0.055 <= time.monotonic() - started < 0.150
