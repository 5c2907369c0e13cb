"""A canary rollout driven end to end with the CLI against real gunicorn (3 workers): start,
status, list, the force header in every worker, pause, resume, abort, and wrong invocations."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.server.gunicorn_process import admin_token, mwhost_command, serve
from tests.server.test_swap import tagger, wait_for, write_config

pytestmark = pytest.mark.slow

WORKERS = 3


def mwhost(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(mwhost_command(*args), capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


def ok(*args: str, env: dict) -> str:
    result = mwhost(*args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(*args: str, env: dict) -> str:
    """A wrong invocation: exit 2, one line on stderr, nothing on stdout, no traceback."""
    result = mwhost(*args, env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def answers(served, variant: str, count: int = 12) -> set[str]:
    """The ``tag`` values of ``count`` requests forced to ``variant`` (each on a new connection,
    so gunicorn spreads them over the workers)."""
    seen = set()
    for _ in range(count):
        status, _, body = served.request("GET", "/", {"x-mwhost-variant": variant})
        assert status == 200, body
        seen.add(json.loads(body)["ctx"].get("tag"))
    return seen


def test_a_canary_driven_by_the_cli_from_start_to_abort(tmp_path):
    """`mwhost rollout start` puts the candidate beside the baseline in every worker (the force
    header picks either), `status` and `list` show it, pause/resume/abort change its state, and
    after the abort every worker serves the baseline while the candidate stays a kept version."""
    config = write_config(tmp_path, [("tag", tagger("tag", "v1"))])
    candidate = tmp_path / "candidate.wasm"
    candidate.write_bytes(tagger("tag", "v2"))
    with serve(tmp_path, "--config", config, workers=WORKERS) as served:
        env = {"MWHOST_URL": served.url, "MWHOST_TOKEN": admin_token(sub="operator")}
        started = ok("rollout", "start", "tag", str(candidate), "--steps", "50,100", "--step-s", "3600",
                     "--key", "header:x-user", "--min-requests", "20", env=env)
        assert "tag: canary rollout of" in started and "at 50%" in started

        status = ok("rollout", "status", "tag", env=env)
        assert "tag: canary running" in status and "at 50% (step 1 of 2)" in status
        assert "steps 50%, 100%; each lasts at least 3600 s and 20 candidate requests; bucketed by header:x-user" \
            in status
        listing = ok("list", env=env)
        assert "1 rollout(s) in progress" in listing
        assert any(line.split()[:5] == ["tag", "canary", "running", "50%", "1/2"] for line in listing.splitlines())

        # every worker follows the manifest: the force header reaches either variant everywhere
        assert wait_for(lambda: answers(served, "candidate") == {"v2"}, timeout=10), answers(served, "candidate")
        assert answers(served, "baseline") == {"v1"}

        paused = ok("rollout", "pause", "tag", "--reason", "checking the logs", env=env)
        assert "is paused (paused by operator: checking the logs" in paused
        assert "reason: paused by operator: checking the logs" in ok("rollout", "status", "tag", env=env)
        assert "409 Conflict" in refused("rollout", "pause", "tag", env=env)
        assert "is running (resumed by operator" in ok("rollout", "resume", "tag", env=env)

        aborted = ok("rollout", "abort", "tag", env=env)
        assert "is aborted (aborted by operator" in aborted
        status = ok("rollout", "status", "tag", env=env)
        assert "canary aborted" in status and "is out of the traffic (kept)" in status
        assert "rollout(s) in progress" not in ok("list", env=env)
        assert wait_for(lambda: answers(served, "candidate") == {"v1"}, timeout=10), answers(served, "candidate")

        versions = ok("list", "tag", env=env)
        assert "2 version(s)" in versions
        candidate_sha = started.split("rollout of ")[1].split()[0]
        assert candidate_sha in versions
        assert "409 Conflict: the rollout of stage 'tag' has ended" in refused("rollout", "resume", "tag", env=env)


def test_wrong_rollout_invocations_exit_2_with_one_line(tmp_path):
    """Missing arguments, bad numbers, flags that do not go together, unknown actions, a missing
    module file and a server refusal each exit 2 with one line and no traceback."""
    config = write_config(tmp_path, [("tag", tagger("tag", "v1"))])
    candidate = tmp_path / "candidate.wasm"
    candidate.write_bytes(tagger("tag", "v2"))
    with serve(tmp_path, "--config", config, workers=WORKERS) as served:
        env = {"MWHOST_URL": served.url, "MWHOST_TOKEN": admin_token()}
        assert "required: ACTION" in refused("rollout", env=env)
        assert "required: MODULE" in refused("rollout", "start", "tag", env=env)
        assert "invalid float value" in refused("rollout", "start", "tag", str(candidate), "--step-s", "soon",
                                                env=env)
        assert "invalid choice: 'restart'" in refused("rollout", "restart", "tag", env=env)
        assert "--percent is for --shadow" in refused("rollout", "start", "tag", str(candidate), "--percent", "5",
                                                      env=env)
        assert "--steps is for a canary" in refused("rollout", "start", "tag", str(candidate), "--shadow",
                                                    "--steps", "1,100", env=env)
        assert "missing.wasm" in refused("rollout", "start", "tag", str(tmp_path / "missing.wasm"), env=env)
        assert "400 Bad Request: steps must increase: 1 follows 5" in refused(
            "rollout", "start", "tag", str(candidate), "--steps", "5,1,100", env=env)
        assert "400 Bad Request: key 'ip' is not one of" in refused(
            "rollout", "start", "tag", str(candidate), "--key", "ip", env=env)
        assert "404 Not Found: there is no stage 'ghost'" in refused("rollout", "start", "ghost", str(candidate),
                                                                      env=env)
        assert "404 Not Found: stage 'tag' has never had a rollout" in refused("rollout", "status", "tag", env=env)
        shadow = ok("rollout", "start", "tag", str(candidate), "--shadow", "--percent", "25", env=env)
        assert "tag: shadow rollout of" in shadow and "at 25%" in shadow
        assert "sees a copy of 25% of requests" in ok("rollout", "status", "tag", env=env)
        assert "409 Conflict: stage 'tag' already has a shadow rollout" in refused(
            "rollout", "start", "tag", str(candidate), env=env)
