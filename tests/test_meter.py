"""The per-stage meter (mwhost.metrics.PhaseMeter): lock-free recording of ok calls, the same
counts and histogram as before, no count lost under threads, bounded without flushes."""

from __future__ import annotations

import bisect
import threading

import pytest

from mwhost.metrics import BUCKETS, FOLD_AT, PhaseMeter
from mwhost.runtime import accel


def test_counts_and_histogram_are_those_of_the_recorded_calls():
    """ok and failed calls, every bucket edge and the total come out of take() as recorded, and
    a take starts the next period from zero."""
    meter = PhaseMeter("s", "0123456789abcdef", "request")
    durations = [0.0, *BUCKETS, 2.0, 0.000003, 0.00007]
    expected = [0] * (len(BUCKETS) + 1)
    for index, seconds in enumerate(durations):
        meter.record(seconds, ok=index % 3 != 0)
        expected[bisect.bisect_left(BUCKETS, seconds)] += 1
    meter.failure("trap")
    ok, failed, buckets, total, kinds = meter.take()
    assert (ok, failed) == (sum(1 for i in range(len(durations)) if i % 3), sum(1 for i in range(len(durations))
                                                                              if i % 3 == 0))
    assert buckets == expected and abs(total - sum(durations)) < 1e-9 and kinds == {"trap": 1}
    assert meter.take() == (0, 0, [0] * (len(BUCKETS) + 1), 0.0, {})


def test_no_call_is_lost_while_threads_record_and_another_takes():
    """Calls recorded from several threads while a flusher takes again and again all reach
    exactly one take (gthread workers record without the lock)."""
    meter = PhaseMeter("s", "v", "request")
    per_thread, threads = 20_000, 4
    taken = []
    done = threading.Event()

    def flusher() -> None:
        while not done.is_set():
            taken.append(meter.take())

    def worker() -> None:
        for i in range(per_thread):
            meter.record(0.00001, ok=i % 100 != 0)

    flushing = threading.Thread(target=flusher)
    flushing.start()
    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    done.set()
    flushing.join()
    taken.append(meter.take())
    assert sum(t[0] for t in taken) + sum(t[1] for t in taken) == per_thread * threads
    assert sum(t[1] for t in taken) == threads * per_thread // 100
    assert sum(sum(t[2]) for t in taken) == per_thread * threads


def test_a_meter_that_is_never_taken_stays_bounded():
    """Without a flush (an app served by another server) the waiting durations are folded
    into the counts every FOLD_AT calls instead of piling up."""
    meter = PhaseMeter("s", "v", "request")
    for _ in range(FOLD_AT * 3 + 5):
        meter.record(0.001, ok=True)
    assert len(meter.waiting) < FOLD_AT
    assert meter.take()[0] == FOLD_AT * 3 + 5


needs_accel = pytest.mark.skipif(accel.ACCEL is None, reason="the Tally is the C accelerator's")


@needs_accel
def test_a_tally_counts_as_the_meter_folds():
    """The C request phase's Tally puts each call in the bucket bisect_left puts it in (every
    edge, below and above all), and the meter's take() folds its counts with the deque's."""
    meter = PhaseMeter("s", "v", "request")
    tally = meter.tally_with(accel.ACCEL.Tally)
    assert meter.tally_with(accel.ACCEL.Tally) is tally  # one per meter, whatever asks again
    durations = [0.0, *BUCKETS, 2.0, 0.000003, 0.00007, *(b * 1.0001 for b in BUCKETS)]
    expected = [0] * (len(BUCKETS) + 1)
    for seconds in durations:
        tally.add(seconds)
        expected[bisect.bisect_left(BUCKETS, seconds)] += 1
    meter.record(0.001, ok=True)  # a call the Python path counted
    expected[bisect.bisect_left(BUCKETS, 0.001)] += 1
    ok, failed, buckets, total, _ = meter.take()
    assert (ok, failed) == (len(durations) + 1, 0)
    assert buckets == expected and abs(total - sum(durations) - 0.001) < 1e-9
    assert meter.take()[:4] == (0, 0, [0] * (len(BUCKETS) + 1), 0.0)


@needs_accel
def test_a_tally_refuses_bounds_it_cannot_bisect():
    with pytest.raises(ValueError):
        accel.ACCEL.Tally((0.2, 0.1))
    with pytest.raises(ValueError):
        accel.ACCEL.Tally(tuple(float(i) for i in range(65)))
    with pytest.raises(TypeError):
        accel.ACCEL.Tally(("a",))
