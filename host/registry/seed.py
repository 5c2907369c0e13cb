"""Seed the manifest from the static config (``mwhost.toml``) at start."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from .manifest import Manifest, StageEntry
from .transitions import end_if_active


def entries_digest(entries: list[StageEntry]) -> str:
    return hashlib.sha256(json.dumps([e.to_json() for e in entries], sort_keys=True).encode()).hexdigest()


def reseeded(manifest: Manifest, entries: list[StageEntry]) -> Manifest | None:
    """``manifest`` with the config's stages, or None when it already holds this config.

    Changes made at run time (admin uploads, the drop folder) survive a restart with the same
    config; when the config changes, its stages replace the old config stages and the others
    are kept after them.
    """
    digest = entries_digest(entries)
    if manifest.config_digest == digest and manifest.generation > 0:
        return None
    names = {entry.name for entry in entries}
    kept = [e for e in manifest.stages if e.origin != "config" and e.name not in names]
    stages = entries + kept
    for name in list(manifest.rollouts):
        # NOTE: a stage the config replaces or drops ends its rollout in the same write
        if manifest.stage(name) != next((e for e in stages if e.name == name), None):
            manifest = end_if_active(manifest, name, "ended by a change of the config file")
    return dataclasses.replace(manifest.with_stages(stages), config_digest=digest)
