"""The rollout decider: one decision-maker per host, from every worker's counts.

Every worker runs a ``Decider`` thread; the one holding an exclusive flock on
``<data_dir>/rollouts/decider.lock`` decides, the others try again every LOCK_RETRY_S, so the
role moves when its worker dies (the kernel drops a dead process's lock). Every DECIDE_S the
holder merges the counts of each running canary's current step (host/watch/counts.py) and
``judge``s them; a verdict is one manifest generation (``source="rollout"``), recorded as a
StepResult and audited (who = ``rollout``) with its reason. Shadows are never judged: they
never promote themselves. The rules are in docs/rollouts.md, "Gates and decisions".
"""

from __future__ import annotations

import logging
import os
import pathlib
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from ..errors import HostError
from ..metrics import METRICS
from ..registry import Manifest, ManifestStore, transitions
from ..registry.audit import AuditLog
from ..registry.files import try_role_lock
from ..registry.rollout import Rollout, RolloutError, StepResult
from .counts import active_keys, host_tallies, merged, remove_stale, step_key

logger = logging.getLogger("mwhost.rollout")

#: how often the decider judges every running canary
DECIDE_S = 0.5
#: how often a worker that is not the decider tries to become it
LOCK_RETRY_S = 1.0
#: abort fast (before step_s) only with at least this many candidate requests...
ABORT_MIN_REQUESTS = 20
#: ...and at least this many candidate failures (or 5xx) over the gate
ABORT_MIN_FAILURES = 5
#: a p99 of fewer calls is its largest call: the latency gate waits for this many per variant
LATENCY_MIN_CALLS = 100
#: the latency gate judges only a candidate p99 at least this much slower than the baseline's:
#: sub-millisecond p99s move by multiples with a GC pause or a busy core (noise, not a regression)
LATENCY_MIN_EXCESS_MS = 1.0
#: a step's baseline with fewer requests (the 100% step) is compared over the whole rollout
BASELINE_MIN_REQUESTS = 20

WHO = "rollout"


class FleetRole(Protocol):
    """A fleet host's side of the fleet's one decider (host/fleet/rollouts.py)."""

    def push(self, tallies: Mapping[str, Mapping[str, Any]]) -> None: ...
    def hold(self) -> bool: ...
    def others(self, key: str) -> list[Mapping[str, Any]]: ...
JUDGED_STATES = ("running", "waiting")


@dataclass(frozen=True)
class Verdict:
    """What the decider does with a rollout now: ``outcome`` is advanced, aborted, waiting,
    or "" (nothing yet); ``reason`` says why, for the manifest, the audit log and operators."""

    outcome: str
    reason: str = ""


NOTHING = Verdict("")


def judge(rollout: Rollout, counts: Mapping[str, Mapping[str, Any]], now: float) -> Verdict:
    """The verdict on ``rollout``'s current step from its merged ``counts`` (pure)."""
    where = f"step {rollout.step + 1} of {len(rollout.steps)} ({rollout.steps[rollout.step]}%)"
    candidate, baseline = counts["candidate"], _baseline_reference(rollout, counts["baseline"])
    breach = clear_breach(rollout, candidate, baseline)
    if breach:
        return Verdict("aborted", f"{where}: {breach}, aborted before the end of the step")
    elapsed = now - rollout.step_started_at
    if elapsed < rollout.step_s:
        return NOTHING
    needed = rollout.gates.min_requests
    if candidate["requests"] < needed:
        if rollout.state == "waiting":
            return NOTHING  # said once; the step advances or aborts when traffic comes
        return Verdict("waiting", f"{where} waits for traffic: {candidate['requests']} of {needed} "
                                  f"candidate requests after {elapsed:.0f} s (it never advances "
                                  "or aborts for lack of data)")
    failed = failing_gates(rollout, candidate, baseline)
    if failed:
        return Verdict("aborted", f"{where} failed: {'; '.join(failed)}")
    return Verdict("advanced", f"{where} passed: {_summary(candidate, baseline)}")


def clear_breach(rollout: Rollout, candidate: Mapping[str, Any], baseline: Mapping[str, Any]) -> str:
    """Why the candidate is clearly over a count gate already ("" when it is not): at least
    ABORT_MIN_REQUESTS candidate requests and ABORT_MIN_FAILURES failures (or 5xx) over it."""
    if candidate["requests"] < ABORT_MIN_REQUESTS:
        return ""
    gates = rollout.gates
    if candidate["failures"] >= ABORT_MIN_FAILURES and candidate["failure_rate"] > gates.max_failure_rate:
        return _failure_text(candidate, gates.max_failure_rate)
    delta = candidate["error_rate"] - baseline["error_rate"]
    if candidate["errors"] >= ABORT_MIN_FAILURES and delta > gates.max_error_rate_delta:
        return _error_text(candidate, baseline, gates.max_error_rate_delta)
    return ""


def failing_gates(rollout: Rollout, candidate: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[str]:
    """Every gate the candidate fails at the end of a step (with its numbers)."""
    gates, failed = rollout.gates, []
    if candidate["failure_rate"] > gates.max_failure_rate:
        failed.append(_failure_text(candidate, gates.max_failure_rate))
    if candidate["error_rate"] - baseline["error_rate"] > gates.max_error_rate_delta:
        failed.append(_error_text(candidate, baseline, gates.max_error_rate_delta))
    ratio = latency_ratio(candidate, baseline)
    if ratio is not None and ratio > gates.max_latency_ratio \
            and candidate["p99_ms"] - baseline["p99_ms"] >= LATENCY_MIN_EXCESS_MS:
        failed.append(f"candidate p99 {candidate['p99_ms']} ms is {ratio:.2f}x the baseline's "
                      f"{baseline['p99_ms']} ms (gate {gates.max_latency_ratio}x)")
    return failed


def latency_ratio(candidate: Mapping[str, Any], baseline: Mapping[str, Any]) -> float | None:
    """Candidate p99 over baseline p99, when both have LATENCY_MIN_CALLS calls (else None)."""
    if min(candidate.get("latency_calls", 0), baseline.get("latency_calls", 0)) < LATENCY_MIN_CALLS:
        return None
    if not candidate["p99_ms"] or not baseline["p99_ms"]:
        return None
    return candidate["p99_ms"] / baseline["p99_ms"]


def _baseline_reference(rollout: Rollout, baseline: Mapping[str, Any]) -> Mapping[str, Any]:
    """The baseline the 5xx gate compares with: this step's, or (when this step has too few
    baseline requests, as at 100%) the baseline's counts over the whole rollout so far."""
    if baseline["requests"] >= BASELINE_MIN_REQUESTS:
        return baseline
    requests, errors = baseline["requests"], baseline["errors"]
    for result in rollout.results:
        earlier = result.counts.get("baseline") or {}
        requests += int(earlier.get("requests", 0))
        errors += int(earlier.get("errors", 0))
    return {**baseline, "requests": requests, "errors": errors,
            "error_rate": errors / requests if requests else 0.0}


def _failure_text(candidate: Mapping[str, Any], gate: float) -> str:
    return (f"candidate failure rate {candidate['failure_rate']:.4f} ({candidate['failures']} of "
            f"{candidate['requests']}) is over {gate}")


def _error_text(candidate: Mapping[str, Any], baseline: Mapping[str, Any], gate: float) -> str:
    return (f"candidate 5xx rate {candidate['error_rate']:.4f} ({candidate['errors']} of "
            f"{candidate['requests']}) is more than {gate} over the baseline's {baseline['error_rate']:.4f}")


def _summary(candidate: Mapping[str, Any], baseline: Mapping[str, Any]) -> str:
    ratio = latency_ratio(candidate, baseline)
    latency = f"p99 ratio {ratio:.2f}" if ratio is not None else \
        f"p99 not judged (fewer than {LATENCY_MIN_CALLS} calls per variant)"
    return (f"{candidate['requests']} candidate requests, failure rate {candidate['failure_rate']:.4f}, "
            f"5xx rate {candidate['error_rate']:.4f} vs baseline {baseline['error_rate']:.4f}, {latency}")


def result_counts(counts: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """What a StepResult keeps of the merged counts (no histogram)."""
    fields = ("requests", "failures", "errors", "failure_rate", "error_rate", "p99_ms")
    return {variant: {field: values.get(field) for field in fields} for variant, values in counts.items()}


class Decider:
    """One worker's bid for the decider role, and the decisions while it holds it."""

    def __init__(self, data_dir: pathlib.Path, manifests: ManifestStore, stop: threading.Event,
                 audit: AuditLog | None = None, clock: Callable[[], float] = time.time,
                 fleet: FleetRole | None = None) -> None:
        #: a fleet host's part in the fleet's one decider (docs/fleet.md); None on its own
        self.fleet = fleet
        self.data_dir = data_dir
        self.manifests = manifests
        self.stop = stop
        self.audit = audit or AuditLog(data_dir / "audit.log")
        self.clock = clock
        self.lock_path = data_dir / "rollouts" / "decider.lock"
        self._lock_file = None
        self._warned = False

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="mwhost-rollout-decider", daemon=True)
        thread.start()
        return thread

    @property
    def holding(self) -> bool:
        return self._lock_file is not None

    def try_acquire(self) -> bool:
        """Become the host's decider if no other process is (never blocks)."""
        if self._lock_file is not None:
            return True
        try:
            lock = try_role_lock(self.lock_path)
        except OSError as err:
            if not self._warned:  # once, not every LOCK_RETRY_S (e.g. a read-only data dir)
                logger.warning("cannot open the decider lock %s: %s", self.lock_path, err)
                self._warned = True
            return False
        if lock is None:
            return False
        self._lock_file = lock
        logger.info("pid %d decides the rollouts of this host", os.getpid())
        return True

    def release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing drops the flock
            self._lock_file = None

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                if not self.try_acquire():
                    self.stop.wait(LOCK_RETRY_S)
                    continue
                if self.fleet is not None and not self._fleet_turn():
                    self.stop.wait(DECIDE_S)
                    continue
                try:
                    self.decide_once()
                except Exception:  # noqa: BLE001 - the decider must outlive any one bad round
                    logger.exception("deciding the rollouts failed")
                self.stop.wait(DECIDE_S)
        finally:
            self.release()

    def decide_once(self) -> dict[str, str]:
        """Judge every running canary once; apply the verdicts and return, per stage, the
        outcome written (advanced, promoted, aborted, waiting)."""
        manifest = self.manifests.read_good()
        if manifest is None:
            return {}
        remove_stale(self.data_dir, manifest)
        outcomes = {}
        for name, rollout in manifest.rollouts.items():
            if rollout.kind != "canary" or rollout.state not in JUDGED_STATES:
                continue
            key = step_key(rollout)
            counts = merged(self.data_dir, key, *(self.fleet.others(key) if self.fleet is not None else ()))
            verdict = judge(rollout, counts, self.clock())
            outcome = self.apply(name, rollout, verdict, counts) if verdict.outcome else ""
            if outcome:
                outcomes[name] = outcome
        return outcomes

    def _fleet_turn(self) -> bool:
        """A fleet host's decider: hand this host's counts to the fleet, then whether it holds
        (or just took) the fleet's decider lock. Redis down: no verdicts anywhere; the
        rollouts hold their share until it is back."""
        manifest = self.manifests.read_good()
        try:
            self.fleet.push({key: host_tallies(self.data_dir, key) for key in active_keys(manifest)})
            return self.fleet.hold()
        except HostError as err:
            logger.warning("no rollout decisions while the fleet store is unreachable: %s", err)
            return False

    def apply(self, name: str, rollout: Rollout, verdict: Verdict, counts: Mapping[str, Any]) -> str:
        """Write ``verdict`` as the next manifest generation and return its outcome, unless
        the rollout moved meanwhile (an operator paused, aborted or promoted it): then
        nothing is written ("")."""
        last = rollout.step + 1 == len(rollout.steps)
        outcome = "promoted" if verdict.outcome == "advanced" and last else verdict.outcome
        result = StepResult(step=rollout.step, percent=rollout.steps[rollout.step], outcome=outcome,
                            reason=verdict.reason, counts=result_counts(counts), at=self.clock())

        def change(manifest: Manifest) -> Manifest:
            current = manifest.active_rollout(name)
            if current is None or current.state not in JUDGED_STATES or step_key(current) != step_key(rollout):
                raise RolloutError(f"the rollout of stage {name!r} changed meanwhile")
            if verdict.outcome == "advanced":
                return transitions.advanced(manifest, name, result)
            if verdict.outcome == "aborted":
                return transitions.aborted(manifest, name, verdict.reason, result)
            return transitions.waiting(manifest, name, verdict.reason)

        try:
            written = self.manifests.update(change, source="rollout")
        except RolloutError as err:
            logger.info("no verdict written: %s", err)
            return ""
        except HostError as err:
            logger.error("cannot write the verdict on stage %s (%s): %s", name, verdict.reason, err)
            return ""
        METRICS.rollout_transition(name, outcome)
        self.audit.record(WHO, f"rollout {outcome}", name, "ok", 200, sha256=rollout.candidate_sha256,
                          generation=written.generation, step=rollout.step, detail=verdict.reason)
        logger.info("rollout of stage %s %s (generation %d): %s", name, outcome, written.generation, verdict.reason)
        return outcome
