"""Prometheus metrics: counted locally on the hot path, published to prometheus_client.

A stage call costs ~0.3 us to count here against ~3.5 us for a prometheus_client counter
plus histogram in multiprocess mode (measured, bench/metrics_cost.py), so each process
counts in plain Python and ``flush()`` moves the counts into prometheus_client's
(multiprocess-aware) values: every second from a background thread, and before every
scrape of ``/metrics``. ``prometheus_client`` is imported on first flush, after ``mwhost
serve`` has set ``PROMETHEUS_MULTIPROC_DIR`` (it reads the variable when imported).

Label values are bounded: stage names, the version's sha256 prefix, phase, outcome and
failure kind (a fixed set); never paths or header values.
"""

from __future__ import annotations

import bisect
import collections
import logging
import os
import threading
import time
import weakref
from typing import Any

logger = logging.getLogger("mwhost.metrics")

#: duration buckets in seconds: guest calls take microseconds to the timeout
BUCKETS = (0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
           0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
FLUSH_INTERVAL_S = 1.0
#: ok calls a meter keeps unfolded at most (PhaseMeter)
FOLD_AT = 1024
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class PhaseMeter:
    """Calls, durations and failures of one stage version in one phase, counted locally.

    PERF: a call that succeeded (nearly all of them) only appends its duration to a deque,
    without the lock (``deque.append`` is atomic under the GIL, also under gthread); the
    durations are folded into the counts and the histogram under the lock, by ``take()`` or
    once FOLD_AT of them wait (so a process that never flushes keeps a bounded deque).
    """

    __slots__ = ("labels", "_lock", "waiting", "ok", "failed", "buckets", "total", "kinds", "tally",
                 "__weakref__")

    def __init__(self, stage: str, version: str, phase: str) -> None:
        self.labels = (stage, version[:12], phase)
        self._lock = threading.Lock()
        # the durations of ok calls not yet folded; NOTE: the C request phase
        # (Stage.request_prep) appends to this very deque and calls ``fold()`` at FOLD_AT,
        # as ``record`` does: keep the two in step
        self.waiting: collections.deque[float] = collections.deque()
        self.ok = 0
        self.failed = 0
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.kinds: dict[str, int] = {}
        # the C request phase's counter of ok calls (``tally_with``), folded in with the deque
        self.tally = None

    def tally_with(self, make_tally):
        """The object the C request phase counts this meter's ok calls in, made once by
        ``make_tally(BUCKETS)`` (the accelerator's Tally: ``take() -> (calls, counts per
        bucket, total seconds)``, reset on each take); ``take()`` folds its counts in."""
        with self._lock:
            if self.tally is None:
                self.tally = make_tally(BUCKETS)
            return self.tally

    def record(self, seconds: float, ok: bool) -> None:
        # PERF: on every stage call; see the class docstring.
        if ok:
            durations = self.waiting
            durations.append(seconds)
            if len(durations) >= FOLD_AT:
                self.fold()
            return
        with self._lock:
            self.failed += 1
            self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.total += seconds

    def fold(self) -> None:
        """Fold the ok calls waiting in the deque into the counts now."""
        with self._lock:
            self._fold()

    def _fold(self) -> None:
        """Move the waiting durations into the counts (the caller holds the lock)."""
        durations, buckets, bucket_of = self.waiting, self.buckets, bisect.bisect_left
        total = self.total
        # NOTE: only folders pop, under the lock: the first len() items are there to pop,
        # and an append made meanwhile waits for the next fold
        count = len(durations)
        for _ in range(count):
            seconds = durations.popleft()
            buckets[bucket_of(BUCKETS, seconds)] += 1
            total += seconds
        self.ok += count
        self.total = total
        tally = self.tally
        if tally is not None:
            # NOTE: take() runs in C under the GIL: no call is counted twice or lost
            calls, counts, seconds = tally.take()
            if calls:
                self.ok += calls
                self.total += seconds
                for index, count in enumerate(counts):
                    buckets[index] += count

    def failure(self, kind: str) -> None:
        with self._lock:
            self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def take(self) -> tuple[int, int, list[int], float, dict[str, int]]:
        """The counts since the last take, reset to zero."""
        with self._lock:
            self._fold()
            taken = (self.ok, self.failed, self.buckets, self.total, self.kinds)
            self.ok = self.failed = 0
            self.buckets = [0] * (len(BUCKETS) + 1)
            self.total = 0.0
            self.kinds = {}
        return taken


class NullMeter:
    """A meter that counts nothing: for stages under admission (probe requests are not
    traffic, so they never reach ``mwhost_stage_calls_total``)."""

    __slots__ = ()

    def record(self, seconds: float, ok: bool) -> None:
        pass

    def failure(self, kind: str) -> None:
        pass


NULL_METER = NullMeter()


class _Published:
    """The prometheus_client objects, made on first use."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.calls = Counter("mwhost_stage_calls_total", "Guest calls by stage, version, phase and outcome.",
                             ["stage", "version", "phase", "outcome"])
        self.duration = Histogram("mwhost_stage_call_duration_seconds", "Guest call duration.",
                                  ["stage", "version", "phase"], buckets=BUCKETS)
        self.failures = Counter("mwhost_stage_failures_total", "Failed guest calls by kind.",
                                ["stage", "version", "phase", "kind"])
        self.instances = Gauge("mwhost_stage_instances", "Live guest instances.", ["stage", "version"],
                               multiprocess_mode="livesum")
        self.generation = Gauge("mwhost_pipeline_generation", "Pipeline generation each worker serves.",
                                multiprocess_mode="liveall")
        self.swaps = Counter("mwhost_swaps_total", "Pipeline swaps by result.", ["result"])
        self.admin = Counter("mwhost_admin_operations_total", "Admin API operations by result.",
                             ["operation", "result"])
        self.rollout_percent = Gauge("mwhost_rollout_percent", "Candidate share of a stage's requests "
                                     "under a rollout (0 when none).", ["stage"], multiprocess_mode="livemax")
        self.rollout_transitions = Counter("mwhost_rollout_transitions_total", "Rollout transitions by "
                                           "outcome.", ["stage", "outcome"])


class Metrics:
    """This process's meters and their publication."""

    def __init__(self) -> None:
        # NOTE: a garbage collection may run a Stage's __del__ (which retires its meters) at
        # any allocation, even while this lock is held by the same thread: retiring never
        # takes it (a deque append is atomic), and the lock is reentrant besides.
        self._lock = threading.RLock()
        self._meters: weakref.WeakSet[PhaseMeter] = weakref.WeakSet()
        self._instances: dict[tuple[str, str], list] = {}  # (stage, version) -> weak refs to owners
        self._retired: collections.deque = collections.deque()  # (labels, counts) of gone stages
        self._published: _Published | None = None
        self._flusher_pid = 0
        self._pending: list[tuple[str, tuple, float]] = []  # (metric, labels, amount)
        self._generation: int | None = None
        self._percents: dict[str, int] = {}  # stage -> candidate percent, set on the next flush

    def meter(self, stage: str, version: str, phase: str) -> PhaseMeter:
        meter = PhaseMeter(stage, version, phase)
        with self._lock:
            self._meters.add(meter)
        return meter

    def track_instances(self, stage: str, version: str, owner_ref) -> None:
        """``owner_ref()`` (a weak reference) has ``live_instances``; read at every flush.
        Several owners (pipelines built before and after a swap) may share a label set."""
        with self._lock:
            self._instances.setdefault((stage, version[:12]), []).append(owner_ref)

    def retire(self, meter: PhaseMeter) -> None:
        """A stage is gone: keep its last counts for the next flush (lock-free: see __init__)."""
        self._meters.discard(meter)
        self._retired.append((meter.labels, meter.take()))

    def swapped(self, result: str, generation: int | None = None) -> None:
        """A swap was made ("ok", with the new generation) or refused ("rejected")."""
        with self._lock:
            self._pending.append(("swaps", (result,), 1))
            if generation is not None:
                self._generation = generation

    def serving(self, generation: int) -> None:
        """The generation this process serves (without counting a swap)."""
        with self._lock:
            self._generation = generation

    def admin_operation(self, operation: str, result: str) -> None:
        with self._lock:
            self._pending.append(("admin", (operation, result), 1))

    def rollout_percent(self, stage: str, percent: int) -> None:
        """The candidate's share of ``stage``'s requests now (0 without a rollout)."""
        with self._lock:
            self._percents[stage] = percent

    def rollout_transition(self, stage: str, outcome: str) -> None:
        """A rollout changed state: advanced, promoted, aborted, paused, resumed or waiting."""
        with self._lock:
            self._pending.append(("rollout_transitions", (stage, outcome), 1))

    # ---- publication --------------------------------------------------------------------

    def published(self) -> _Published:
        published = self._published
        if published is None:
            # NOTE: a gthread worker's first /metrics and its flush thread can get here
            # together; made twice, prometheus_client refuses the second (DuplicateTimeseries)
            with self._lock:
                if self._published is None:
                    self._published = _Published()
                published = self._published
        return published

    def flush(self) -> None:
        """Move every local count into prometheus_client."""
        published = self.published()
        with self._lock:
            counts = [(meter.labels, meter.take()) for meter in list(self._meters)]
            while self._retired:
                counts.append(self._retired.popleft())
            instances = {labels: _live(refs) for labels, refs in self._instances.items()}
            self._instances = {labels: [r for r in refs if r() is not None]
                               for labels, refs in self._instances.items()}
            pending, self._pending = self._pending, []
            generation = self._generation
            percents, self._percents = self._percents, {}
        for (stage, version, phase), (ok, failed, buckets, total, kinds) in counts:
            if ok:
                published.calls.labels(stage, version, phase, "ok").inc(ok)
            if failed:
                published.calls.labels(stage, version, phase, "failed").inc(failed)
            if ok or failed:
                _add_to_histogram(published.duration.labels(stage, version, phase), buckets, total)
            for kind, count in kinds.items():
                published.failures.labels(stage, version, phase, kind).inc(count)
        for (stage, version), count in instances.items():
            published.instances.labels(stage, version).set(count)
        for labels in [labels for labels, refs in self._instances.items() if not refs]:
            with self._lock:
                self._instances.pop(labels, None)
        for metric, labels, amount in pending:
            getattr(published, metric).labels(*labels).inc(amount)
        if generation is not None:
            published.generation.set(generation)
        for stage, percent in percents.items():
            published.rollout_percent.labels(stage).set(percent)

    def start_flushing(self) -> None:
        """Flush every FLUSH_INTERVAL_S from a daemon thread (again after fork)."""
        if self._flusher_pid == os.getpid():
            return
        self._flusher_pid = os.getpid()
        threading.Thread(target=self._flush_forever, name="mwhost-metrics", daemon=True).start()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_INTERVAL_S)
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - metrics must never take a worker down
                logger.exception("flushing metrics failed")

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text for a scrape: every worker's values in multiprocess mode."""
        self.flush()
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client import REGISTRY, multiprocess

        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = REGISTRY
        return generate_latest(registry), CONTENT_TYPE_LATEST


def _live(refs: list) -> int:
    return sum(owner.live_instances for owner in (ref() for ref in refs) if owner is not None)


def _add_to_histogram(child: Any, buckets: list[int], total: float) -> None:
    # NOTE: prometheus_client has no public call to add many observations at once; its
    # histogram keeps per-bucket (not cumulative) values and a sum, which we add to.
    # tests/test_metrics.py checks the exposition this produces.
    child._sum.inc(total)
    for index, count in enumerate(buckets):
        if count:
            child._buckets[index].inc(count)


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (gunicorn's child_exit hook, in the master).

    NOTE: this runs in the gunicorn master: nothing here may raise (a read-only or full
    data dir once made the master exit); a failure costs only stale gauges, logged."""
    if not os.environ.get(MULTIPROC_ENV):
        return
    try:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
    except Exception as err:  # noqa: BLE001 - see NOTE
        logger.warning("cannot drop the metrics of dead worker %d: %s", pid, err)


#: the process-wide metrics
METRICS = Metrics()
