"""Data-dir faults under gunicorn: lost module files, a full disk, a read-only folder and a
deleted manifest never take the server down or lose the pipeline (docs/operations.md)."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import subprocess

import pytest

from tests.server.gunicorn_process import serve
from tests.server.test_swap import Operator, swap_times, tagger, wait_for, write_config
from tests.wat import const_guest

pytestmark = pytest.mark.slow
WORKERS = 2


@contextlib.contextmanager
def tmpfs(path: pathlib.Path, size_mb: int):
    """A small file system of its own at ``path`` (a full or read-only data dir without
    touching the machine's disks); needs root, as the README's test command runs in CI."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: pathlib.Path, keep_free_kb: int = 0) -> None:
    """Fill the file system of ``folder`` until a write fails, then free ``keep_free_kb``."""
    with open(folder / "filler", "wb") as out:
        with contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * 65536)
                out.flush()
    with contextlib.suppress(OSError):
        os.truncate(folder / "filler", max(0, (folder / "filler").stat().st_size - keep_free_kb * 1024))


def big_tagger(key: str, value: str, kib: int = 256) -> bytes:
    """A tagger whose module and compiled artifact are large (a data segment of ``kib``)."""
    data = f'(data (i32.const 131072) "{"x" * (kib * 1024)}")'
    return const_guest({"action": "continue", "ctx": {key: value}}, memory=str(4 + kib // 64), extra=data)


def kill_one_worker(served) -> int:
    pids = served.worker_pids()
    victim = sorted(pids)[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: len(served.worker_pids()) == WORKERS and victim not in served.worker_pids(), 30), \
        served.output()
    return victim


def answers(served, path: str = "/", count: int = 60) -> list[tuple[int, dict]]:
    results = []
    for _ in range(count):
        status, _, body = served.request("GET", path)
        results.append((status, json.loads(body)))
    return results


def upload(served, name: str, wasm: bytes) -> tuple[int, dict]:
    status, headers, body = served.request("PUT", f"/_admin/middlewares/{name}",
                                           {**served.admin_headers(), "Content-Type": "application/wasm"}, wasm)
    return status, json.loads(body)


def test_a_worker_that_cannot_load_the_current_generation_boots_on_an_earlier_one(tmp_path):
    """A module file deleted, then a worker restarts: it boots on the newest generation it can
    build and says it is not ready; the master and the other worker keep serving; once the
    file is back the worker catches up by itself."""
    config = write_config(tmp_path, [("tag", tagger("version", "1"))])
    with serve(tmp_path, "--config", config, workers=WORKERS) as served:
        operator = Operator(tmp_path / "data")
        newer = tagger("version", "2")
        generation = operator.set_stages([("tag", newer)])
        assert wait_for(lambda: len(swap_times(served.output(), generation)) == WORKERS, timeout=10)
        lost = operator.modules.path(operator.manifests.read().stage("tag").sha256)
        lost.unlink()
        kill_one_worker(served)
        assert wait_for(lambda: f"serving generation {generation - 1} until generation {generation}"
                        in served.output(), timeout=20), served.output()
        assert served.process.poll() is None  # the master stays
        seen = {body["ctx"]["version"] for status, body in answers(served) if status == 200}
        assert all(status == 200 for status, _ in answers(served, count=10))
        assert seen <= {"1", "2"}
        reasons = [served.get_json("/_admin/health/ready")[1] for _ in range(40)]
        stale = [r for r in reasons if not r["ready"]]
        assert stale and f"generation {generation} cannot be loaded" in stale[0]["reason"]
        operator.modules.put(newer)  # the operator restores the file
        assert wait_for(lambda: all(served.get_json("/_admin/health/ready")[0] == 200 for _ in range(10)),
                        timeout=30), served.output()


def test_with_nothing_loadable_a_worker_boots_and_answers_503_never_an_empty_pipeline(tmp_path):
    """Every module gone: a restarted worker boots, fails requests closed naming the pipeline
    (an auth stage is never silently skipped), and the healthy worker keeps serving."""
    config = write_config(tmp_path, [("tag", tagger("version", "1"))])
    with serve(tmp_path, "--config", config, workers=WORKERS) as served:
        operator = Operator(tmp_path / "data")
        module = operator.modules.path(operator.manifests.read().stage("tag").sha256)
        wasm = module.read_bytes()
        module.unlink()
        kill_one_worker(served)
        results = []
        assert wait_for(lambda: results.extend(answers(served, count=10)) or
                        any(status == 503 for status, _ in results), timeout=20), served.output()
        assert served.process.poll() is None
        assert {status for status, _ in results} <= {200, 503}
        refused = next(body for status, body in results if status == 503)
        assert refused["stage"] == "pipeline"
        assert all(body["ctx"] == {"version": "1"} for status, body in results if status == 200)
        operator.modules.put(wasm)
        assert wait_for(lambda: all(status == 200 for status, _ in answers(served, count=10)), timeout=30), \
            served.output()[-4000:]


def test_a_full_disk_refuses_uploads_and_never_stops_a_swap(tmp_path):
    """On a full data dir an upload answers 503 problem+json and changes nothing; a new
    generation whose compiled artifact cannot be cached is still served by every worker."""
    with tmpfs(tmp_path / "data", size_mb=64) as data:
        config = write_config(tmp_path, [("tag", tagger("version", "1"))])
        with serve(tmp_path, "--config", config, workers=WORKERS) as served:
            operator = Operator(data)
            before = operator.generation()
            big = big_tagger("version", "2")
            operator.modules.put(big)  # stored, never compiled: workers must compile it
            fill(data, keep_free_kb=48)  # room for manifests, not for a compiled artifact
            status, problem = upload(served, "other", big_tagger("other", "x"))
            assert status == 503 and "cannot be stored" in problem["detail"], problem
            assert operator.generation() == before
            generation = operator.set_stages([("tag", big)])
            assert wait_for(lambda: len(swap_times(served.output(), generation)) == WORKERS, timeout=20), \
                served.output()
            assert "serving" in served.output() and "from memory" in served.output()
            assert {body["ctx"]["version"] for _, body in answers(served, count=10)} == {"2"}
            assert served.process.poll() is None


def test_a_read_only_data_dir_keeps_the_master_and_new_workers_up(tmp_path):
    """A read-only data dir, then a worker dies: the master survives its exit hook, the new
    worker serves from the compiled cache, and writes answer 503."""
    with tmpfs(tmp_path / "data", size_mb=64) as data:
        config = write_config(tmp_path, [("tag", tagger("version", "1"))])
        with serve(tmp_path, "--config", config, workers=WORKERS) as served:
            subprocess.run(["mount", "-o", "remount,ro", str(data)], check=True)
            try:
                kill_one_worker(served)
                assert served.process.poll() is None
                assert all(status == 200 and body["ctx"] == {"version": "1"} for status, body in answers(served))
                status, problem = upload(served, "other", tagger("other", "x"))
                assert status == 503, problem
            finally:
                subprocess.run(["mount", "-o", "remount,rw", str(data)], check=False)


def test_a_deleted_manifest_is_restored_and_the_next_upload_keeps_every_stage(tmp_path):
    """manifest.json deleted: the workers put it back from its copy, the pipeline and the
    generation stay, a restarted worker agrees with its peer, and an upload builds on it."""
    config = write_config(tmp_path, [("tag", tagger("version", "1"))])
    with serve(tmp_path, "--config", config, workers=WORKERS) as served:
        operator = Operator(tmp_path / "data")
        generation = operator.set_stages([("tag", tagger("version", "1")), ("second", tagger("second", "yes"))])
        assert wait_for(lambda: len(swap_times(served.output(), generation)) == WORKERS, timeout=10)
        operator.manifests.path.unlink()
        assert wait_for(lambda: "manifest.json was missing: restored generation" in served.output(), timeout=10), \
            served.output()
        assert operator.manifests.path.exists()
        kill_one_worker(served)
        for status, body in answers(served, count=20):
            assert status == 200 and body["ctx"] == {"version": "1", "second": "yes"}
        status, pipeline = served.get_json("/_admin/pipeline", served.admin_headers())
        assert pipeline["generation"] == generation
        assert [s["name"] for s in pipeline["stages"]] == ["tag", "second"]
        operator.manifests.path.unlink()
        status, written = upload(served, "third", tagger("third", "yes"))
        assert status == 201, written
        assert written["generation"] == generation + 1
        assert [e.name for e in operator.manifests.read().stages] == ["tag", "second", "third"]
