"""Canary rollouts under real gunicorn with 3 workers, decided by the host's one decider from
every worker's counts: promotion, a fast abort, waiting, a restart mid-rollout."""

from __future__ import annotations

import itertools
import json
import re
import time

import pytest

from mwhost.pipeline.bucket import bucket
from mwhost.registry import AuditLog, ManifestStore, ModuleStore, StageEntry, transitions
from mwhost.registry.rollout import Gates, Rollout
from tests.server.gunicorn_process import serve
from tests.server.test_swap import PROPAGATION_BOUND_S, swap_times, tagger, wait_for, write_config
from tests.wat import explodes

pytestmark = pytest.mark.slow

WORKERS = 3
USERS = (f"user-{n}" for n in itertools.count())


class Rollouts:
    """Starts rollouts the way any writer does (module into the store, one manifest update)
    and reads them back."""

    def __init__(self, data_dir) -> None:
        self.data_dir = data_dir
        self.modules = ModuleStore(data_dir / "modules")
        self.manifests = ManifestStore(data_dir)

    def start(self, name: str, wasm: bytes, **options) -> Rollout:
        entry = StageEntry(name=name, sha256=self.modules.put(wasm), origin="admin")
        baseline = self.manifests.read().stage(name).sha256
        rollout = Rollout.start("canary", entry.to_json(), baseline, **options)
        self.manifests.update(lambda m: transitions.started(m, name, rollout), source="test")
        return rollout

    def get(self, name: str) -> Rollout:
        return self.manifests.read().rollouts[name]

    def audited(self) -> list[tuple[str, str]]:
        return [(r["who"], r["action"]) for r in AuditLog(self.data_dir / "audit.log").read()]


def send(served, path: str = "/", user: str | None = None) -> tuple[int, str | None]:
    """One request as user ``user`` (a new one by default): its status and the ``variant``
    the echo app saw in ctx."""
    status, _, body = served.request("GET", path, {"X-User": user or next(USERS)})
    if status != 200:
        return status, None
    return status, json.loads(body)["ctx"].get("variant")


#: how long ``drive`` sends at most: a rollout's steps are timed (step_s), so the traffic
#: is bounded by time, not by a count a faster host gets through before the steps end
DRIVE_TIMEOUT_S = 60.0


def drive(served, rollouts: Rollouts, until, timeout_s: float = DRIVE_TIMEOUT_S,
          path=lambda n: "/") -> list[tuple[str, str, int, str | None]]:
    """Send requests from distinct users until ``until(rollout)`` or ``timeout_s`` seconds:
    (user, path, status, variant) for each."""
    sent = []
    deadline = time.monotonic() + timeout_s
    for n in itertools.count():
        if n % 10 == 0 and (until(rollouts.get("tag")) or time.monotonic() > deadline):
            break
        user, where = next(USERS), path(n)
        sent.append((user, where, *send(served, where, user)))
    return sent


def served_everywhere(served, generation: int):
    """Wait until every worker serves ``generation`` (its swap log line)."""
    return wait_for(lambda: len(swap_times(served.output(), generation)) == WORKERS, timeout=5)


@pytest.fixture
def canary_host(tmp_path):
    """mwhost serve (3 workers) with stage ``tag`` (ctx variant=baseline), and its Rollouts."""
    config = write_config(tmp_path, [("tag", tagger("variant", "baseline"))])
    with serve(tmp_path, "--config", config, workers=WORKERS) as served:
        yield served, Rollouts(tmp_path / "data")


def test_a_good_candidate_is_promoted_automatically_with_sticky_buckets(canary_host):
    """Steps 50,100 with step_s 1 and min_requests 20: bounded traffic from distinct users
    advances then promotes it; at 50% a user always gets the variant of its bucket, in
    whichever worker; the force header picks the candidate; each verdict is audited."""
    served, rollouts = canary_host
    rollout = rollouts.start("tag", tagger("variant", "candidate"), steps=(50, 100), step_s=1.0,
                             key="header:x-user", gates=Gates(min_requests=20))
    assert served_everywhere(served, rollouts.manifests.read().generation), served.output()[-3000:]
    for user in ("sticky-1", "sticky-2", "sticky-3", "sticky-4"):
        expected = "candidate" if bucket(rollout.id, user) < 5000 else "baseline"
        seen = {send(served, user=user)[1] for _ in range(6)}
        assert seen == {expected} or rollouts.get("tag").step > 0, (user, seen)
    assert send(served, user="sticky-1")[1] is not None
    status, _, body = served.request("GET", "/", {"X-User": "x", "x-mwhost-variant": "candidate"})
    assert json.loads(body)["ctx"]["variant"] == "candidate"

    sent = drive(served, rollouts, lambda r: r.state == "promoted")
    ended = rollouts.get("tag")
    assert ended.state == "promoted", (ended.reason, len(sent), served.output()[-3000:])
    assert all(status == 200 for _, _, status, _ in sent)
    assert [result.outcome for result in ended.results] == ["advanced", "promoted"]
    assert ended.results[0].counts["candidate"]["requests"] >= 20
    assert rollouts.manifests.read().stage("tag").sha256 == ended.candidate_sha256
    assert wait_for(lambda: ("rollout", "rollout promoted") in rollouts.audited(), timeout=5)
    assert wait_for(lambda: send(served)[1] == "candidate" and send(served)[1] == "candidate", timeout=5)


def test_a_candidate_failing_on_part_of_the_traffic_is_aborted_fast_and_leaves_every_worker(
        canary_host):
    """A candidate that fails on /boom paths, at 25% with a 60 s step: the decider aborts it
    on its counts before the step ends; only requests routed to it failed (at most its share
    of /boom requests); the abort reaches every worker (within 1 s on a quiet machine:
    bench/propagation.py measures the same path) and then no request fails."""
    served, rollouts = canary_host
    rollout = rollouts.start("tag", explodes(), steps=(25, 100), step_s=60.0, key="header:x-user",
                             gates=Gates(min_requests=20))
    assert served_everywhere(served, rollouts.manifests.read().generation), served.output()[-3000:]
    sent = drive(served, rollouts, lambda r: r.state == "aborted", path=lambda n: "/boom/x" if n % 2 else "/")
    ended = rollouts.get("tag")
    assert ended.state == "aborted", (ended.reason, served.output()[-3000:])
    assert "aborted before the end of the step" in ended.reason and "failure rate" in ended.reason
    assert ended.ended_at - ended.started_at < 30

    failed = [(user, where) for user, where, status, _ in sent if status != 200]
    boom = [user for user, where, _, _ in sent if where.startswith("/boom")]
    on_candidate = [user for user in boom if bucket(rollout.id, user) < 2500]
    assert failed and all(where.startswith("/boom") for _, where in failed)
    assert {user for user, _ in failed} <= set(on_candidate)
    assert len(failed) <= len(on_candidate) < len(boom) * 0.5, (len(failed), len(on_candidate), len(boom))

    manifest = rollouts.manifests.read()
    generation = manifest.generation
    times = wait_for(lambda: len(swap_times(served.output(), generation)) == WORKERS and
                     swap_times(served.output(), generation), timeout=5)
    assert set(times) == served.worker_pids(), served.output()[-3000:]
    assert max(times.values()) - manifest.written_at < PROPAGATION_BOUND_S, (times, manifest.written_at)
    assert manifest.stage("tag").sha256 == rollout.baseline
    assert rollout.candidate_sha256 in [entry.sha256 for entry in manifest.versions["tag"]]
    assert all(send(served, "/boom/y")[0] == 200 for _ in range(40))
    assert wait_for(lambda: ("rollout", "rollout aborted") in rollouts.audited(), timeout=5)


def test_a_rollout_without_traffic_waits_and_says_why(canary_host):
    """No traffic after step_s: the rollout is ``waiting`` with a reason naming the missing
    requests, and is neither advanced nor aborted."""
    served, rollouts = canary_host
    rollouts.start("tag", tagger("variant", "candidate"), steps=(50, 100), step_s=1.0,
                   key="header:x-user", gates=Gates(min_requests=20))
    waiting = wait_for(lambda: rollouts.get("tag").state == "waiting" and rollouts.get("tag"), timeout=10)
    assert waiting, served.output()[-3000:]
    assert "waits for traffic: 0 of 20 candidate requests" in waiting.reason
    assert waiting.step == 0 and waiting.results == ()
    manifest = rollouts.manifests.read()
    # every worker wrote its counts again 1 s after: the decider had rounds enough meanwhile
    assert wait_for(lambda: _counts_written_after(rollouts.data_dir, manifest.written_at + 1.0), timeout=10)
    assert rollouts.manifests.read().generation == manifest.generation  # said once, not every round
    assert ("rollout", "rollout waiting") in rollouts.audited()


def test_a_restart_mid_rollout_resumes_from_the_manifest(tmp_path):
    """Stop serve after the first step advanced, start it again: the same rollout goes on at
    its step (percent gauge included) and is promoted."""
    config = write_config(tmp_path, [("tag", tagger("variant", "baseline"))])
    rollouts = Rollouts(tmp_path / "data")
    with serve(tmp_path, "--config", config, workers=WORKERS) as served:
        rollout = rollouts.start("tag", tagger("variant", "candidate"), steps=(20, 60, 100), step_s=1.0,
                                 key="header:x-user", gates=Gates(min_requests=20))
        drive(served, rollouts, lambda r: r.step >= 1)
        assert rollouts.get("tag").step == 1, rollouts.get("tag").reason
    with serve(tmp_path, "--config", config, workers=WORKERS) as served:
        resumed = rollouts.get("tag")
        assert resumed.id == rollout.id and resumed.step >= 1 and resumed.state in ("running", "waiting")
        assert wait_for(lambda: _percent(served) == 60.0, timeout=10), _metrics(served)
        drive(served, rollouts, lambda r: r.state == "promoted")
        ended = rollouts.get("tag")
        assert ended.state == "promoted", ended.reason
        assert [result.percent for result in ended.results] == [20, 60, 100]
        assert wait_for(lambda: _percent(served) == 0.0, timeout=10), _metrics(served)


def _counts_written_after(data_dir, at: float) -> bool:
    files = list((data_dir / "rollouts" / "counts").glob("*.json"))
    return len(files) >= WORKERS and all(json.loads(path.read_text())["at"] > at for path in files)


def _metrics(served) -> str:
    return served.request("GET", "/metrics", served.admin_headers())[2].decode()


def _percent(served) -> float | None:
    found = re.search(r'^mwhost_rollout_percent\{stage="tag"\} (\S+)$', _metrics(served), re.M)
    return float(found.group(1)) if found else None
