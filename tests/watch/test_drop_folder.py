"""The drop folder in-process (its real watcher threads): complete files only, the same
admission as an upload, audited writes, and restarts that never revert an operator."""

from __future__ import annotations

import dataclasses
import os
import time

import pytest

from mwhost.registry import AuditLog, CompileCache, ManifestStore, ModuleStore, StageEntry
from mwhost.runtime import default_runtime
from mwhost.watch import DropFolder
from mwhost.watch.drop import RECENT_S
from tests.server.test_swap import tagger, wait_for
from tests.wat import guest


@pytest.fixture
def folder(tmp_path):
    """A drop folder over a fresh data dir; ``folder.start()`` runs it, stopped at the end."""
    data = tmp_path / "data"
    made = []

    def make() -> DropFolder:
        drop = DropFolder(tmp_path / "drop", ModuleStore(data / "modules"),
                          CompileCache(default_runtime(), data / "cache"), ManifestStore(data))
        made.append(drop)
        return drop

    yield make
    for drop in made:
        drop.stop()


def stage(drop: DropFolder, name: str) -> StageEntry | None:
    manifest = drop.manifests.read()
    return manifest.stage(name) if manifest else None


def audit(drop: DropFolder) -> list[dict]:
    return AuditLog(drop.manifests.data_dir / "audit.log").read()


def test_a_file_written_slowly_in_two_parts_is_waited_for_not_rejected(folder, caplog):
    """A writer that pauses longer than the settle time (but less than RECENT_S) gets its file
    applied once whole; the half file is never rejected."""
    drop = folder()
    drop.start()
    wasm = tagger("slow", "1")
    with open(drop.folder / "slow.wasm", "wb") as out:
        out.write(wasm[: len(wasm) // 2])
        out.flush()
        time.sleep(0.8)  # the slow writer's pause: past SETTLE_S, within RECENT_S
        out.write(wasm[len(wasm) // 2:])
    assert wait_for(lambda: stage(drop, "slow"), timeout=10)
    assert "rejected" not in caplog.text


def test_a_file_renamed_into_place_is_applied(folder):
    """The documented recipe: write NAME.wasm.tmp (or a dot file), then rename it."""
    drop = folder()
    drop.start()
    (drop.folder / ".fresh.wasm").write_bytes(tagger("fresh", "1"))
    os.rename(drop.folder / ".fresh.wasm", drop.folder / "fresh.wasm")
    assert wait_for(lambda: stage(drop, "fresh"), timeout=10)
    # NOTE: the audit record is written just after the manifest, so it may trail the stage
    assert wait_for(lambda: [r["who"] for r in audit(drop)] == ["drop-folder"], timeout=10)


def test_a_file_that_stays_truncated_is_rejected_once_it_is_old_and_audited(folder):
    """A truncated file that stops changing is rejected after RECENT_S with the binary check's
    words, and the refusal is in the audit log; nothing changes."""
    drop = folder()
    drop.start()
    (drop.folder / "cut.wasm").write_bytes(tagger("cut", "1")[:40])
    assert wait_for(lambda: any(r["result"] == "refused" for r in audit(drop)), timeout=RECENT_S + 10)
    record = next(r for r in audit(drop) if r["result"] == "refused")
    assert record["stage"] == "cut" and record["status"] == 400
    assert stage(drop, "cut") is None


@pytest.mark.parametrize("content, words", [
    (b"(module)", "compile it with wat2wasm first"),
    (b"", "the module is empty"),
])
def test_the_drop_folder_applies_the_checks_of_an_upload(folder, content, words):
    """WebAssembly text or an empty file gets the binary check's answer, not a parser's."""
    drop = folder()
    drop.folder.mkdir(parents=True)
    path = drop.folder / "text.wasm"
    path.write_bytes(content)
    old = time.time() - 2 * RECENT_S
    os.utime(path, (old, old))
    assert drop.apply("text") is False
    assert words in audit(drop)[-1]["detail"]


def test_a_guest_that_fails_the_probe_requests_is_refused_like_an_upload(folder):
    """Probe requests run for dropped files too: a guest that traps on every request never serves."""
    drop = folder()
    drop.folder.mkdir(parents=True)
    (drop.folder / "trap.wasm").write_bytes(guest("(unreachable)"))
    os.utime(drop.folder / "trap.wasm", (0, 0))
    assert drop.apply("trap") is False
    record = audit(drop)[-1]
    assert record["result"] == "refused" and record["status"] == 422 and record["check"] == "probe"


def test_a_restart_never_reverts_an_admin_upload_or_removal(folder):
    """Once applied, a file is applied again only when it changes: the admin API's new version
    of a dropped stage, and its removal, survive the folder's scan at the next start."""
    first = folder()
    first.folder.mkdir(parents=True)
    (first.folder / "a.wasm").write_bytes(tagger("a", "drop"))
    (first.folder / "b.wasm").write_bytes(tagger("b", "drop"))
    for name in ("a", "b"):
        os.utime(first.folder / f"{name}.wasm", (0, 0))
    first.scan()
    assert stage(first, "a").origin == stage(first, "b").origin == "drop"
    admin_version = ModuleStore(first.manifests.data_dir / "modules").put(tagger("a", "admin"))
    first.manifests.update(lambda m: m.with_stages(
        [StageEntry(name="a", sha256=admin_version, origin="admin")]), source="admin")  # b removed
    restarted = folder()
    restarted.scan()
    assert stage(restarted, "a").sha256 == admin_version
    assert stage(restarted, "b") is None
    # a changed file is a new decision and applies
    (restarted.folder / "b.wasm").write_bytes(tagger("b", "dropped again"))
    os.utime(restarted.folder / "b.wasm", (0, 0))
    restarted.scan()
    assert stage(restarted, "b").origin == "drop"
    assert [r["action"] for r in audit(restarted) if r["result"] == "ok"] == \
        ["drop a.wasm", "drop b.wasm", "drop b.wasm"]


def test_removing_a_dropped_file_removes_its_stage_and_is_audited(folder):
    """Deleting NAME.wasm removes the stage the folder made (not one the admin API took over)."""
    drop = folder()
    drop.folder.mkdir(parents=True)
    (drop.folder / "gone.wasm").write_bytes(tagger("gone", "1"))
    os.utime(drop.folder / "gone.wasm", (0, 0))
    drop.scan()
    (drop.folder / "gone.wasm").unlink()
    drop.scan()
    assert stage(drop, "gone") is None
    assert audit(drop)[-1]["action"] == "remove gone.wasm"


def test_a_folder_never_removes_a_drop_stage_it_did_not_make(tmp_path):
    """A stage of origin "drop" made by another folder (another host's, mirrored in a fleet)
    stays when this folder, which never had its file, scans; this folder's own drops still go."""
    theirs, ours = (DropFolder(tmp_path / f"drop{i}", ModuleStore(tmp_path / f"data{i}" / "modules"),
                               CompileCache(default_runtime(), tmp_path / f"data{i}" / "cache"),
                               ManifestStore(tmp_path / f"data{i}")) for i in (0, 1))
    theirs.folder.mkdir(parents=True)
    ours.folder.mkdir(parents=True)
    for drop, name in ((theirs, "dropped"), (ours, "mine")):
        (drop.folder / f"{name}.wasm").write_bytes(tagger(name, "1"))
        os.utime(drop.folder / f"{name}.wasm", (0, 0))
        drop.scan()
    mirrored = theirs.manifests.read().with_stages([theirs.manifests.read().stage("dropped"),
                                                    ours.manifests.read().stage("mine")])
    assert ours.manifests.mirror(dataclasses.replace(mirrored, generation=5))  # what a fleet syncer does
    ours.scan()
    assert stage(ours, "dropped") is not None and stage(ours, "dropped").origin == "drop"
    (ours.folder / "mine.wasm").unlink()
    ours.scan()
    assert stage(ours, "mine") is None and stage(ours, "dropped") is not None
