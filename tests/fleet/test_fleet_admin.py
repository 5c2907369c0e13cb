"""The admin API of a fleet host, in-process (falcon TestClient) on a real redis-server."""

from __future__ import annotations

import dataclasses

import falcon.testing

from mwhost import create_app, testing
from mwhost.registry import ManifestStore
from mwhost.settings import AdminSettings, FleetSettings
from tests.admin.support import bearer, tagger
from tests.server.gunicorn_process import ADMIN_SECRET

AUTH = bearer()
WASM_HEADERS = {**AUTH, "Content-Type": "application/wasm"}


def _client(tmp_path, fleet_url: str = "") -> falcon.testing.TestClient:
    settings = testing.pipeline_settings(tmp_path, ("tag", tagger("v", "config"), {}))
    settings = dataclasses.replace(settings, admin=AdminSettings(jwt_secret=ADMIN_SECRET),
                                   fleet=FleetSettings(url=fleet_url))
    return falcon.testing.TestClient(create_app(settings))


def test_a_host_without_a_fleet_answers_404_on_the_fleet_resource(tmp_path):
    """GET /_admin/fleet on a host without [fleet] is a 404 problem saying how to join one."""
    result = _client(tmp_path).simulate_get("/_admin/fleet", headers=AUTH)
    assert result.status_code == 404
    assert result.headers["content-type"] == "application/problem+json"
    assert "not in a fleet" in result.json["detail"]
    assert "fleet" not in _client(tmp_path).simulate_get("/_admin/pipeline", headers=AUTH).json


def test_admin_writes_go_to_the_fleet_and_answer_503_changing_nothing_while_redis_is_down(tmp_path, redis_server):
    """An upload on a fleet host lands in Redis; with Redis stopped the next one answers 503
    problem+json (fleet store unavailable), the local manifest keeps its generation, reads
    still answer, and /_admin/fleet says the store is unavailable."""
    client = _client(tmp_path, redis_server.url)
    first = client.simulate_put("/_admin/middlewares/tag", body=tagger("v", "one"), headers=WASM_HEADERS)
    assert first.status_code == 201, first.json
    redis = redis_server.client()
    assert int(redis.hget("mwhost:default:manifest", "generation")) == first.json["generation"]
    redis.close()

    redis_server.stop()
    refused = client.simulate_put("/_admin/middlewares/tag", body=tagger("v", "two"), headers=WASM_HEADERS)
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json["detail"].startswith("fleet store unavailable")
    assert ManifestStore(tmp_path / "data").read().generation == first.json["generation"]
    pipeline = client.simulate_get("/_admin/pipeline", headers=AUTH)
    assert pipeline.status_code == 200 and pipeline.json["generation"] == first.json["generation"]
    fleet = client.simulate_get("/_admin/fleet", headers=AUTH)
    assert fleet.status_code == 503 and fleet.json["detail"].startswith("fleet store unavailable")


def test_reading_the_pipeline_never_calls_redis_and_has_no_fleet_part(tmp_path, redis_server):
    """GET /_admin/pipeline on a fleet host sends Redis no command at all (the fleet's status
    is GET /_admin/fleet only), so a stalled Redis never slows a read."""
    client = _client(tmp_path, redis_server.url)
    assert client.simulate_put("/_admin/middlewares/tag", body=tagger("v", "one"), headers=WASM_HEADERS).status_code == 201
    redis = redis_server.client()
    redis.config_resetstat()
    for _ in range(3):
        pipeline = client.simulate_get("/_admin/pipeline", headers=AUTH)
        assert pipeline.status_code == 200 and "fleet" not in pipeline.json
    stats = redis.info("commandstats")
    assert set(stats) <= {"cmdstat_config|resetstat", "cmdstat_info"}, stats
    assert client.simulate_get("/_admin/fleet", headers=AUTH).json["generation"] == pipeline.json["generation"]
    redis.close()


def test_the_audit_endpoint_of_a_fleet_host_reads_the_fleets_stream_and_its_file_while_redis_is_down(
        tmp_path, redis_server):
    """GET /_admin/audit on a fleet host answers every host's writes from the fleet's stream
    (source "fleet", newest first); with Redis stopped it answers its own file, saying so
    (source "local" and why)."""
    here = _client(tmp_path / "here", redis_server.url)
    there = _client(tmp_path / "there", redis_server.url)
    assert there.simulate_put("/_admin/middlewares/other", body=tagger("v", "there"),
                              headers=WASM_HEADERS).status_code == 201
    assert here.simulate_put("/_admin/middlewares/tag", body=tagger("v", "here"), headers=WASM_HEADERS).status_code == 201
    fleet = here.simulate_get("/_admin/audit", headers=AUTH).json
    assert fleet["source"] == "fleet"
    assert [entry["stage"] for entry in fleet["entries"][:2]] == ["tag", "other"]
    redis_server.stop()
    local = here.simulate_get("/_admin/audit", headers=AUTH)
    assert local.status_code == 200 and local.json["source"] == "local"
    assert "fleet store unavailable" in local.json["fleet_error"]
    assert {entry["stage"] for entry in local.json["entries"]} == {"tag"}
