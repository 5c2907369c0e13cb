"""The epoch ticker: both implementations interrupt a looping guest, stop, restart and fork."""

from __future__ import annotations

import threading
import time

import pytest

from mwhost.errors import GuestTimeout
from mwhost.runtime import TICK_MS, GuestInstance, GuestModule, Limits, Runtime
from mwhost.runtime import ticker
from tests.conftest import vector_bytes
from tests.forked import passes_in_child
from tests.wat import guest

REQUEST = vector_bytes("request_typical")
LOOP = guest("(loop $l (br $l)) (i64.const 0)")
NATIVE_BUILT = ticker._ticker is not None


@pytest.fixture(params=["native", "thread"])
def runtime(request, monkeypatch):
    """A fresh runtime whose tickers are of one kind (stopped at the end)."""
    if request.param == "native" and not NATIVE_BUILT:
        pytest.skip("the C ticker (host/runtime/_ticker.c) is not built: the thread ticker is the only one")
    monkeypatch.setenv(ticker.THREAD_TICKER_ENV, "1" if request.param == "thread" else "0")
    made = Runtime(parallel_compilation=False)
    yield made
    made.close_instances()


def looping(runtime: Runtime, timeout_ms: int = 50, fuel: int = 0) -> GuestInstance:
    return GuestInstance(GuestModule.from_bytes(runtime, LOOP, fuel=fuel > 0),
                         Limits(timeout_ms=timeout_ms, fuel=fuel), "loop@0")


def assert_interrupted_in_time(instance: GuestInstance, timeout_ms: int = 50) -> None:
    started = time.monotonic()
    with pytest.raises(GuestTimeout):
        instance.on_request(REQUEST)
    assert time.monotonic() - started < (timeout_ms + 2 * TICK_MS + 100) / 1000


def test_the_default_ticker_is_the_c_thread_where_it_was_built(monkeypatch):
    """Where the extension was built, a tick runs no Python: the ticker is the C thread."""
    monkeypatch.delenv(ticker.THREAD_TICKER_ENV, raising=False)
    engine_runtime = Runtime(parallel_compilation=False)
    try:
        engine_runtime.ensure_ticker()
        kinds = {type(t) for t in engine_runtime._tickers}
        assert kinds == ({ticker.NativeTicker} if NATIVE_BUILT else {ticker.ThreadTicker})
        assert not any(thread.name == "mwhost-epoch" for thread in threading.enumerate()) or not NATIVE_BUILT
    finally:
        engine_runtime.stop_ticker()


def test_a_looping_guest_is_interrupted_at_its_deadline(runtime):
    """Each ticker advances the epoch often enough that a 50 ms deadline ends a loop in time."""
    with looping(runtime) as instance:
        assert_interrupted_in_time(instance)


def test_a_fuel_engine_made_after_the_ticker_started_gets_its_own_ticks(runtime):
    """A fuel-metering flavour created later is ticked too (its loop is ended by the deadline)."""
    runtime.ensure_ticker()
    with looping(runtime, fuel=10**15) as instance:
        assert_interrupted_in_time(instance)


def test_a_stopped_ticker_no_longer_ticks_and_a_restarted_one_does(runtime):
    """After stop_ticker the epoch stands still (a looping call runs on); ensure_ticker
    starts ticking again and the same call is interrupted."""
    instance = looping(runtime, timeout_ms=20)  # starts the ticker
    runtime.stop_ticker()
    outcome: list[BaseException] = []
    call = threading.Thread(target=lambda: _record(outcome, instance))
    call.start()
    call.join(0.3)  # 15 ticks past the deadline
    assert call.is_alive() and not outcome
    runtime.ensure_ticker()
    call.join(10)
    assert not call.is_alive() and isinstance(outcome[0], GuestTimeout)
    instance.close()


def _record(outcome: list, instance: GuestInstance) -> None:
    try:
        instance.on_request(REQUEST)
    except BaseException as err:  # noqa: BLE001 - the test inspects it
        outcome.append(err)


def test_a_forked_child_ticks_on_its_own(runtime):
    """A child forked from a process whose ticker runs starts its own and interrupts a loop."""
    runtime.ensure_ticker()
    parent_tickers = list(runtime._tickers)

    def interrupted_in_child() -> bool:
        for parent_ticker in parent_tickers:
            parent_ticker.stop()  # the parent's: a no-op here, never a join of a thread not here
        with looping(runtime) as instance:
            try:
                instance.on_request(REQUEST)
            except GuestTimeout:
                return True
        return False

    assert passes_in_child(interrupted_in_child)  # else the loop was never interrupted there


@pytest.mark.skipif(not NATIVE_BUILT, reason="the C ticker is not built")
def test_the_c_ticker_checks_its_arguments_and_stops_once():
    """Bad arguments are a ValueError; stop() is idempotent and ends the thread."""
    with pytest.raises(ValueError):
        ticker._ticker.Ticker(0, 0, 10, None)
    made = ticker.NativeTicker(Runtime(parallel_compilation=False).engine)
    assert made.running
    made.stop()
    made.stop()
    assert not made.running
