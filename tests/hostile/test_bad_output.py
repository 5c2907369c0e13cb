"""Guest output the server cannot send is a guest error of the stage that produced it: the
stage's policy answers (503 problem naming it, or the app under fail_open), never
gunicorn's 500, and the 200,000-header output is refused instead of costing seconds."""

from __future__ import annotations

import json
import logging

import pytest

from tests.hostile.bad_output import CASES
from tests.hostile.guests import Case
from tests.hostile.test_in_process import check_answer, client
from tests.server.gunicorn_process import serve


@pytest.mark.parametrize("policy", ["fail_closed", "fail_open"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_unsendable_output_fails_the_request_by_the_stage_policy(tmp_path, case: Case, policy, caplog):
    """Each class of unsendable output is an 'abi' failure naming the stage, answered by policy."""
    app = client(tmp_path, case.name, case.wasm(), {"on_error": policy})
    with caplog.at_level(logging.INFO):
        result = app.simulate_get(case.trigger_path())
    check_answer(result, case.name, policy, fails=True)
    assert f"stage {case.name} failed" in caplog.text
    assert f"(abi, {policy}, version" in caplog.text
    assert app.simulate_get("/ok").status_code == 200


def write_config(folder, cases, policy: str) -> str:
    lines = []
    for case in cases:
        (folder / f"{case.name}.wasm").write_bytes(case.wasm())
        lines += ["[[middleware]]", f'name = "{case.name}"', f'module = "{case.name}.wasm"',
                  f'on_error = "{policy}"', ""]
    (folder / "mwhost.toml").write_text("\n".join(lines))
    return str(folder / "mwhost.toml")


@pytest.mark.slow
def test_gunicorn_answers_unsendable_output_with_the_stage_problem(tmp_path):
    """Under gunicorn each class gets the stage's problem+json (not gunicorn's text/html 500),
    the next request succeeds, and no worker is replaced."""
    with serve(tmp_path, "--config", write_config(tmp_path, CASES, "fail_closed"), workers=2) as served:
        pids = served.worker_pids()
        for case in CASES:
            status, headers, body = served.request("GET", case.trigger_path())
            assert status == 503, (case.name, status, body[:200])
            assert headers["content-type"] == "application/problem+json", case.name
            assert json.loads(body)["stage"] == case.name
            assert served.request("GET", "/ok")[0] == 200, case.name
        assert served.worker_pids() == pids
        assert "Internal Server Error" not in served.output()
