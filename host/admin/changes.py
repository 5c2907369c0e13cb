"""The manifest changes admin calls make: pure functions ``Manifest -> Manifest``.

Each runs inside ``ManifestStore.update``, under the manifest lock, on the latest manifest,
so concurrent admin calls (in any worker) never lose each other's writes. Each raises an
``AdminError`` to abort, and then nothing is written.
"""

from __future__ import annotations

from ..errors import AdminBadRequest, AdminConflict, AdminNotFound
from ..registry import Manifest, StageEntry

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
    (a unique prefix will do). A removed stage comes back, last in the pipeline."""
    target = rollback_target(manifest, name, sha256)
    stages = list(manifest.stages)
    index = next((i for i, e in enumerate(stages) if e.name == name), None)
    if index is None:
        stages.append(target)
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
    """The pipeline without stage ``name`` (its version stays kept for a rollback)."""
    if manifest.stage(name) is None:
        raise AdminNotFound(f"there is no stage {name!r} in the pipeline (stages: {_names(manifest)})", stage=name)
    return manifest.with_stages([e for e in manifest.stages if e.name != name], keep)


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
