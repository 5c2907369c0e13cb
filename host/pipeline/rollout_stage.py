"""A stage under a canary rollout: the baseline and the candidate side by side.

Each request is routed by its bucket (host/pipeline/bucket.py) or by the force header, and
the same variant answers its response phase. Calls, failures, stage-call times and the
request's final 5xx are tallied per variant in this process (``TALLIES``); the watch layer
writes the tallies to the data dir every second for the decider, which reads every worker's.
Stages with no rollout never see any of this (PERF: they are plain ``Stage`` objects).
"""

from __future__ import annotations

import bisect
import threading
import time
from typing import Any

from ..abi.messages import UNCHANGED, Action, ResponseAction
from .bucket import FORCE_HEADER, bucket, key_reader
from .messages import RequestState, ResponseState
from .stage import STAGE_FAILURES, Stage

VARIANTS = ("baseline", "candidate")
#: key values whose variant a CanaryStage remembers (cleared when full: clients choose keys)
KEY_CACHE_SIZE = 10_000
#: stage-call time buckets for p99, in seconds: 1 us .. ~10 s, 20% apart
LATENCY_BUCKETS = tuple(1e-6 * 1.2 ** i for i in range(90))


class Tally:
    """One variant's counts in one step of one rollout, in this process."""

    __slots__ = ("requests", "failures", "errors", "latency")

    def __init__(self) -> None:
        self.requests = 0
        self.failures = 0
        self.errors = 0
        self.latency = [0] * (len(LATENCY_BUCKETS) + 1)

    def to_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "failures": self.failures, "errors": self.errors,
                "latency": {str(i): n for i, n in enumerate(self.latency) if n}}


class Tallies:
    """Every rollout step's tallies in this process, by count key and variant."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tallies: dict[str, dict[str, Tally]] = {}
        self.shadow: dict[str, Any] = {}  # count key -> a shadow's results (host/pipeline/shadow.py)

    def for_step(self, count_key: str) -> dict[str, Tally]:
        with self._lock:
            tallies = self._tallies.get(count_key)
            if tallies is None:
                tallies = self._tallies[count_key] = {variant: Tally() for variant in VARIANTS}
            return tallies

    def snapshot(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Totals so far (never reset: the decider reads totals; a new step has a new key)."""
        with self._lock:
            return {key: {variant: tally.to_json() for variant, tally in tallies.items()}
                    for key, tallies in self._tallies.items()}

    def forget(self, keep: set[str]) -> None:
        """Drop the tallies of steps no longer in any manifest rollout."""
        with self._lock:
            for key in [key for key in self._tallies if key not in keep]:
                del self._tallies[key]


#: this process's rollout tallies
TALLIES = Tallies()


def count_key(rollout_id: str, step: int, step_started_at: float) -> str:
    """What a step's counts are filed under: a new step (or a resumed one) starts from zero."""
    return f"{rollout_id}/{step}/{step_started_at:.3f}"


class CanaryStage:
    """Routes each request to the baseline or the candidate stage; looks like a Stage to the
    pipeline (``call_request``, ``call_response``, ``failed``, ``close``)."""

    __slots__ = ("name", "baseline", "candidate", "threshold", "salt", "read_key", "key_header", "force",
                 "tallies", "has_on_response", "version", "key", "fail_open", "_on_candidate", "__weakref__")

    def __init__(self, baseline: Stage, candidate: Stage, *, percent: int, salt: str, key: str,
                 step_key: str, force: bool = True) -> None:
        self.name = baseline.name
        self.baseline = baseline
        self.candidate = candidate
        self.threshold = percent * 100   # buckets below this go to the candidate
        self.salt = salt
        self.read_key = key_reader(key)
        # a header key is read in the same pass over the headers as the force header
        self.key_header = key[len("header:"):].lower() if key.startswith("header:") else None
        self.force = force
        self._on_candidate: dict[str, bool] = {}  # key value -> its bucket is below threshold
        self.tallies = TALLIES.for_step(step_key)
        self.has_on_response = baseline.has_on_response or candidate.has_on_response
        self.version = baseline.version
        self.fail_open = baseline.fail_open
        self.key = ("canary", baseline.key, candidate.key, percent, salt, key, force, step_key)

    def variant(self, state: RequestState) -> str:
        """``baseline`` or ``candidate`` for this request (the force header first)."""
        if self.key_header is not None:
            # PERF: one pass over the headers for the force header and the key (the common
            # case, measured in bench/rollout_cost.py); the first of repeated names counts.
            forced = value = None
            wanted, force = self.key_header, self.force
            for name, header_value in state.headers:
                if name == wanted:
                    if value is None:
                        value = header_value
                elif force and name == FORCE_HEADER and forced is None:
                    forced = header_value
            if forced is not None:
                forced = forced.strip().lower()
                if forced in VARIANTS:
                    return forced
        else:
            if self.force:
                forced = _forced(state)
                if forced is not None:
                    return forced
            value = self.read_key(state)
        if value is None:
            value = state.remote_addr  # NOTE: requests without the key are bucketed by address
        # PERF: a key's bucket never changes within a rollout step: remember it (bounded)
        chosen = self._on_candidate.get(value)
        if chosen is None:
            chosen = bucket(self.salt, value) < self.threshold
            if len(self._on_candidate) >= KEY_CACHE_SIZE:
                self._on_candidate.clear()
            self._on_candidate[value] = chosen
        return "candidate" if chosen else "baseline"

    def call_request(self, state: RequestState, _clock=time.perf_counter, _index=bisect.bisect_left) -> Action:
        # PERF: the clock and bisect bound as defaults (local lookups, bench/rollout_cost.py)
        variant = self.variant(state)
        variants = state.variants
        if variants is None:
            variants = state.variants = {}
        variants[self.name] = (self, variant)
        stage = self.candidate if variant == "candidate" else self.baseline
        tally = self.tallies[variant]
        tally.requests += 1
        # NOTE: a call that must first make an instance (a cold start: milliseconds) stays out
        # of the latency histogram: a young candidate, whose share of cold starts is the
        # larger, would otherwise fail the latency gate on its own start-up
        warm = stage.idle_instances > 0
        started = _clock()
        try:
            return stage.call_request(state)
        except STAGE_FAILURES:
            tally.failures += 1
            raise
        finally:
            if warm:
                tally.latency[_index(LATENCY_BUCKETS, _clock() - started)] += 1

    def call_response(self, state: RequestState, response: ResponseState) -> ResponseAction:
        stage = self._chosen(state)
        if not stage.has_on_response:
            return UNCHANGED
        try:
            return stage.call_response(state, response)
        except STAGE_FAILURES:
            self.tallies[state.variants[self.name][1]].failures += 1
            raise

    def failed(self, err: Exception, phase: str, state: RequestState | None = None) -> bool:
        return self._chosen(state).failed(err, phase, state)

    def responded(self, variant: str, status: int) -> None:
        """The request's final status (the web layer calls it for every routed request)."""
        if status >= 500:
            self.tallies[variant].errors += 1

    def _chosen(self, state: RequestState | None) -> Stage:
        chosen = state.variants.get(self.name) if state is not None and state.variants else None
        return self.candidate if chosen is not None and chosen[1] == "candidate" else self.baseline

    def close(self) -> None:
        self.baseline.close()
        self.candidate.close()


def _forced(state: RequestState) -> str | None:
    for name, value in state.headers:
        if name == FORCE_HEADER:
            value = value.strip().lower()
            return value if value in VARIANTS else None
    return None
