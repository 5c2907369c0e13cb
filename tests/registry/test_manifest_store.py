"""The manifest store on data-dir faults: missing, damaged and unwritable manifests."""

from __future__ import annotations

import pytest

from mwhost.errors import RegistryError
from mwhost.registry import Manifest, ManifestStore, StageEntry
from mwhost.registry.manifest import KEEP_GENERATIONS

SHA_A, SHA_B = "a" * 64, "b" * 64


def entry(name: str, sha256: str) -> StageEntry:
    return StageEntry(name=name, sha256=sha256, origin="admin")


def two_stages(store: ManifestStore) -> int:
    store.update(lambda m: m.with_stages([entry("auth", SHA_A)]), source="test")
    return store.update(lambda m: m.with_stages([*m.stages, entry("tag", SHA_B)]), source="test").generation


def test_a_missing_manifest_reads_as_its_last_copy_and_a_write_builds_on_it(tmp_path):
    """With manifest.json deleted, readers see the last generation and the next write keeps
    every stage and goes one generation up (never an empty generation 1)."""
    store = ManifestStore(tmp_path)
    generation = two_stages(store)
    store.path.unlink()
    assert store.read().generation == generation
    assert [e.name for e in store.read().stages] == ["auth", "tag"]
    written = store.update(lambda m: m.with_stages([*m.stages, entry("late", SHA_A)]), source="test")
    assert written.generation == generation + 1
    assert [e.name for e in written.stages] == ["auth", "tag", "late"]


def test_restore_writes_the_missing_manifest_back(tmp_path):
    """``restore`` puts the newest good copy back as manifest.json, and only when it is missing."""
    store = ManifestStore(tmp_path)
    generation = two_stages(store)
    assert store.restore() is None  # present: nothing to do
    store.path.unlink()
    assert store.missing()
    assert store.restore().generation == generation
    assert store._read(store.path).generation == generation and not store.missing()


def test_with_every_copy_but_the_history_gone_generations_still_go_up(tmp_path):
    """The per-generation copies alone keep the pipeline and the generation count."""
    store = ManifestStore(tmp_path)
    generation = two_stages(store)
    store.path.unlink()
    store.last_good_path.unlink()
    assert store.read().generation == generation
    assert store.update(lambda m: m, source="test").generation == generation + 1


def test_a_damaged_manifest_is_refused_but_never_the_base_of_a_lower_generation(tmp_path):
    """A torn manifest.json is not applied, and a write after it goes above every copy."""
    store = ManifestStore(tmp_path)
    generation = two_stages(store)
    store.path.write_bytes(b'{"torn')
    with pytest.raises(RegistryError, match="not valid JSON"):
        store.read()
    assert store.read_good().generation == generation
    assert store.update(lambda m: m, source="test").generation == generation + 1


def test_history_keeps_the_last_generations_newest_first(tmp_path):
    """Every write leaves a copy; only the last KEEP_GENERATIONS stay."""
    store = ManifestStore(tmp_path)
    for _ in range(KEEP_GENERATIONS + 3):
        store.update(lambda m: m, source="test")
    kept = [m.generation for m in store.history()]
    assert kept == list(range(KEEP_GENERATIONS + 3, 3, -1))


def test_a_config_change_ends_the_rollout_of_a_stage_it_replaces():
    """Reseeding from a changed config never leaves a candidate beside a replaced baseline."""
    from mwhost.registry import reseeded
    from mwhost.registry.rollout import Rollout
    from mwhost.registry.transitions import started

    base = reseeded(Manifest(generation=1), [StageEntry(name="auth", sha256=SHA_A)])
    candidate = StageEntry(name="auth", sha256=SHA_B, origin="admin").to_json()
    running = started(base, "auth", Rollout.start("canary", candidate, SHA_A))
    same = reseeded(running, [StageEntry(name="auth", sha256=SHA_A)])
    assert same is None or same.active_rollout("auth") is not None
    changed = reseeded(running, [StageEntry(name="auth", sha256="c" * 64)])
    assert changed.rollouts["auth"].state == "aborted"
    assert "config file" in changed.rollouts["auth"].reason
