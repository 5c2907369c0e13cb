"""The hostile-guest suite through the Falcon app in-process: each case under both policies."""

from __future__ import annotations

import json
import logging
import time

import pytest

from mwhost import StageLoadError, testing
from mwhost.pipeline import Stage
from mwhost.registry import CompileCache
from mwhost.runtime import default_runtime
from mwhost.settings import StageSettings
from tests.examples.test_go_examples import MISBEHAVE
from tests.hostile.guests import CASES, Case, padding_for
from tests.wat import guest

POLICIES = ("fail_closed", "fail_open")
SLACK_S = 0.050


def deadline_s(options: dict) -> float:
    return options.get("timeout_ms", 100) / 1000 + SLACK_S


def client(tmp_path, name: str, module, options: dict):
    return testing.client(testing.pipeline_settings(tmp_path, (name, module, options)))


def check_answer(result, case_name: str, policy: str, fails: bool) -> None:
    if fails and policy == "fail_closed":
        assert result.status_code == 503, result.text
        assert result.headers["content-type"] == "application/problem+json"
        problem = json.loads(result.text)
        assert problem["stage"] == case_name
        # the stage's name, no guest internals
        assert problem["detail"] == f"The middleware stage {case_name!r} failed; the request was not processed."
    else:
        assert result.status_code == 200, result.text


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_guest_fails_one_request_by_policy(tmp_path, case: Case, policy: str, caplog):
    options = {**case.options, "on_error": policy}
    app = client(tmp_path, case.name, case.wasm(), options)
    assert app.simulate_get("/ok").status_code == 200
    elapsed = []
    with caplog.at_level(logging.INFO):
        for _ in range(3):  # NOTE: up to three tries, as in test_gunicorn.py, against machine stalls
            started = time.monotonic()
            result = app.simulate_get(case.trigger_path(), headers=padding_for(case))
            elapsed.append(time.monotonic() - started)
            check_answer(result, case.name, policy, case.fails)
            if elapsed[-1] < deadline_s(options):
                break
    assert min(elapsed) < deadline_s(options), f"answered after {[round(e * 1000) for e in elapsed]} ms"
    if case.fails:
        assert f"stage {case.name} failed" in caplog.text
        assert f"({case.kind}, {policy}, version" in caplog.text
    else:
        assert "bytes dropped" in caplog.text  # the flood was cut to the per-call budget
    after = app.simulate_get("/ok")  # the next request succeeds on a fresh instance
    assert after.status_code == 200, after.text


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("path", ["/panic", "/oom"])
def test_go_runtime_fatal_errors_fail_one_request_by_policy(tmp_path, path, policy, caplog):
    assert MISBEHAVE.exists(), "run scripts/setup.sh"
    options = {"on_error": policy, "max_memory_mb": 64}
    app = client(tmp_path, "go", MISBEHAVE, options)
    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        result = app.simulate_get(path)
    assert time.monotonic() - started < deadline_s(options)
    check_answer(result, "go", policy, fails=True)
    assert "guest stderr: " in caplog.text  # the Go runtime's own words reach the log
    if path == "/oom":
        assert "(memory, " in caplog.text
    assert app.simulate_get("/").status_code == 200


@pytest.mark.parametrize("policy", POLICIES)
def test_a_go_guest_sleeping_past_its_deadline_fails_one_request_by_policy(tmp_path, policy, caplog):
    """time.Sleep(45 s) in a Go guest under timeout_ms = 100 is a timeout answered by the
    policy within the deadline (WASI poll_oneoff is bounded), and the next request is fine."""
    assert MISBEHAVE.exists(), "run scripts/setup.sh"
    options = {"on_error": policy}
    app = client(tmp_path, "go", MISBEHAVE, options)
    assert app.simulate_get("/").status_code == 200
    elapsed = []
    with caplog.at_level(logging.INFO):
        for _ in range(3):  # NOTE: up to three tries against machine stalls, as above
            started = time.monotonic()
            result = app.simulate_get("/sleep")
            elapsed.append(time.monotonic() - started)
            check_answer(result, "go", policy, fails=True)
            if elapsed[-1] < deadline_s(options):
                break
    assert min(elapsed) < deadline_s(options), f"answered after {[round(e * 1000) for e in elapsed]} ms"
    assert f"stage go failed in the request phase (timeout, {policy}, version" in caplog.text
    assert app.simulate_get("/").json["ctx"] == {"go": "ok"}


def test_a_go_guest_sleeping_within_its_deadline_and_reading_stdin_carries_on(tmp_path):
    """time.Sleep(5 ms) under timeout_ms = 100 sleeps and answers; reading stdin ends at once."""
    app = client(tmp_path, "go", MISBEHAVE, {"on_error": "fail_closed"})
    started = time.monotonic()
    napped = app.simulate_get("/nap")
    assert napped.status_code == 200, napped.text
    assert napped.json["ctx"] == {"slept": "5ms"}
    assert time.monotonic() - started >= 0.005
    read = app.simulate_get("/stdin")
    assert read.status_code == 200, read.text
    assert read.json["ctx"] == {"stdin": "0"}


def test_a_trap_in_mw_init_refuses_the_stage_at_load(tmp_path):
    with pytest.raises(StageLoadError, match="'init_trap'.*mw_init failed"):
        client(tmp_path, "init_trap", guest(init="(unreachable)"), {})


@pytest.mark.parametrize("policy", POLICIES)
def test_failing_instantiation_backs_off_instead_of_spinning(tmp_path, policy, caplog):
    """A stage whose fresh instances fail mw_init (here: from the first request on) answers by
    policy at once, and tries instantiation again only after a growing delay."""
    wasm = guest(init="(unreachable)")
    cache = CompileCache(default_runtime(), None)
    settings = StageSettings(name="flaky", module=tmp_path / "flaky.wasm", on_error=policy)
    stage = Stage(settings, cache.load(wasm))  # NOTE: skips load()'s first-instance check
    from mwhost.pipeline import Pipeline, PipelineHolder
    import falcon
    import falcon.testing
    from mwhost import WasmMiddleware

    app = falcon.App(middleware=[WasmMiddleware(PipelineHolder(Pipeline((stage,), 1)))])
    app.add_sink(lambda req, resp, **_: setattr(resp, "text", "ok"), r"/")
    client_ = falcon.testing.TestClient(app)
    with caplog.at_level(logging.ERROR):
        statuses = [client_.simulate_get("/").status_code for _ in range(20)]
    assert set(statuses) == ({503} if policy == "fail_closed" else {200})
    attempts = caplog.text.count("mw_init failed")
    assert 1 <= attempts <= 3, caplog.text  # 20 requests within the first backoff windows
    assert "next try in" in caplog.text or attempts == 1
