"""Rollouts through the admin API in-process (falcon.testing): starting one, every bad input
refused with a problem naming it and changing nothing, the operator controls, and uploads,
rollbacks and removals ending an active rollout in the same manifest write."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import falcon.testing
import pytest

from mwhost import create_app, testing
from mwhost.errors import ConfigError
from mwhost.pipeline.bucket import bucket
from mwhost.registry import CompileCache, ManifestStore, ModuleStore
from mwhost.runtime import default_runtime
from mwhost.settings import AdminSettings, RolloutSettings, settings_from_dict
from mwhost.watch.drop import DropFolder
from tests.admin.support import WASM, admin_client, bearer, tagger
from tests.server.gunicorn_process import ADMIN_SECRET
from tests.wat import guest

AUTH = bearer()
V1, V2, V3 = tagger("tag", "v1"), tagger("tag", "v2"), tagger("tag", "v3")
CANARY = {"rollout": "canary", "steps": "50,100", "step_s": "3600"}


def put(client, name: str, wasm: bytes, **params):
    return client.simulate_put(f"/_admin/middlewares/{name}", body=wasm, params=params,
                               headers={**AUTH, "Content-Type": WASM})


def post(client, path: str, **params):
    return client.simulate_post(path, params=params, headers=AUTH)


def served_tag(client, variant: str | None = None, **headers) -> str:
    """The ``tag`` ctx value that answered a plain request (optionally forced to ``variant``)."""
    if variant:
        headers["x-mwhost-variant"] = variant
    result = client.simulate_get("/", headers=headers)
    assert result.status_code == 200, result.text
    return result.json["ctx"].get("tag", "")


def manifest_bytes(tmp_path: pathlib.Path) -> bytes:
    return (tmp_path / "data" / "manifest.json").read_bytes()


def audit(tmp_path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "data" / "audit.log").read_text().splitlines()]


@pytest.fixture
def client(tmp_path):
    return admin_client(tmp_path, ("tag", V1, {}), ("other", tagger("other", "1"), {}))


@pytest.fixture
def canary(client):
    """``client`` with a canary of V2 on stage tag at 50%, for an hour per step."""
    started = put(client, "tag", V2, **CANARY)
    assert started.status_code == 201, started.text
    return client


# ---- starting ----------------------------------------------------------------------------

def test_a_canary_starts_beside_the_active_version_and_the_force_header_picks_either(client, tmp_path):
    """PUT ?rollout=canary answers 201 with the rollout, the active version stays the baseline,
    and x-mwhost-variant routes a request to the candidate or the baseline."""
    before = client.simulate_get("/_admin/pipeline", headers=AUTH).json
    started = put(client, "tag", V2, **CANARY, key="header:x-user", min_requests="10", max_failure_rate="0.05",
                  max_error_rate_delta="0.02", max_latency_ratio="1.5", timeout_ms="200")
    assert started.status_code == 201, started.text
    assert started.headers["location"] == "/_admin/middlewares/tag/rollout"
    body = started.json
    assert (body["state"], body["kind"], body["percent"], body["steps"], body["step"]) == \
        ("running", "canary", 50, [50, 100], 0)
    assert body["baseline"] == before["stages"][0]["sha256"] and body["candidate"] != body["baseline"]
    assert (body["key"], body["step_s"]) == ("header:x-user", 3600.0)
    assert body["gates"] == {"min_requests": 10, "max_failure_rate": 0.05, "max_error_rate_delta": 0.02,
                             "max_latency_ratio": 1.5}
    pipeline = client.simulate_get("/_admin/pipeline", headers=AUTH).json
    assert pipeline["stages"][0]["sha256"] == body["baseline"]  # the active version did not change
    assert pipeline["rollouts"] == [{"stage": "tag", "kind": "canary", "state": "running", "percent": 50, "step": 0,
                                     "steps": [50, 100], "candidate": body["candidate"],
                                     "baseline": body["baseline"], "reason": ""}]
    candidate = ManifestStore(tmp_path / "data").read().rollouts["tag"].candidate
    assert candidate["timeout_ms"] == 200  # stage settings apply to the candidate
    assert served_tag(client, "candidate") == "v2" and served_tag(client, "baseline") == "v1"
    assert client.simulate_get("/_admin/middlewares/tag/rollout", headers=AUTH).json["candidate"] == body["candidate"]
    record = audit(tmp_path)[-1]
    assert (record["action"], record["result"], record["status"], record["who"], record["kind"]) == \
        ("rollout.start", "ok", 201, "tests", "canary")


def test_a_shadow_starts_with_its_percent_and_never_a_step(client):
    """rollout=shadow takes percent (default 100) and has the single step 100."""
    started = put(client, "tag", V2, rollout="shadow", percent="30")
    assert started.status_code == 201, started.text
    assert (started.json["kind"], started.json["percent"], started.json["steps"]) == ("shadow", 30, [100])
    assert served_tag(client, "candidate") == "v1"  # a shadow's actions are never applied


def test_force_header_off_in_settings_leaves_requests_to_their_bucket(tmp_path):
    """[rollout] allow_force_header = false: x-mwhost-variant: candidate no longer reaches the
    candidate; a request's bucket alone decides (here: a user outside the 1% share)."""
    settings = testing.pipeline_settings(tmp_path, ("tag", V1, {}))
    settings = dataclasses.replace(settings, admin=AdminSettings(jwt_secret=ADMIN_SECRET),
                                   rollout=RolloutSettings(allow_force_header=False))
    client = falcon.testing.TestClient(create_app(settings))
    assert put(client, "tag", V2, rollout="canary", steps="1,100", key="header:x-user").status_code == 201
    salt = ManifestStore(tmp_path / "data").read().rollouts["tag"].id
    outside = next(f"user-{i}" for i in range(1000) if bucket(salt, f"user-{i}") >= 100)
    inside = next(f"user-{i}" for i in range(100_000) if bucket(salt, f"user-{i}") < 100)
    assert served_tag(client, "candidate", **{"x-user": outside}) == "v1"
    assert served_tag(client, "baseline", **{"x-user": inside}) == "v2"


def test_the_rollout_table_is_declared_checked_and_defaults_to_the_force_header_on():
    """[rollout] keys have defaults, refuse unknown keys and wrong types."""
    assert settings_from_dict({}).rollout == RolloutSettings(allow_force_header=True, record_values=False)
    assert settings_from_dict({"rollout": {"record_values": True}}).rollout.record_values is True
    with pytest.raises(ConfigError, match="unknown key 'force'"):
        settings_from_dict({"rollout": {"force": True}})
    with pytest.raises(ConfigError, match="'allow_force_header' must be bool"):
        settings_from_dict({"rollout": {"allow_force_header": "no"}})


# ---- bad inputs: 400/404/409 problem+json, nothing changed ----------------------------------

BAD_STARTS = [
    # (id, stage, params, status, parameter or None, detail)
    ("unknown-key-form", "tag", {"key": "ip"}, 400, "key", "is not one of header:NAME"),
    ("header-key-without-name", "tag", {"key": "header:"}, 400, "key", "is not one of"),
    ("header-key-not-a-token", "tag", {"key": "header:x user"}, 400, "key", "no request could carry"),
    ("steps-not-increasing", "tag", {"steps": "5,1,100"}, 400, "steps", "steps must increase: 1 follows 5"),
    ("steps-repeated", "tag", {"steps": "5,5,100"}, 400, "steps", "must increase"),
    ("steps-not-ending-at-100", "tag", {"steps": "1,5,50"}, 400, "steps", "must end at 100"),
    ("steps-zero", "tag", {"steps": "0,100"}, 400, "steps", "1..100"),
    ("steps-over-100", "tag", {"steps": "50,101"}, 400, "steps", "1..100"),
    ("steps-not-numbers", "tag", {"steps": "1,five,100"}, 400, "steps", "'five' is not one"),
    ("steps-empty-piece", "tag", {"steps": "1,,100"}, 400, "steps", "whole percentages"),
    ("steps-unicode-digits", "tag", {"steps": "\u0665,100"}, 400, "steps", "whole percentages"),
    ("negative-step-s", "tag", {"step_s": "-1"}, 400, "step_s", "step_s must be 0 or more"),
    ("step-s-nan", "tag", {"step_s": "nan"}, 400, "step_s", "finite"),
    ("step-s-infinite", "tag", {"step_s": "1e999"}, 400, "step_s", "finite"),
    ("step-s-text", "tag", {"step_s": "soon"}, 400, "step_s", "must be a number"),
    ("min-requests-zero", "tag", {"min_requests": "0"}, 400, "min_requests", "1..1000000000"),
    ("min-requests-fraction", "tag", {"min_requests": "1.5"}, 400, "min_requests", "must be an integer"),
    ("failure-rate-over-1", "tag", {"max_failure_rate": "1.5"}, 400, "max_failure_rate", "at most 1"),
    ("error-delta-negative", "tag", {"max_error_rate_delta": "-0.1"}, 400, "max_error_rate_delta", "0 or more"),
    ("latency-ratio-zero", "tag", {"max_latency_ratio": "0"}, 400, "max_latency_ratio", "greater than 0"),
    ("percent-on-a-canary", "tag", {"percent": "10"}, 400, "percent", "not for rollout=canary"),
    ("steps-on-a-shadow", "tag", {"rollout": "shadow", "steps": "1,100"}, 400, "steps", "not for rollout=shadow"),
    ("shadow-percent-zero", "tag", {"rollout": "shadow", "steps": None, "percent": "0"}, 400, "percent", "1..100"),
    ("unknown-kind", "tag", {"rollout": "blue-green"}, 400, "rollout", "rollout must be one of canary, shadow"),
    ("kind-empty", "tag", {"rollout": ""}, 400, "rollout", "rollout must be one of canary, shadow, got ''"),
    ("kind-twice", "tag", {"rollout": ["canary", "shadow"]}, 400, "rollout", "given 2 times"),
    ("position-with-a-rollout", "tag", {"position": "0"}, 400, "position", "does not apply to a rollout"),
    ("unknown-parameter", "tag", {"speed": "fast"}, 400, "speed", "unknown parameter 'speed'"),
    ("bad-stage-setting", "tag", {"timeout_ms": "0"}, 400, "timeout_ms", "timeout_ms must be greater than 0"),
    ("rollout-parameter-without-rollout", "tag", {"rollout": None, "step_s": None, "steps": "1,100"}, 400, "steps",
     "add rollout=canary or rollout=shadow"),
    ("missing-stage", "ghost", {}, 404, None, "no stage 'ghost' to roll out"),
    ("same-version-and-settings", "tag", {"body": V1}, 409, None, "nothing to roll out"),
    ("not-wasm", "tag", {"body": b"not wasm"}, 400, None, "not a WebAssembly binary"),
    ("probe-traps", "tag", {"body": guest("(unreachable)")}, 422, None, "trap"),
]


@pytest.mark.parametrize("case", BAD_STARTS, ids=[case[0] for case in BAD_STARTS])
def test_a_bad_rollout_start_gets_a_problem_naming_what_is_wrong_and_changes_nothing(client, tmp_path, case):
    """Each bad start answers its 4xx problem+json (naming the parameter), writes no manifest
    generation and leaves the stage without a rollout."""
    _, stage, overrides, status, parameter, detail = case
    params = {**CANARY, **overrides}
    body = params.pop("body", V2)
    params = {k: v for k, v in params.items() if v is not None}
    before = manifest_bytes(tmp_path)
    result = put(client, stage, body, **params)
    assert result.status_code == status, result.text
    assert result.headers["content-type"] == "application/problem+json"
    assert detail in result.json["detail"]
    assert result.json.get("parameter") == parameter
    assert manifest_bytes(tmp_path) == before
    assert client.simulate_get("/_admin/middlewares/tag/rollout", headers=AUTH).status_code == 404


def test_a_second_rollout_on_the_same_stage_is_a_conflict_and_changes_nothing(canary, tmp_path):
    """While a rollout is active another one on that stage gets 409, naming the active one."""
    before = manifest_bytes(tmp_path)
    second = put(canary, "tag", V3, rollout="shadow")
    assert second.status_code == 409 and "already has a canary rollout (running" in second.json["detail"]
    assert manifest_bytes(tmp_path) == before
    # another stage may have its own rollout at the same time
    assert put(canary, "other", tagger("other", "2"), rollout="canary").status_code == 201


def test_reading_a_rollout_a_stage_never_had_is_a_404(client):
    """GET .../rollout of a stage without any rollout (or no such stage) is a 404 problem."""
    for name, detail in (("tag", "never had a rollout"), ("ghost", "there is no stage 'ghost'")):
        result = client.simulate_get(f"/_admin/middlewares/{name}/rollout", headers=AUTH)
        assert result.status_code == 404 and detail in result.json["detail"]
        assert result.headers["content-type"] == "application/problem+json"


BAD_CONTROLS = [
    ("resume-a-running-rollout", "/_admin/middlewares/tag/rollout/resume", {}, 409, "running, not paused"),
    ("control-without-a-rollout", "/_admin/middlewares/other/rollout/abort", {}, 404, "never had a rollout"),
    ("control-of-a-missing-stage", "/_admin/middlewares/ghost/rollout/promote", {}, 404, "no stage 'ghost'"),
    ("unknown-control", "/_admin/middlewares/tag/rollout/restart", {}, 404, "no admin endpoint"),
    ("reason-too-long", "/_admin/middlewares/tag/rollout/pause", {"reason": "x" * 201}, 400, "at most 200"),
    ("reason-two-lines", "/_admin/middlewares/tag/rollout/pause", {"reason": "a\nb"}, 400, "one printable line"),
    ("unknown-parameter", "/_admin/middlewares/tag/rollout/abort", {"force": "1"}, 400, "unknown parameter"),
    ("bad-stage-name", "/_admin/middlewares/bad..name./rollout/abort", {}, 400, "stage name"),
]


@pytest.mark.parametrize("case", BAD_CONTROLS, ids=[case[0] for case in BAD_CONTROLS])
def test_a_control_that_does_not_apply_gets_a_problem_and_changes_nothing(canary, tmp_path, case):
    """Each wrong control answers its 4xx problem+json and writes no manifest generation."""
    _, path, params, status, detail = case
    before = manifest_bytes(tmp_path)
    result = post(canary, path, **params)
    assert result.status_code == status, result.text
    assert detail in result.json["detail"]
    assert manifest_bytes(tmp_path) == before


# ---- controls ------------------------------------------------------------------------------

def test_pause_resume_and_promote_are_audited_and_the_candidate_becomes_active(canary, tmp_path):
    """pause and resume change the state with "<action> by <sub>" reasons; a pause of a paused
    rollout is a conflict; promote makes the candidate active and keeps the baseline."""
    paused = post(canary, "/_admin/middlewares/tag/rollout/pause", reason="looking at the logs")
    assert paused.status_code == 200
    assert (paused.json["state"], paused.json["reason"]) == ("paused", "paused by tests: looking at the logs")
    assert post(canary, "/_admin/middlewares/tag/rollout/pause").status_code == 409
    resumed = post(canary, "/_admin/middlewares/tag/rollout/resume")
    assert (resumed.json["state"], resumed.json["reason"]) == ("running", "resumed by tests")
    promoted = post(canary, "/_admin/middlewares/tag/rollout/promote")
    assert (promoted.json["state"], promoted.json["reason"]) == ("promoted", "promoted by tests")
    assert served_tag(canary) == "v2" and served_tag(canary, "baseline") == "v2"
    versions = canary.simulate_get("/_admin/middlewares/tag/versions", headers=AUTH).json
    assert versions["active"] == promoted.json["candidate"]
    assert [v["sha256"] for v in versions["versions"][1:]] == [promoted.json["baseline"]]
    assert canary.simulate_get("/_admin/pipeline", headers=AUTH).json["rollouts"] == []
    assert post(canary, "/_admin/middlewares/tag/rollout/abort").status_code == 409  # it has ended
    records = [(r["action"], r["result"], r.get("reason")) for r in audit(tmp_path) if r["action"] != "rollout.start"]
    assert records == [("rollout.pause", "ok", "paused by tests: looking at the logs"),
                       ("rollout.pause", "refused", None), ("rollout.resume", "ok", "resumed by tests"),
                       ("rollout.promote", "ok", "promoted by tests"), ("rollout.abort", "refused", None)]


def test_abort_takes_the_candidate_out_of_traffic_and_keeps_it_as_a_version(canary):
    """After abort every request (forced or not) gets the baseline; the candidate is a kept version."""
    aborted = post(canary, "/_admin/middlewares/tag/rollout/abort")
    assert (aborted.json["state"], aborted.json["reason"], aborted.json["percent"]) == \
        ("aborted", "aborted by tests", 0)
    assert served_tag(canary, "candidate") == "v1"
    versions = canary.simulate_get("/_admin/middlewares/tag/versions", headers=AUTH).json
    assert versions["active"] == aborted.json["baseline"]
    assert aborted.json["candidate"] in [v["sha256"] for v in versions["versions"]]
    rolled = post(canary, "/_admin/middlewares/tag/rollback", sha256=aborted.json["candidate"])
    assert rolled.status_code == 200 and served_tag(canary) == "v2"  # a kept version like any other


# ---- uploads, rollbacks and removals end a rollout in the same write ------------------------

def _generation(client) -> int:
    return client.simulate_get("/_admin/pipeline", headers=AUTH).json["generation"]


@pytest.mark.parametrize("change, reason", [
    (lambda c: put(c, "tag", V3), "ended by an upload of"),
    (lambda c: put(c, "tag", V1), "ended by an upload of"),  # the active version again still ends it
    (lambda c: c.simulate_delete("/_admin/middlewares/tag", headers=AUTH), "ended by the removal of the stage"),
], ids=["upload", "upload-of-the-active-version", "removal"])
def test_a_change_of_the_stage_ends_its_rollout_in_the_same_manifest_write(canary, tmp_path, change, reason):
    """An upload, rollback or removal of a stage under rollout writes one generation in which the
    rollout has ended (aborted, with an audited reason naming who): never a mixed state."""
    before = _generation(canary)
    result = change(canary)
    assert result.status_code in (200, 201), result.text
    assert reason in result.json["ended_rollout"] and result.json["ended_rollout"].endswith("by tests")
    manifest = ManifestStore(tmp_path / "data").read()
    assert manifest.generation == before + 1
    rollout = manifest.rollouts["tag"]
    assert (rollout.state, rollout.reason) == ("aborted", result.json["ended_rollout"])
    assert manifest.active_rollout("tag") is None
    assert served_tag(canary, "candidate") in ("v1", "v3", "")  # never the candidate v2
    assert audit(tmp_path)[-1]["ended_rollout"] == result.json["ended_rollout"]


def test_a_rollback_ends_the_rollout_in_the_same_manifest_write(client, tmp_path):
    """A rollback of a stage under rollout writes one generation: the earlier version active and
    the rollout aborted with a reason naming the rollback and who made it."""
    earlier = put(client, "tag", V3).json["sha256"]
    put(client, "tag", V1)
    assert put(client, "tag", V2, **CANARY).status_code == 201
    before = _generation(client)
    rolled = post(client, "/_admin/middlewares/tag/rollback", sha256=earlier)
    assert rolled.status_code == 200, rolled.text
    assert rolled.json["ended_rollout"] == f"ended by a rollback to {earlier[:12]} by tests"
    manifest = ManifestStore(tmp_path / "data").read()
    assert manifest.generation == before + 1 and manifest.stage("tag").sha256 == earlier
    assert manifest.rollouts["tag"].state == "aborted"
    assert served_tag(client, "candidate") == "v3"


def test_an_upload_without_a_rollout_says_it_ended_none(client):
    """ended_rollout is null when the stage had no active rollout."""
    assert put(client, "tag", V3).json["ended_rollout"] is None


def test_a_drop_folder_version_ends_the_rollout_in_the_same_manifest_write(canary, tmp_path):
    """A new version of the stage arriving through the drop folder is an upload too: one
    generation with the new version active and the rollout aborted, naming the file."""
    data = tmp_path / "data"
    (tmp_path / "drop").mkdir()
    (tmp_path / "drop" / "tag.wasm").write_bytes(V3)
    drop = DropFolder(tmp_path / "drop", ModuleStore(data / "modules"), CompileCache(default_runtime(), data / "cache"),
                      ManifestStore(data))
    before = _generation(canary)
    assert drop.apply("tag")
    manifest = ManifestStore(data).read()
    assert manifest.generation == before + 1 and manifest.active_rollout("tag") is None
    assert manifest.rollouts["tag"].reason.startswith("ended by the drop folder's tag.wasm")
