"""Every Go example (WASI reactors) through the host, and a misbehaving Go guest."""

from __future__ import annotations

import json
import logging
import re

import pytest

from tests.conftest import ROOT

MISBEHAVE = ROOT / "build" / "test-guests" / "misbehave.wasm"


# ---- request_id ---------------------------------------------------------------------------

def test_request_id_adds_an_id_to_the_request_ctx_and_response(example_client):
    result = example_client("request_id").simulate_get("/")
    rid = result.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert ["x-request-id", rid] in result.json["headers"]
    assert result.json["ctx"] == {"request_id": rid}


def test_request_id_gives_each_request_its_own_id(example_client):
    app = example_client("request_id")
    ids = {app.simulate_get("/").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


def test_request_id_keeps_a_sane_incoming_id_and_replaces_a_bad_one(example_client):
    app = example_client("request_id", {"header": "x-correlation-id"})
    kept = app.simulate_get("/", headers={"X-Correlation-Id": "abc-123"})
    assert kept.headers["x-correlation-id"] == "abc-123" and kept.json["ctx"]["request_id"] == "abc-123"
    replaced = app.simulate_get("/", headers={"X-Correlation-Id": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-correlation-id"])


# ---- cors ---------------------------------------------------------------------------------

CORS = {"allowed_origins": ["https://app.example"], "allowed_methods": ["GET", "PUT"],
        "allowed_headers": ["x-token"], "expose_headers": ["x-total"], "max_age": 600}


def test_cors_answers_an_allowed_preflight_itself(example_client):
    result = example_client("cors", CORS).simulate_options("/items", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "x-token"})
    assert result.status_code == 204
    assert result.headers["access-control-allow-origin"] == "https://app.example"
    assert "PUT" in result.headers["access-control-allow-methods"]
    assert "x-token" in result.headers["access-control-allow-headers"].lower()
    assert result.headers["access-control-max-age"] == "600"
    assert "origin" in result.headers["vary"]


@pytest.mark.parametrize("origin, method", [("https://evil.example", "PUT"), ("https://app.example", "DELETE")])
def test_cors_refuses_a_disallowed_preflight_without_cors_headers(example_client, origin, method):
    result = example_client("cors", CORS).simulate_options("/items", headers={
        "Origin": origin, "Access-Control-Request-Method": method})
    assert result.status_code == 403
    assert not any(name.startswith("access-control-") for name in result.headers)


def test_cors_marks_actual_requests_from_allowed_origins(example_client):
    result = example_client("cors", CORS).simulate_get("/items", headers={"Origin": "https://app.example"})
    assert result.status_code == 200
    assert result.headers["access-control-allow-origin"] == "https://app.example"
    assert result.headers["access-control-expose-headers"].lower() == "x-total"
    assert "origin" in result.headers["vary"]


def test_cors_leaves_requests_without_origin_or_from_other_origins_alone(example_client):
    app = example_client("cors", CORS)
    for headers in ({}, {"Origin": "https://evil.example"}):
        result = app.simulate_get("/items", headers=headers)
        assert result.status_code == 200
        assert "access-control-allow-origin" not in result.headers


# ---- rate_limit ---------------------------------------------------------------------------

def test_rate_limit_answers_429_with_retry_after_past_the_burst(example_client):
    app = example_client("rate_limit", {"rate_per_s": 0.5, "burst": 3})
    statuses = [app.simulate_get("/", remote_addr="198.51.100.1").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = app.simulate_get("/", remote_addr="198.51.100.1")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    # another client has its own bucket
    assert app.simulate_get("/", remote_addr="198.51.100.2").status_code == 200


# ---- a misbehaving Go guest ---------------------------------------------------------------

@pytest.fixture
def misbehave():
    assert MISBEHAVE.exists(), f"{MISBEHAVE} is missing: run scripts/setup.sh"
    return MISBEHAVE


def test_go_stdout_and_stderr_reach_the_host_log_attributed_to_the_stage(example_client, misbehave, caplog):
    app = example_client("noisy", module=misbehave)
    with caplog.at_level(logging.INFO, "mwhost.guest"):
        assert app.simulate_get("/print").status_code == 200
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split("] ", 1)[1] for line in lines] == [
        "stdout: stdout line 1", "stdout: stdout line 2", "stdout: stdout line 3",
        "stderr: stderr line 1", "stderr: stderr line 2"]
    assert all(line.startswith("[noisy@") for line in lines)


def test_go_output_floods_are_bounded_per_call(example_client, misbehave, caplog):
    # NOTE: every WASI write is a callback into Python; 1 MiB in 1 KiB writes needs more than
    # the default 100 ms, and the point here is the bound on what reaches the log.
    app = example_client("noisy", module=misbehave, timeout_ms=2000)
    with caplog.at_level(logging.INFO, "mwhost.guest"):
        assert app.simulate_get("/flood").status_code == 200
    logged = sum(len(r.getMessage()) for r in caplog.records if "stdout:" in r.getMessage())
    assert logged <= 16 * 1024 + 1000
    assert "bytes dropped" in caplog.text


@pytest.mark.parametrize("path", ["/panic", "/oom"])
def test_a_go_fatal_error_fails_the_request_by_policy_and_the_next_works(example_client, misbehave, path, caplog):
    closed = example_client("go", module=misbehave, max_memory_mb=64)
    failed = closed.simulate_get(path)
    assert failed.status_code == 503 and json.loads(failed.text)["stage"] == "go"
    after = closed.simulate_get("/")
    assert after.status_code == 200 and after.json["ctx"] == {"go": "ok"}
    opened = example_client("go", module=misbehave, max_memory_mb=64, on_error="fail_open")
    assert opened.simulate_get(path).status_code == 200
    assert "stage go failed in the request phase" in caplog.text


# ---- add_header_go ------------------------------------------------------------------------

def test_add_header_go_does_what_the_rust_add_header_does(example_client):
    config = {"request_headers": {"x-a": "1"}, "response_headers": {"x-served-by": "mwhost"}}
    for name in ("add_header_go", "add_header"):
        result = example_client(name, config).simulate_get("/", headers={"X-A": "old"})
        assert ["x-a", "1"] in result.json["headers"] and ["x-a", "old"] not in result.json["headers"]
        assert result.headers["x-served-by"] == "mwhost"
