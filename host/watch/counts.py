"""Rollout counts across the workers of one host: each writes its tallies, the decider merges.

Every worker writes ``TALLIES.snapshot()`` (and ``TALLIES.shadow``) to
``<data_dir>/rollouts/counts/<pid>.json`` every FLUSH_S (an atomic rename: a reader never
sees half a file) and drops the tallies of steps no manifest rollout is on any more.
``merged(data_dir, count_key)`` sums every file, so a dead worker's counts still count until
its rollout ends; then its file is removed (``remove_stale``). Tallies are totals since the
step began (never reset), so a file rewritten twice is never counted twice. docs/rollouts.md.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import pathlib
import threading
import time
from typing import Any, Iterator, Mapping

from ..metrics import METRICS
from ..pipeline.rollout_stage import LATENCY_BUCKETS, TALLIES, VARIANTS, count_key
from ..registry import Manifest, ManifestStore
from ..registry.files import pid_alive, write_atomic
from ..registry.rollout import Rollout

logger = logging.getLogger("mwhost.rollout")

#: how often each worker writes its counts
FLUSH_S = 1.0
#: how many shadow differences a rollout shows (newest first)
SHADOW_DIFFERENCES = 20


def counts_dir(data_dir: pathlib.Path) -> pathlib.Path:
    return data_dir / "rollouts" / "counts"


def step_key(rollout: Rollout) -> str:
    """The count key of a rollout's current step."""
    return count_key(rollout.id, rollout.step, rollout.step_started_at)


def active_keys(manifest: Manifest | None) -> set[str]:
    """The count keys of every active rollout's current step."""
    if manifest is None:
        return set()
    return {step_key(rollout) for rollout in manifest.rollouts.values() if rollout.active}


# ---- writing (every worker) -------------------------------------------------------------


def write_counts(data_dir: pathlib.Path, pid: int | None = None) -> pathlib.Path:
    """Write this process's tallies to its counts file."""
    path = counts_dir(data_dir) / f"{pid or os.getpid()}.json"
    body = {"pid": pid or os.getpid(), "at": time.time(), "tallies": TALLIES.snapshot(),
            "shadow": dict(TALLIES.shadow)}
    write_atomic(path, json.dumps(body, default=_plain).encode())
    return path


def _plain(value: Any) -> Any:
    """JSON for what a shadow result may hold (dataclasses, tuples, sets)."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def forget_ended(manifest: Manifest | None) -> None:
    """Drop this process's tallies (and shadow results) of steps no rollout is on any more."""
    if manifest is None:
        return
    held = [*TALLIES.snapshot(), *list(TALLIES.shadow)]
    keep = {key for key in held if not is_stale(key, manifest)}
    TALLIES.forget(keep)
    for key in [key for key in list(TALLIES.shadow) if key not in keep]:
        TALLIES.shadow.pop(key, None)


def is_stale(key: str, manifest: Manifest) -> bool:
    """Whether count ``key`` belongs to a step that is over in ``manifest``: its rollout ended,
    or a later step (or a resume) began. NOTE: ``manifest`` may be older than the pipeline
    this worker already serves (read just before a swap): a key of a step or rollout that
    began after it was written is kept, never dropped while it is being counted."""
    rollout_id, _, rest = key.partition("/")
    try:
        started = float(rest.rpartition("/")[2])
    except ValueError:
        return True
    for rollout in manifest.rollouts.values():
        if rollout.id == rollout_id:
            return not rollout.active or started < round(rollout.step_started_at, 3)
    return started < manifest.written_at


def publish_percents(manifest: Manifest | None) -> None:
    """``mwhost_rollout_percent{stage}``: each stage's candidate share (0 without a rollout)."""
    if manifest is None:
        return
    names = {entry.name for entry in manifest.stages} | set(manifest.rollouts)
    for name in names:
        rollout = manifest.rollouts.get(name)
        METRICS.rollout_percent(name, rollout.candidate_percent if rollout is not None else 0)


class CountsFlusher:
    """The thread that writes a worker's counts every FLUSH_S until ``stop`` is set."""

    def __init__(self, data_dir: pathlib.Path, manifests: ManifestStore, stop: threading.Event) -> None:
        self.data_dir = data_dir
        self.manifests = manifests
        self.stop = stop

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="mwhost-rollout-counts", daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        while not self.stop.wait(FLUSH_S):
            self.flush_once()

    def flush_once(self) -> None:
        """One round; never raises (a full disk costs fresh counts, logged, not the worker)."""
        try:
            manifest = self.manifests.read_good()
            forget_ended(manifest)
            publish_percents(manifest)
            write_counts(self.data_dir)
        except Exception as err:  # noqa: BLE001 - counting must never take a worker down
            logger.warning("cannot write the rollout counts of pid %d: %s", os.getpid(), err)


# ---- reading (the decider, the admin API) -----------------------------------------------


def _count_files(data_dir: pathlib.Path) -> Iterator[tuple[pathlib.Path, dict[str, Any]]]:
    try:
        paths = sorted(counts_dir(data_dir).glob("*.json"))
    except OSError:
        return
    for path in paths:
        try:
            body = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue  # removed meanwhile, or not ours: the next round reads it again
        if isinstance(body, dict):
            yield path, body


def merged(data_dir: pathlib.Path, key: str, *more: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every worker's counts of step ``key``, per variant: requests, failures, errors (5xx),
    failure_rate, error_rate, p99_ms (None without calls) and the merged latency histogram.
    ``more``: other hosts' ``host_tallies`` of the step (a fleet's decider, docs/fleet.md)."""
    totals = {variant: {"requests": 0, "failures": 0, "errors": 0, "latency": [0] * (len(LATENCY_BUCKETS) + 1)}
              for variant in VARIANTS}
    for step in [host_tallies(data_dir, key), *more]:
        for variant, total in totals.items():
            _add(total, step.get(variant) or {})
    return {variant: _summary(total) for variant, total in totals.items()}


def host_tallies(data_dir: pathlib.Path, key: str) -> dict[str, dict[str, Any]]:
    """This host's tallies of step ``key`` summed over its workers, per variant, in the
    workers' own shape (what a fleet host hands the fleet's decider)."""
    totals: dict[str, dict[str, Any]] = {variant: {"requests": 0, "failures": 0, "errors": 0, "latency": {}}
                                         for variant in VARIANTS}
    for _, body in _count_files(data_dir):
        step = body.get("tallies", {}).get(key, {})
        for variant, total in totals.items():
            tally = step.get(variant) or {}
            for field in ("requests", "failures", "errors"):
                total[field] += int(tally.get(field, 0))
            for index, count in (tally.get("latency") or {}).items():
                total["latency"][str(index)] = total["latency"].get(str(index), 0) + int(count)
    return totals


def _add(total: dict[str, Any], tally: dict[str, Any]) -> None:
    for field in ("requests", "failures", "errors"):
        total[field] += int(tally.get(field, 0))
    for index, count in (tally.get("latency") or {}).items():
        if 0 <= int(index) < len(total["latency"]):
            total["latency"][int(index)] += int(count)


def _summary(total: dict[str, Any]) -> dict[str, Any]:
    requests = total["requests"]
    return {
        "requests": requests, "failures": total["failures"], "errors": total["errors"],
        "failure_rate": total["failures"] / requests if requests else 0.0,
        "error_rate": total["errors"] / requests if requests else 0.0,
        "p99_ms": p99_ms(total["latency"]),
        "latency_calls": sum(total["latency"]),
        "latency": {str(i): n for i, n in enumerate(total["latency"]) if n},
    }


def p99_ms(histogram: list[int]) -> float | None:
    """The 99th percentile stage-call time in ms: the upper bound of the bucket holding it
    (buckets are 20% apart, so within 20% of the true value); None without calls."""
    calls = sum(histogram)
    if not calls:
        return None
    cumulative = 0
    for index, count in enumerate(histogram):
        cumulative += count
        if cumulative >= 0.99 * calls:
            return round(LATENCY_BUCKETS[min(index, len(LATENCY_BUCKETS) - 1)] * 1000, 4)
    return round(LATENCY_BUCKETS[-1] * 1000, 4)


def merged_shadow(data_dir: pathlib.Path, key: str) -> dict[str, Any]:
    """Every worker's shadow results of ``key``: same / different / failed / dropped counts
    summed and the last SHADOW_DIFFERENCES differences, newest first (by their ``at``)."""
    result: dict[str, Any] = {"same": 0, "different": 0, "failed": 0, "dropped": 0}
    differences: list[dict[str, Any]] = []
    for _, body in _count_files(data_dir):
        shadow = (body.get("shadow") or {}).get(key)
        if not isinstance(shadow, dict):
            continue
        for field in ("same", "different", "failed", "dropped"):
            result[field] += int(shadow.get(field, 0) or 0)
        differences += [d for d in shadow.get("differences", ()) if isinstance(d, dict)]
    differences.sort(key=lambda difference: float(difference.get("at", 0) or 0), reverse=True)
    result["differences"] = differences[:SHADOW_DIFFERENCES]
    return result


def remove_stale(data_dir: pathlib.Path, manifest: Manifest | None) -> list[pathlib.Path]:
    """Remove the counts files of dead workers that hold no active rollout's counts."""
    active_ids = {rollout.id for rollout in manifest.rollouts.values() if rollout.active} if manifest else set()
    removed = []
    for path, body in _count_files(data_dir):
        pid = body.get("pid")
        if not isinstance(pid, int) or pid_alive(pid):
            continue
        keys = [*body.get("tallies", {}), *(body.get("shadow") or {})]
        if not any(key.split("/", 1)[0] in active_ids for key in keys):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed

