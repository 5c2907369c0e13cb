"""The manifest changes admin calls make: pure functions ``Manifest -> Manifest``.

Each runs inside ``ManifestStore.update``, under the manifest lock, on the latest manifest,
so concurrent admin calls (in any worker) never lose each other's writes. Each raises an
``AdminError`` to abort, and then nothing is written.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from ..errors import AdminBadRequest, AdminConflict, AdminNotFound
from ..registry import Manifest, StageEntry, transitions
from ..registry.rollout import Rollout, RolloutError

#: a rollback target may be named by a unique sha256 prefix this long or longer
MIN_SHA_PREFIX = 7


class Unchanged(Exception):
    """The change would write what is already there: abort the write, answer with the current state."""


def history(manifest: Manifest, name: str) -> list[tuple[StageEntry, bool]]:
    """The versions of stage ``name``, newest first, each with whether it is the active one."""
    active = manifest.stage(name)
    kept = [e for e in reversed(manifest.versions.get(name, ())) if active is None or e.sha256 != active.sha256]
    versions = ([(active, True)] if active else []) + [(e, False) for e in kept]
    if not versions:
        raise AdminNotFound(f"there is no stage {name!r} (stages: {_names(manifest)})", stage=name)
    return versions


def placed(manifest: Manifest, entry: StageEntry, position: int | None, keep: int) -> Manifest:
    """``entry`` as stage ``entry.name``: at ``position``, else where that stage was, else last."""
    stages = list(manifest.stages)
    index = next((i for i, e in enumerate(stages) if e.name == entry.name), None)
    if index is not None:
        stages.pop(index)
    check_position(position, len(stages), entry.name)
    if position is None:
        position = index if index is not None else len(stages)
    stages.insert(position, entry)
    if tuple(stages) == manifest.stages:
        raise Unchanged()
    return manifest.with_stages(stages, keep)


def check_position(position: int | None, others: int, name: str) -> None:
    if position is not None and not 0 <= position <= others:
        raise AdminBadRequest(f"position {position} is out of range: besides {name!r} the pipeline has "
                              f"{others} stage(s), so the position must be 0..{others}",
                              parameter="position")


def rolled_back(manifest: Manifest, name: str, sha256: str | None, keep: int) -> Manifest:
    """Stage ``name`` back at its newest earlier version, or at the kept version ``sha256``
    (a unique prefix will do). A removed stage comes back at the place it was removed from
    (last when the pipeline has fewer stages now)."""
    target = rollback_target(manifest, name, sha256)
    stages = list(manifest.stages)
    index = next((i for i, e in enumerate(stages) if e.name == name), None)
    if index is None:
        stages.insert(min(manifest.removed_from.get(name, len(stages)), len(stages)), target)
    else:
        stages[index] = target
    return manifest.with_stages(stages, keep)


def rollback_target(manifest: Manifest, name: str, sha256: str | None) -> StageEntry:
    versions = history(manifest, name)
    earlier = [entry for entry, active in versions if not active]
    if sha256 is None:
        if not earlier:
            raise AdminConflict(f"stage {name!r} has no earlier version to roll back to", stage=name)
        return earlier[0]
    sha256 = sha256.lower()
    if len(sha256) < MIN_SHA_PREFIX or any(c not in "0123456789abcdef" for c in sha256):
        raise AdminBadRequest(f"sha256 {sha256!r} must be hex digits, at least {MIN_SHA_PREFIX} of them",
                              parameter="sha256")
    matches = [entry for entry, _ in versions if entry.sha256.startswith(sha256)]
    if not matches:
        kept = ", ".join(entry.sha256[:12] for entry, _ in versions)
        raise AdminNotFound(f"stage {name!r} has no kept version {sha256} (kept: {kept})", stage=name)
    if len(matches) > 1:
        raise AdminBadRequest(f"sha256 prefix {sha256!r} matches {len(matches)} versions; give more digits",
                              parameter="sha256")
    if any(active and entry is matches[0] for entry, active in versions):
        raise AdminConflict(f"version {sha256} of stage {name!r} is already the active one", stage=name)
    return matches[0]


def removed(manifest: Manifest, name: str, keep: int) -> Manifest:
    """The pipeline without stage ``name`` (its version and its place stay kept for a rollback)."""
    if manifest.stage(name) is None:
        raise AdminNotFound(f"there is no stage {name!r} in the pipeline (stages: {_names(manifest)})", stage=name)
    place = next(i for i, e in enumerate(manifest.stages) if e.name == name)
    without = manifest.with_stages([e for e in manifest.stages if e.name != name], keep)
    return dataclasses.replace(without, removed_from={**without.removed_from, name: place})


def reordered(manifest: Manifest, order: list[str]) -> Manifest:
    """The same stages in ``order``, which must name every current stage once."""
    current = [e.name for e in manifest.stages]
    if sorted(order) != sorted(current) or len(set(order)) != len(order):
        raise AdminConflict(f"the order must name each current stage once: {current}, got {order}")
    if order == current:
        raise Unchanged()
    by_name = {e.name: e for e in manifest.stages}
    return manifest.with_stages([by_name[name] for name in order])


def _names(manifest: Manifest) -> str:
    return ", ".join(e.name for e in manifest.stages) or "none"


# ---- rollouts (host/registry/transitions.py holds the transitions themselves) ---------------

#: an operator control -> (the transition, its past tense for the reason)
CONTROLS: dict[str, tuple[Callable[[Manifest, str, str], Manifest], str]] = {
    "promote": (transitions.promoted, "promoted"),
    "abort": (transitions.aborted, "aborted"),
    "pause": (transitions.paused, "paused"),
    "resume": (transitions.resumed, "resumed"),
}


def latest_rollout(manifest: Manifest, name: str) -> Rollout:
    """Stage ``name``'s latest rollout (active or ended); 404 when it never had one."""
    rollout = manifest.rollouts.get(name)
    if rollout is None:
        where = "" if manifest.stage(name) else f" (there is no stage {name!r}; stages: {_names(manifest)})"
        raise AdminNotFound(f"stage {name!r} has never had a rollout{where}", stage=name)
    return rollout


def check_can_start(manifest: Manifest, name: str) -> StageEntry:
    """The baseline of a new rollout of ``name``: 404 without that stage, 409 while one is active."""
    baseline = manifest.stage(name)
    if baseline is None:
        raise AdminNotFound(f"there is no stage {name!r} to roll out a candidate of (stages: {_names(manifest)}); "
                            "upload it first", stage=name)
    active = manifest.active_rollout(name)
    if active is not None:
        raise AdminConflict(f"stage {name!r} already has a {active.kind} rollout ({active.state}, candidate "
                            f"{active.candidate_sha256[:12]}); promote or abort it first", stage=name)
    return baseline


def rollout_started(manifest: Manifest, name: str, rollout: Rollout) -> Manifest:
    """``rollout`` begins on ``name``, if the baseline it was checked against is still active."""
    baseline = check_can_start(manifest, name)
    if baseline.sha256 != rollout.baseline:
        raise AdminConflict(f"stage {name!r} changed to {baseline.sha256[:12]} while the candidate was being "
                            "checked; start the rollout again", stage=name)
    return transitions.started(manifest, name, rollout)


def rollout_controlled(manifest: Manifest, name: str, action: str, reason: str) -> Manifest:
    """An operator's ``action`` (promote, abort, pause, resume) on ``name``'s active rollout;
    409 when it does not apply (an ended rollout, a pause of a paused one, a resume of a running one)."""
    rollout = latest_rollout(manifest, name)
    if not rollout.active:
        raise AdminConflict(f"the rollout of stage {name!r} has ended ({rollout.state}: {rollout.reason}); "
                            f"there is nothing to {action}", stage=name)
    if action == "pause" and rollout.state == "paused":
        raise AdminConflict(f"the rollout of stage {name!r} is paused already ({rollout.reason})", stage=name)
    transition, _ = CONTROLS[action]
    try:
        return transition(manifest, name, reason)
    except RolloutError as err:
        raise AdminConflict(str(err), stage=name) from err


def ending_rollout(manifest: Manifest, name: str, reason: str,
                   change: Callable[[Manifest], Manifest]) -> Manifest:
    """``change`` (an upload, rollback or removal of ``name``) after ending its active rollout,
    in the same manifest write: never a candidate beside a baseline that is no longer active."""
    ended = transitions.end_if_active(manifest, name, reason)
    try:
        return change(ended)
    except Unchanged:
        if ended is manifest:
            raise
        return ended  # the same version again: the write still ends the rollout
