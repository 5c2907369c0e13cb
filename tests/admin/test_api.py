"""The admin API in-process, through falcon.testing: the flows, auth modes, limits, the audit log."""

from __future__ import annotations

import json

import pytest

from mwhost.admin import AuditLog, mint_token
from mwhost.admin.auth import load_private_key
from mwhost.admin.signatures import keygen
from tests.admin.support import WASM, admin_client, bearer, tagger
from tests.server.gunicorn_process import ADMIN_SECRET
from tests.wat import const_guest, guest

AUTH = bearer()


def put(client, name: str, wasm: bytes, headers: dict | None = None, **params):
    return client.simulate_put(f"/_admin/middlewares/{name}", body=wasm, params=params,
                               headers={**AUTH, "Content-Type": WASM, **(headers or {})})


def ctx(client) -> dict:
    result = client.simulate_get("/")
    assert result.status_code == 200, result.text
    return result.json["ctx"]


def test_upload_replace_roll_back_and_remove_change_what_this_process_serves(tmp_path):
    client = admin_client(tmp_path, ("tag", tagger("v", "1"), {}))
    assert ctx(client) == {"v": "1"}
    result = put(client, "tag", tagger("v", "2"))
    assert result.status_code == 201 and result.json["changed"] and result.json["probes"] == 4
    assert result.headers["location"] == "/_admin/middlewares/tag/versions"
    assert ctx(client) == {"v": "2"}
    versions = client.simulate_get("/_admin/middlewares/tag/versions", headers=AUTH).json
    assert [v["active"] for v in versions["versions"]] == [True, False]
    assert versions["active"] == result.json["sha256"]
    rolled = client.simulate_post("/_admin/middlewares/tag/rollback", headers=AUTH)
    assert rolled.status_code == 200 and rolled.json["previous"] == result.json["sha256"]
    assert ctx(client) == {"v": "1"}
    # "previous" is the version replaced last: a second rollback undoes the first
    client.simulate_post("/_admin/middlewares/tag/rollback", headers=AUTH)
    assert ctx(client) == {"v": "2"}
    first = versions["versions"][1]["sha256"]
    named = client.simulate_post("/_admin/middlewares/tag/rollback", params={"sha256": first[:10]}, headers=AUTH)
    assert named.status_code == 200 and named.json["sha256"] == first and ctx(client) == {"v": "1"}
    removed = client.simulate_delete("/_admin/middlewares/tag", headers=AUTH)
    assert removed.status_code == 200 and removed.json["removed"] == first
    assert ctx(client) == {}
    # a removed stage keeps its versions: a rollback brings it back
    back = client.simulate_post("/_admin/middlewares/tag/rollback", headers=AUTH)
    assert back.status_code == 200 and back.json["previous"] is None and ctx(client) == {"v": "1"}


def test_the_same_version_and_settings_again_writes_nothing(tmp_path):
    client = admin_client(tmp_path)
    first = put(client, "tag", tagger("v", "1"))
    again = put(client, "tag", tagger("v", "1"))
    assert again.status_code == 200 and not again.json["changed"]
    assert again.json["generation"] == first.json["generation"]


def test_positions_and_reorder(tmp_path):
    client = admin_client(tmp_path, ("a", tagger("a", "1"), {}), ("b", tagger("b", "1"), {}))
    assert put(client, "first", tagger("f", "1"), position="0").json["position"] == 0
    assert put(client, "last", tagger("l", "1")).json["position"] == 3
    assert put(client, "a", tagger("a", "2")).json["position"] == 1  # a replaced stage keeps its place
    order = ["last", "b", "a", "first"]
    result = client.simulate_put("/_admin/pipeline/order", json={"order": order}, headers=AUTH)
    assert result.status_code == 200 and result.json["order"] == order
    assert [s["name"] for s in client.simulate_get("/_admin/pipeline", headers=AUTH).json["stages"]] == order


def test_settings_left_out_are_kept_when_a_stage_is_replaced(tmp_path):
    client = admin_client(tmp_path)
    put(client, "tag", tagger("v", "1"), on_error="fail_open", timeout_ms="250", config='{"k": "v"}')
    entry = put(client, "tag", tagger("v", "2")).json
    assert (entry["on_error"], entry["timeout_ms"], entry["config"]) == ("fail_open", 250, {"k": "v"})
    # and a config the new version refuses says where it came from
    refused = put(client, "tag", guest(init="(i32.const 1)"))
    assert refused.status_code == 422 and "config was kept from the current version" in refused.json["detail"]


def test_only_keep_versions_earlier_versions_are_kept(tmp_path):
    client = admin_client(tmp_path, keep_versions=2)
    shas = [put(client, "tag", tagger("v", str(i))).json["sha256"] for i in range(5)]
    versions = client.simulate_get("/_admin/middlewares/tag/versions", headers=AUTH).json["versions"]
    assert [v["sha256"] for v in versions] == [shas[4], shas[3], shas[2]]


def test_pipeline_lists_stages_with_settings_and_generations(tmp_path):
    client = admin_client(tmp_path, ("a", tagger("a", "1"), {"timeout_ms": 50}))
    body = client.simulate_get("/_admin/pipeline", headers=AUTH).json
    assert body["generation"] == body["served_generation"] == 1
    (stage,) = body["stages"]
    assert stage["name"] == "a" and stage["timeout_ms"] == 50 and stage["origin"] == "config"
    assert stage["position"] == 0 and stage["kept_versions"] == 0 and len(stage["sha256"]) == 64


def test_no_stage_sees_admin_calls_so_a_blocking_stage_cannot_lock_operators_out(tmp_path):
    deny = const_guest({"action": "respond", "status": 403})
    client = admin_client(tmp_path, ("deny", deny, {}))
    assert client.simulate_get("/").status_code == 403
    assert client.simulate_get("/_admin/pipeline", headers=AUTH).status_code == 200
    assert client.simulate_delete("/_admin/middlewares/deny", headers=AUTH).status_code == 200
    assert client.simulate_get("/").status_code == 200


def test_without_a_secret_the_admin_api_is_shut_not_open(tmp_path):
    client = admin_client(tmp_path, secret=None)
    for method, path in [("GET", "/_admin/pipeline"), ("GET", "/_admin/health"), ("PUT", "/_admin/middlewares/x"),
                         ("GET", "/_admin/openapi.json")]:
        result = client.simulate_request(method, path, headers=AUTH, body=tagger("a", "1"))
        assert result.status_code == 503, (method, path)
        assert result.headers["content-type"] == "application/problem+json"
        assert "MWHOST_ADMIN_JWT_SECRET" in result.json["detail"]


def test_the_secret_from_the_environment_wins(tmp_path, monkeypatch):
    env_secret = "from-the-environment-0123456789-0123456789"
    monkeypatch.setenv("MWHOST_ADMIN_JWT_SECRET", env_secret)
    client = admin_client(tmp_path)
    assert client.simulate_get("/_admin/health", headers=AUTH).status_code == 401
    assert client.simulate_get("/_admin/health", headers=bearer(env_secret)).status_code == 200


def test_eddsa_tokens_are_checked_with_the_configured_public_key(tmp_path):
    private, public = keygen(tmp_path / "admin")
    client = admin_client(tmp_path, secret=None, jwt_public_key=public)
    key = load_private_key(private)
    good = {"Authorization": f"Bearer {mint_token(key)}"}
    assert client.simulate_get("/_admin/health", headers=good).status_code == 200
    other = load_private_key(keygen(tmp_path / "other")[0])
    result = client.simulate_get("/_admin/health", headers={"Authorization": f"Bearer {mint_token(other)}"})
    assert result.status_code == 401 and "signature does not match" in result.json["detail"]
    # an HS256 token is refused by algorithm, whatever secret made it
    result = client.simulate_get("/_admin/health", headers=AUTH)
    assert result.status_code == 401 and "'HS256' are not accepted" in result.json["detail"]


@pytest.mark.parametrize("claims", [{"scope": "read mwhost:admin"}, {"scope": ["mwhost:admin"]},
                                    {"scope": "", "scp": ["mwhost:admin"]}])
def test_the_scope_may_be_a_string_or_a_list(tmp_path, claims):
    client = admin_client(tmp_path)
    assert client.simulate_get("/_admin/health", headers=bearer(**claims)).status_code == 200


def test_a_too_short_secret_is_a_config_error(tmp_path):
    from mwhost.errors import ConfigError

    with pytest.raises(ConfigError, match="at least 32"):
        admin_client(tmp_path, secret="short")


def test_a_body_over_the_limit_is_refused_with_413(tmp_path):
    client = admin_client(tmp_path, max_module_mb=1)
    result = put(client, "big", b"\0asm\x01\0\0\0" + bytes(1024 * 1024))
    assert result.status_code == 413 and "max_module_mb" in result.json["detail"]


def test_every_write_is_in_the_audit_log_with_who_what_sha_and_result(tmp_path):
    client = admin_client(tmp_path)
    ok = put(client, "tag", tagger("v", "1"), headers=bearer(sub="alice")).json
    put(client, "tag", b"not wasm", headers=bearer(sub="bob"))
    client.simulate_delete("/_admin/middlewares/tag", headers=bearer(sub="carol"))
    client.simulate_put("/_admin/middlewares/tag", headers=bearer(sub="dave", scope="nope"), body=b"x")
    client.simulate_put("/_admin/middlewares/tag", body=b"x")  # no token: not audited
    records = AuditLog(tmp_path / "data" / "audit.log").read()
    assert [(r["who"], r["action"], r["result"], r["status"]) for r in records] == [
        ("alice", "upload", "ok", 201), ("bob", "upload", "refused", 400), ("carol", "remove", "ok", 200),
        ("dave", "PUT /_admin/middlewares/tag", "refused", 403)]
    assert records[0]["sha256"] == ok["sha256"] and records[0]["generation"] == ok["generation"]
    assert records[1]["stage"] == "tag" and "not a WebAssembly binary" in records[1]["detail"]
    assert records[2]["sha256"] == ok["sha256"]
    assert all(r["at"].endswith("+00:00") for r in records)


def test_admin_errors_outside_the_routes_are_problems_too(tmp_path):
    client = admin_client(tmp_path)
    result = client.simulate_request("PATCH", "/_admin/middlewares/x", headers=AUTH)
    assert result.status_code == 405 and result.headers["content-type"] == "application/problem+json"
    assert "allowed: DELETE, PUT, OPTIONS" in result.json["detail"]
    result = client.simulate_get("/_admin/nope")
    assert result.status_code == 404 and result.headers["content-type"] == "application/problem+json"
    # the app's own paths keep falcon's rendering
    assert client.simulate_get("/anything").status_code == 200


def test_the_openapi_document_lists_every_admin_route(tmp_path):
    client = admin_client(tmp_path)
    document = client.simulate_get("/_admin/openapi.json", headers=AUTH).json
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/_admin/pipeline", "/_admin/pipeline/order", "/_admin/middlewares/{name}",
        "/_admin/middlewares/{name}/versions", "/_admin/middlewares/{name}/rollback", "/_admin/health",
        "/_admin/openapi.json", "/_admin/middlewares/{name}/rollout", "/_admin/audit", "/_admin/fleet",
        *(f"/_admin/middlewares/{{name}}/rollout/{action}" for action in ("promote", "abort", "pause", "resume"))}
    upload = document["paths"]["/_admin/middlewares/{name}"]["put"]
    names = {p["name"] for p in upload["parameters"]}
    assert {"position", "config", "on_error", "timeout_ms", "max_memory_mb", "samples"} <= names
    json.dumps(document)  # plain JSON all the way down
    assert ADMIN_SECRET not in json.dumps(document)
