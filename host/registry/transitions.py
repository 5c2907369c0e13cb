"""Rollout transitions: pure ``Manifest -> Manifest`` functions, run under the manifest lock
by the decider and the admin API. Each ends in exactly one consistent state: never a
candidate without its rollout, never a promoted rollout whose stage is not the candidate."""

from __future__ import annotations

import dataclasses
import time

from .manifest import KEEP_VERSIONS, Manifest, StageEntry
from .rollout import Rollout, RolloutError, StepResult


def _rollouts(manifest: Manifest, name: str, rollout: Rollout) -> Manifest:
    return dataclasses.replace(manifest, rollouts={**manifest.rollouts, name: rollout})


def _active(manifest: Manifest, name: str) -> Rollout:
    rollout = manifest.active_rollout(name)
    if rollout is None:
        raise RolloutError(f"stage {name!r} has no active rollout")
    return rollout


def started(manifest: Manifest, name: str, rollout: Rollout) -> Manifest:
    """``rollout`` begins on stage ``name`` (which must exist and have no active rollout)."""
    if manifest.stage(name) is None:
        raise RolloutError(f"there is no stage {name!r} to roll out a candidate of")
    if manifest.active_rollout(name) is not None:
        raise RolloutError(f"stage {name!r} already has an active rollout")
    return _rollouts(manifest, name, rollout)


def advanced(manifest: Manifest, name: str, result: StepResult) -> Manifest:
    """The current step passed: on to the next one (the last one passing promotes)."""
    rollout = _active(manifest, name)
    if rollout.step + 1 >= len(rollout.steps):
        return promoted(manifest, name, result.reason, result)
    now = time.time()
    moved = dataclasses.replace(rollout, step=rollout.step + 1, step_started_at=now, state="running",
                                reason=result.reason, results=(*rollout.results, result))
    return _rollouts(manifest, name, moved)


def promoted(manifest: Manifest, name: str, reason: str, result: StepResult | None = None,
             keep: int = KEEP_VERSIONS) -> Manifest:
    """The candidate becomes the active version; the baseline is kept as the rollback target."""
    rollout = _active(manifest, name)
    candidate = StageEntry.from_json(dict(rollout.candidate))
    stages = [candidate if entry.name == name else entry for entry in manifest.stages]
    results = (*rollout.results, result) if result else rollout.results
    ended = rollout.with_state("promoted", reason, results=results)
    return _rollouts(manifest.with_stages(stages, keep), name, ended)


def aborted(manifest: Manifest, name: str, reason: str, result: StepResult | None = None,
            keep: int = KEEP_VERSIONS) -> Manifest:
    """The candidate leaves the traffic (0% everywhere), kept as a version; the baseline stays."""
    rollout = _active(manifest, name)
    candidate = StageEntry.from_json(dict(rollout.candidate))
    kept = [e for e in manifest.versions.get(name, ()) if e.sha256 != candidate.sha256]
    versions = {**manifest.versions, name: tuple((kept + [candidate])[-keep:])}
    results = (*rollout.results, result) if result else rollout.results
    ended = rollout.with_state("aborted", reason, results=results)
    return _rollouts(dataclasses.replace(manifest, versions=versions), name, ended)


def paused(manifest: Manifest, name: str, reason: str) -> Manifest:
    """Hold the current share: no verdicts until resumed."""
    return _rollouts(manifest, name, _active(manifest, name).with_state("paused", reason))


def resumed(manifest: Manifest, name: str, reason: str) -> Manifest:
    """Back to judging; the current step starts over (its time and its counts)."""
    rollout = _active(manifest, name)
    if rollout.state != "paused":
        raise RolloutError(f"the rollout of stage {name!r} is {rollout.state}, not paused")
    return _rollouts(manifest, name, dataclasses.replace(
        rollout.with_state("running", reason), step_started_at=time.time()))


def waiting(manifest: Manifest, name: str, reason: str) -> Manifest:
    """The step's time is up but its traffic is not: say so (it never aborts for lack of data)."""
    return _rollouts(manifest, name, _active(manifest, name).with_state("waiting", reason))


def end_if_active(manifest: Manifest, name: str, reason: str) -> Manifest:
    """Before an upload, rollback or removal of a stage: end its rollout first (aborted)."""
    if manifest.active_rollout(name) is None:
        return manifest
    return aborted(manifest, name, reason)
