"""Shadow runs under gunicorn with 3 workers: clients see only the baseline, and every shadowed
request is run by the candidate after its response and counted once."""

from __future__ import annotations

import json

import pytest

from mwhost.pipeline.rollout_stage import count_key
from mwhost.registry import StageEntry, transitions
from mwhost.registry.rollout import Rollout
from tests.server.gunicorn_process import serve
from tests.server.test_metrics import scrape, total
from tests.server.test_swap import Operator, swap_times, tagger, wait_for, write_config
from tests.wat import CONTAINS_FUNC, data_segment, guest, packed

pytestmark = pytest.mark.slow

WORKERS = 3
ROUNDS = 30
#: what the baseline answers: a continue that tags ctx (the demo echo shows it)
TAGGED = {"action": "continue", "ctx": {"variant": "baseline"}}


def candidate() -> bytes:
    """Answers like the baseline, except: 403 itself on paths with ``/diff``, traps on ``/fail``."""
    same, same_len = data_segment(16, TAGGED)
    respond, respond_len = data_segment(256, {"action": "respond", "status": 403})
    on_path = "(call $contains (local.get $ptr) (local.get $len) (i32.const {}) (i32.const 5))"
    body = (f"(if {on_path.format(1024)} (then unreachable)) "
            f"(if {on_path.format(1040)} (then (return {packed(256, respond_len)}))) {packed(16, same_len)}")
    data = f'{same} {respond} (data (i32.const 1024) "/fail") (data (i32.const 1040) "/diff")'
    return guest(body, data=data, extra=CONTAINS_FUNC)


def requests() -> list[tuple[str, dict]]:
    """Same, different and failing paths in equal numbers, each from its own user."""
    return [(f"/{kind}/{i}", {"X-User": f"user-{kind}-{i}"})
            for i in range(ROUNDS) for kind in ("same", "diff", "fail")]


def answers(served) -> list[tuple[int, dict, bytes]]:
    seen = []
    for path, headers in requests():
        status, response_headers, body = served.request("GET", path, headers)
        response_headers.pop("date", None)
        seen.append((status, response_headers, body))
    return seen


def start_shadow(data_dir) -> tuple[Rollout, int]:
    """Store the candidate and start a 100% shadow on stage ``mw`` by writing the manifest."""
    operator = Operator(data_dir)
    sha = operator.modules.put(candidate())
    baseline = operator.manifests.read().stage("mw")
    rollout = Rollout.start("shadow", StageEntry(name="mw", sha256=sha, origin="admin").to_json(),
                            baseline.sha256, percent=100, key="header:x-user")
    generation = operator.manifests.update(lambda m: transitions.started(m, "mw", rollout),
                                           source="test").generation
    return rollout, generation


def serve_shadowed(tmp_path):
    config = write_config(tmp_path, [("mw", tagger("variant", "baseline"))])
    return serve(tmp_path, "--config", config, workers=WORKERS)


def test_a_shadow_changes_no_response_and_sees_every_request(tmp_path):
    """Status, headers and body are the same with and without a shadow whose candidate would
    answer 403 or trap; the candidate is still called once per request (its version's metrics)."""
    with serve_shadowed(tmp_path) as served:
        before = answers(served)
        assert {status for status, _, _ in before} == {200}
        rollout, generation = start_shadow(tmp_path / "data")
        assert wait_for(lambda: len(swap_times(served.output(), generation)) == WORKERS, timeout=5)
        assert answers(served) == before
        version = rollout.candidate_sha256[:12]

        def candidate_calls() -> float:
            return total(scrape(served), "mwhost_stage_calls_total", stage="mw", version=version)

        assert wait_for(lambda: candidate_calls() >= len(before), timeout=10, interval=0.2)
        samples = scrape(served)
        assert total(samples, "mwhost_stage_calls_total", stage="mw", version=version) == len(before)
        assert total(samples, "mwhost_stage_failures_total", stage="mw", version=version, kind="trap") == ROUNDS
        assert "Traceback" not in served.output()


def test_shadow_counts_add_up_to_the_shadowed_requests(tmp_path):
    """Every worker's counts, summed, give same / different / failed for each request exactly
    once, with the differing field and path recorded."""
    pytest.importorskip("mwhost.watch.counts", reason="the counts files are written by the decider's flusher")
    with serve_shadowed(tmp_path) as served:
        rollout, generation = start_shadow(tmp_path / "data")
        assert wait_for(lambda: len(swap_times(served.output(), generation)) == WORKERS, timeout=5)
        sent = answers(served)
        assert {status for status, _, _ in sent} == {200}
        key = count_key(rollout.id, rollout.step, rollout.step_started_at)
        counts_dir = tmp_path / "data" / "rollouts" / "counts"

        def merged() -> dict:
            result = {"same": 0, "different": 0, "failed": 0, "dropped": 0, "differences": []}
            for path in counts_dir.glob("*.json"):
                shadow = json.loads(path.read_text()).get("shadow", {}).get(key, {})
                for field in ("same", "different", "failed", "dropped"):
                    result[field] += shadow.get(field, 0)
                result["differences"] += shadow.get("differences", [])
            return result

        def counted() -> bool:
            result = merged()
            return result["same"] + result["different"] + result["failed"] >= len(sent)

        assert wait_for(counted, timeout=10, interval=0.2)
        result = merged()
        assert (result["same"], result["different"], result["failed"], result["dropped"]) == (ROUNDS,) * 3 + (0,)
        assert result["differences"]
        for difference in result["differences"]:
            assert difference["fields"] == ["action"] and difference["request"]["path"].startswith("/diff/")
            assert difference["candidate"] == {"action": "respond"}
