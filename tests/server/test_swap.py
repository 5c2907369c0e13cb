"""Hot swap under real gunicorn with 4 workers: propagation, swaps under load, bad input."""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import os
import re
import signal
import threading
import time

import pytest

from mwhost.registry import ManifestStore, ModuleStore, StageEntry
from tests.server.gunicorn_process import serve
from tests.wat import const_guest

pytestmark = pytest.mark.slow

WORKERS = 4


def tagger(key: str, version: str) -> bytes:
    """A stage that puts ``key = version`` into ctx (the echo app shows ctx)."""
    return const_guest({"action": "continue", "ctx": {key: version}})


def write_config(tmp_path, stages: list[tuple[str, bytes]]) -> str:
    lines = []
    for name, wasm in stages:
        (tmp_path / f"{name}.wasm").write_bytes(wasm)
        # NOTE: timeout_ms is wall time and this test starves its 4 workers on purpose (8
        # clients, 50 swaps on 2 cores): with the default 100 ms a worker that got no core
        # for 100 ms mid-call timed its trivial guest out (seen once, in a clean-clone run on a
        # machine other jobs loaded). The test is about swaps, so its stages get a wider limit.
        lines += ["[[middleware]]", f'name = "{name}"', f'module = "{name}.wasm"', "timeout_ms = 1000", ""]
    (tmp_path / "mwhost.toml").write_text("\n".join(lines))
    return str(tmp_path / "mwhost.toml")


class Operator:
    """Writes manifests the way any writer does: module into the store, then an update."""

    def __init__(self, data_dir) -> None:
        self.modules = ModuleStore(data_dir / "modules")
        self.manifests = ManifestStore(data_dir)

    def set_stages(self, stages: list[tuple[str, bytes]]) -> int:
        entries = [StageEntry(name=name, sha256=self.modules.put(wasm), origin="admin") for name, wasm in stages]
        return self.manifests.update(lambda m: m.with_stages(entries), source="test").generation

    def generation(self) -> int:
        return self.manifests.read().generation


def swap_times(output: str, generation: int) -> dict[int, float]:
    """pid -> time (epoch seconds) at which that worker started serving ``generation``."""
    times = {}
    pattern = re.compile(r"^(\S+ \S+) \[(\d+)\] INFO mwhost.watch: pid \d+ now serves generation (\d+)", re.M)
    for stamp, pid, gen in pattern.findall(output):
        if int(gen) == generation:
            at = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            times[int(pid)] = at
    return times


#: a generous bound on manifest write -> every worker's swap for tests (a loaded 2-core
#: machine stalls processes); the speed itself is measured by bench/propagation.py
PROPAGATION_BOUND_S = 5.0


def wait_for(condition, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    return condition()


def test_a_new_generation_is_served_by_every_worker(tmp_path):
    """Every worker swaps to a written generation by itself and serves it. (How fast is a
    benchmark, not a test: bench/propagation.py measures it, p99 well under a second; the
    bound here only catches a worker that never follows.)"""
    config = write_config(tmp_path, [("tag", tagger("version", "1"))])
    with serve(tmp_path, "--config", config, workers=WORKERS) as served:
        operator = Operator(tmp_path / "data")
        written = time.time()
        generation = operator.set_stages([("tag", tagger("version", "2"))])
        times = wait_for(lambda: len(swap_times(served.output(), generation)) == WORKERS and
                         swap_times(served.output(), generation), timeout=5)
        assert set(times) == served.worker_pids(), served.output()
        assert max(times.values()) - written < PROPAGATION_BOUND_S, (times, written)
        for _ in range(20):  # and what they serve is the new version
            status, echoed = served.get_json("/")
            assert status == 200 and echoed["ctx"] == {"version": "2"}


def test_fifty_swaps_under_load_fail_no_request_and_never_mix_versions(tmp_path):
    versions = {v: [("a", tagger("a", v)), ("b", tagger("b", v))] for v in ("1", "2")}
    config = write_config(tmp_path, versions["1"])
    with serve(tmp_path, "--config", config, workers=WORKERS) as served:
        operator = Operator(tmp_path / "data")
        stop = threading.Event()
        results: list[tuple[int, dict]] = []
        errors: list[str] = []

        def load() -> None:
            while not stop.is_set():
                try:
                    status, _, body = served.request("GET", "/")
                    echoed = json.loads(body)
                    results.append((status, echoed["ctx"]))
                except Exception as err:  # noqa: BLE001 - every failure is a finding
                    errors.append(f"{err!r}: {locals().get('status')} {locals().get('body', b'')[:300]!r}")

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for _ in range(8):
                pool.submit(load)
            started = time.monotonic()
            for swap in range(50):
                operator.set_stages(versions["2" if swap % 2 == 0 else "1"])
                time.sleep(0.3)
                if time.monotonic() - started > 25:  # bounded even on a slow machine
                    break
            time.sleep(0.5)
            stop.set()
        assert not errors, errors[:5]
        assert len(results) > 200
        assert all(status == 200 for status, _ in results)
        mixed = [ctx for _, ctx in results if ctx.get("a") != ctx.get("b")]
        assert not mixed, mixed[:5]
        seen = {ctx["a"] for _, ctx in results}
        assert seen == {"1", "2"}


def test_a_bad_module_in_the_drop_folder_changes_nothing(tmp_path):
    config = write_config(tmp_path, [("tag", tagger("version", "1"))])
    drop = tmp_path / "drop"
    with serve(tmp_path, "--config", config, "--drop-dir", str(drop), workers=WORKERS) as served:
        operator = Operator(tmp_path / "data")
        before = operator.generation()
        (drop / "broken.wasm").write_bytes(b"\x00asm\x01\x00\x00\x00 this is not a module")
        assert wait_for(lambda: "drop: broken.wasm rejected" in served.output(), timeout=10), served.output()
        assert operator.generation() == before
        assert served.get_json("/")[1]["ctx"] == {"version": "1"}

        # a good one is applied everywhere; removing it removes the stage
        (drop / "extra.wasm").write_bytes(tagger("extra", "yes"))
        (drop / "extra.toml").write_text('on_error = "fail_open"\nposition = 0\n')
        assert wait_for(lambda: operator.generation() > before, timeout=10), served.output()
        generation = operator.generation()
        assert wait_for(lambda: len(swap_times(served.output(), generation)) == WORKERS, timeout=5)
        assert served.get_json("/")[1]["ctx"] == {"extra": "yes", "version": "1"}
        assert [s.name for s in operator.manifests.read().stages] == ["extra", "tag"]
        (drop / "extra.wasm").unlink()
        assert wait_for(lambda: operator.generation() > generation, timeout=10)
        assert [s.name for s in operator.manifests.read().stages] == ["tag"]


def test_a_half_written_drop_file_is_applied_only_once_complete(tmp_path):
    config = write_config(tmp_path, [])
    drop = tmp_path / "drop"
    with serve(tmp_path, "--config", config, "--drop-dir", str(drop), workers=2) as served:
        operator = Operator(tmp_path / "data")
        before = operator.generation()
        wasm = tagger("late", "ok")
        with open(drop / "late.wasm", "wb") as out:
            out.write(wasm[: len(wasm) // 2])
            out.flush()
            time.sleep(0.1)  # shorter than the settle time
            out.write(wasm[len(wasm) // 2:])
        assert wait_for(lambda: operator.generation() == before + 1, timeout=10)
        assert "late.wasm rejected" not in served.output()
        entry = operator.manifests.read().stage("late")
        assert entry is not None and entry.origin == "drop"


def test_a_torn_manifest_changes_nothing(tmp_path):
    config = write_config(tmp_path, [("tag", tagger("version", "1"))])
    with serve(tmp_path, "--config", config, workers=WORKERS) as served:
        operator = Operator(tmp_path / "data")
        good = operator.manifests.path.read_bytes()
        generation = operator.generation()
        torn = json.loads(good)
        torn["generation"] = generation + 1
        torn["stages"] = []
        data = json.dumps(torn).encode()
        operator.manifests.path.write_bytes(data[: len(data) // 2])  # torn mid-write, in place
        assert wait_for(lambda: served.output().count("manifest not applied") >= WORKERS, timeout=5)
        operator.manifests.path.write_bytes(data)  # whole, but its checksum does not match
        time.sleep(1.5)
        for _ in range(20):
            assert served.health()["generation"] == generation
            assert served.get_json("/")[1]["ctx"] == {"version": "1"}
        # and the next proper write goes through
        operator.manifests.path.write_bytes(good)
        new = operator.set_stages([("tag", tagger("version", "3"))])
        assert wait_for(lambda: len(swap_times(served.output(), new)) == WORKERS, timeout=5)


def test_a_killed_worker_is_replaced_and_serves_the_current_generation(tmp_path):
    config = write_config(tmp_path, [("tag", tagger("version", "1"))])
    with serve(tmp_path, "--config", config, workers=WORKERS) as served:
        operator = Operator(tmp_path / "data")
        generation = operator.set_stages([("tag", tagger("version", "2"))])
        assert wait_for(lambda: len(swap_times(served.output(), generation)) == WORKERS, timeout=5)
        victim = sorted(served.worker_pids())[0]
        os.kill(victim, signal.SIGKILL)
        replaced = wait_for(lambda: (len(served.worker_pids()) == WORKERS and victim not in served.worker_pids()
                                     and served.worker_pids()), timeout=20)
        assert replaced, served.output()
        newcomer = (replaced - {victim}) - set(swap_times(served.output(), generation))
        seen = {}
        deadline = time.monotonic() + 20
        while newcomer - set(seen) and time.monotonic() < deadline:
            health = served.health()
            seen[health["pid"]] = health["generation"]
        assert newcomer <= set(seen), (newcomer, seen)
        assert all(seen[pid] == generation for pid in newcomer)
