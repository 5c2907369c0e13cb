"""Metrics across 4 gunicorn workers: counts after known requests, failures, swaps, and a
dead worker's series cleaned up; the probes."""

from __future__ import annotations

import os
import signal
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.server.gunicorn_process import serve
from tests.server.test_swap import Operator, swap_times, tagger, wait_for, write_config
from tests.wat import MARKER, explodes

pytestmark = pytest.mark.slow

WORKERS = 4


def scrape(served) -> list:
    status, headers, body = served.request("GET", "/metrics", served.admin_headers())
    assert status == 200 and headers["content-type"].startswith("text/plain")
    return [s for family in text_string_to_metric_families(body.decode()) for s in family.samples]


def total(samples, name: str, **labels) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_add_up_across_four_workers(tmp_path):
    config = write_config(tmp_path, [("good", tagger("v", "1")), ("broken", explodes())])
    text = (tmp_path / "mwhost.toml").read_text().replace(
        'name = "broken"\nmodule = "broken.wasm"', 'name = "broken"\nmodule = "broken.wasm"\non_error = "fail_open"')
    (tmp_path / "mwhost.toml").write_text(text)
    with serve(tmp_path, "--config", config, workers=WORKERS) as served:
        assert served.request("GET", "/metrics")[0] == 401  # the admin token is required
        time.sleep(1.5)  # every worker flushes its counts each second
        before = scrape(served)  # the start-up checks of serve() made requests too

        def added(name: str, **labels) -> float:
            return total(scrape(served), name, **labels) - total(before, name, **labels)

        for _ in range(40):
            assert served.request("GET", MARKER)[0] == 200
        time.sleep(1.5)
        assert added("mwhost_stage_calls_total", stage="good", phase="request", outcome="ok") == 40
        assert added("mwhost_stage_calls_total", stage="broken", outcome="failed") == 40
        assert added("mwhost_stage_failures_total", stage="broken", kind="abi") == 40
        assert added("mwhost_stage_call_duration_seconds_count", stage="good") == 40
        samples = scrape(served)
        pids = served.worker_pids()
        generations = {s.labels["pid"]: s.value for s in samples if s.name == "mwhost_pipeline_generation"}
        assert set(generations) == {str(pid) for pid in pids} and set(generations.values()) == {1}
        assert total(samples, "mwhost_stage_instances", stage="good") >= WORKERS

        operator = Operator(tmp_path / "data")
        generation = operator.set_stages([("good", tagger("v", "2"))])
        assert wait_for(lambda: len(swap_times(served.output(), generation)) == WORKERS, timeout=5)
        time.sleep(1.5)
        samples = scrape(served)
        assert total(samples, "mwhost_swaps_total", result="ok") == WORKERS
        generations = {s.labels["pid"]: s.value for s in samples if s.name == "mwhost_pipeline_generation"}
        assert set(generations.values()) == {generation}

        victim = sorted(pids)[0]
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: len(served.worker_pids()) == WORKERS and victim not in served.worker_pids(), 20)
        time.sleep(1.5)
        generations = {s.labels["pid"] for s in scrape(served) if s.name == "mwhost_pipeline_generation"}
        assert str(victim) not in generations  # the dead worker's series is gone


def test_probes_answer_without_a_token(tmp_path):
    config = write_config(tmp_path, [("good", tagger("v", "1"))])
    with serve(tmp_path, "--config", config, workers=2) as served:
        status, live = served.get_json("/_admin/health/live")
        assert status == 200 and live == {"status": "ok"}
        status, ready = served.get_json("/_admin/health/ready")
        assert status == 200 and ready["ready"] and ready["generation"] == ready["manifest_generation"] == 1


def test_json_logs_under_gunicorn_carry_stage_version_kind_and_request_id(tmp_path):
    import json as json_module

    config = write_config(tmp_path, [("broken", explodes())])
    with serve(tmp_path, "--config", config, "--log-format", "json", workers=2) as served:
        time.sleep(1.1)  # serve()'s own start-up requests failed too: let the rate limit pass
        assert served.request("GET", MARKER, {"X-Request-Id": "rid-json-1"})[0] == 503
        assert wait_for(lambda: "rid-json-1" in served.output(), timeout=5)
    lines = [json_module.loads(line) for line in served.output().splitlines() if line.startswith("{")]
    failure = next(line for line in lines if line.get("request_id") == "rid-json-1" and line.get("kind"))
    assert failure["stage"] == "broken" and failure["kind"] == "abi" and failure["phase"] == "request"
    assert failure["generation"] == 1 and len(failure["version"]) == 64 and failure["level"] == "error"
    swap = next(line for line in lines if "now serves generation" in line["message"])
    assert swap["logger"] == "mwhost.watch" and isinstance(swap["pid"], int)
