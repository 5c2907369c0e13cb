"""Shadow runs in one process: the comparison, the ShadowStage, the runner and the web hand-off."""

from __future__ import annotations

import logging

import msgpack
import pytest

from mwhost import testing
from mwhost.abi.messages import Action
from mwhost.pipeline import RequestState
from mwhost.pipeline.rollout_stage import TALLIES
from mwhost.pipeline.shadow import (
    ENV_KEY, RUNNER, Failure, ShadowRunner, ShadowStage, compare, count, run, snapshot,
)
from mwhost.registry import StageEntry, transitions
from mwhost.registry.rollout import Rollout
from mwhost.web import live_pipeline, load_live
from tests.wat import MARKER, const_guest, explodes, marked_guest, returns

BASELINE = const_guest({"action": "continue"})
TAGGED = const_guest({"action": "continue", "ctx": {"variant": "baseline"}})
#: the same as BASELINE except on MARKER paths, where it answers 403 itself
DIFFERS = marked_guest(returns(msgpack.packb({"action": "respond", "status": 403})),
                       output=msgpack.packb({"action": "respond", "status": 403}))


def shadowed(live, candidate: bytes, *, percent: int = 100, key: str = "header:x-user", name: str = "mw"):
    """Start a shadow of ``candidate`` on stage ``name`` the way any writer does, and load it."""
    sha = live.store.put(candidate)
    baseline = live.manifests.read().stage(name)
    entry = StageEntry(name=name, sha256=sha, origin="admin").to_json()
    rollout = Rollout.start("shadow", entry, baseline.sha256, percent=percent, key=key)
    live.manifests.update(lambda m: transitions.started(m, name, rollout), source="test")
    assert live.reload()
    stage = live.holder.current.stages[0]
    assert isinstance(stage, ShadowStage)
    return stage


def live_with(tmp_path, baseline: bytes = BASELINE, **options):
    return load_live(testing.pipeline_settings(tmp_path, ("mw", baseline, options)))


def request(path: str = "/a", user: str = "u1") -> RequestState:
    return RequestState("GET", path, "q=1", [("x-user", user)], "127.0.0.1", "http")


# ---- compare ----------------------------------------------------------------------------


def test_equal_actions_compare_the_same():
    """Two continues with the same edits, header order aside, have no differences."""
    one = Action(set_headers=[("x-a", "1"), ("x-b", "2")], ctx={"k": "v"}, path="/p")
    two = Action(set_headers=[("x-b", "2"), ("x-a", "1")], ctx={"k": "v"}, path="/p")
    assert compare(one, two) == {}


def test_a_different_action_kind_is_one_difference():
    """A respond in place of a continue differs in ``action`` only (other fields are not comparable)."""
    assert compare(Action(), Action(respond=True, status=403)) == {"action": ("continue", "respond")}
    assert compare(Failure("trap"), Action()) == {"action": ("failed", "continue")}


def test_every_continue_field_is_compared():
    """Header names set, removed and for the response, path, query and ctx keys each show as a field."""
    baseline = Action(set_headers=[("x-a", "1")], remove_headers=["cookie"], response_headers=[("x-r", "1")],
                      path="/p", query="a=1", ctx={"k": "v"})
    candidate = Action(set_headers=[("x-b", "1")], remove_headers=[], response_headers=[("x-s", "1")],
                       path="/q", query="a=2", ctx={"j": "v"})
    differences = compare(baseline, candidate)
    assert set(differences) == {"set_headers", "remove_headers", "response_headers", "path", "query", "ctx"}
    assert differences["set_headers"] == (["x-a"], ["x-b"])
    assert differences["path"] == ("/p", "/q")
    assert differences["query"][0].startswith("sha256:")  # a query's values are never shown by default


def test_respond_status_headers_and_body_are_compared():
    """Two responds differ by status, by header names and by body (shown as a digest only)."""
    one = Action(respond=True, status=401, headers=[("www-authenticate", "Bearer")], body=b"no")
    two = Action(respond=True, status=403, headers=[("content-type", "text/plain")], body=b"nope")
    differences = compare(one, two)
    assert set(differences) == {"status", "headers", "body"}
    assert differences["status"] == (401, 403)
    assert all(digest.startswith("sha256:") for digest in differences["body"])


def test_header_and_ctx_values_count_only_with_record_values():
    """The same names with other values are the same unless ``record_values``; then they differ and show."""
    one = Action(set_headers=[("x-a", "secret-1")], ctx={"user": "alice"})
    two = Action(set_headers=[("x-a", "secret-2")], ctx={"user": "bob"})
    assert compare(one, two) == {}
    differences = compare(one, two, record_values=True)
    assert differences["set_headers"] == ([["x-a", "secret-1"]], [["x-a", "secret-2"]])
    assert differences["ctx"] == ({"user": "alice"}, {"user": "bob"})


# ---- ShadowStage ------------------------------------------------------------------------


def test_a_shadowed_request_keeps_a_copy_and_the_baseline_action(tmp_path):
    """The baseline answers; the job holds the request as the baseline saw it, unaffected by later edits."""
    stage = shadowed(live_with(tmp_path, TAGGED), DIFFERS)
    state = request("/a")
    action = stage.call_request(state)
    assert action.ctx == {"variant": "baseline"}
    state.apply(Action(set_headers=[("x-later", "1")], path="/edited"))  # a later stage edits the request
    [job] = state.shadows
    assert job.baseline is action and job.shadow is stage
    assert job.request.path == "/a" and job.request.headers == [("x-user", "u1")] and job.request.ctx == {}


def test_a_baseline_failure_is_kept_for_comparison(tmp_path):
    """A baseline that fails still leaves a job, its outcome the failure kind, and the failure goes on."""
    stage = shadowed(live_with(tmp_path, explodes()), BASELINE)
    state = request(f"{MARKER}/1")
    with pytest.raises(Exception):
        stage.call_request(state)
    [job] = state.shadows
    assert isinstance(job.baseline, Failure) and job.baseline.kind == "abi"


def test_only_the_shadow_share_is_copied(tmp_path):
    """At 30% about 30% of distinct keys are shadowed, by the rollout's bucketing (the canary's hash)."""
    stage = shadowed(live_with(tmp_path), BASELINE, percent=30)
    states = [request(user=f"user-{i}") for i in range(2000)]
    for state in states:
        stage.call_request(state)
    share = sum(state.shadows is not None for state in states) / len(states)
    assert 0.27 <= share <= 0.33


def test_a_paused_shadow_makes_no_candidate_calls(tmp_path):
    """A paused shadow builds as the plain baseline stage."""
    live = live_with(tmp_path)
    shadowed(live, DIFFERS)
    live.manifests.update(lambda m: transitions.paused(m, "mw", "paused by tests"), source="test")
    assert live.reload()
    assert not isinstance(live.holder.current.stages[0], ShadowStage)


# ---- running ----------------------------------------------------------------------------


def test_run_counts_same_different_and_failed(tmp_path):
    """Each job is counted once as same, different (with its fields) or failed."""
    stage = shadowed(live_with(tmp_path), DIFFERS)
    outcomes = []
    for path in ("/a", "/b", f"{MARKER}/c"):
        state = request(path)
        stage.call_request(state)
        outcomes.append(run(state.shadows[0]))
    assert outcomes == ["same", "same", "different"]
    results = TALLIES.shadow[stage.count_key]
    assert (results["same"], results["different"], results["failed"]) == (2, 1, 0)
    [difference] = results["differences"]
    assert difference["fields"] == ["action"]
    assert difference["request"] == {"method": "GET", "path": f"{MARKER}/c"}
    assert difference["baseline"] == {"action": "continue"} and difference["candidate"] == {"action": "respond"}


def test_a_failing_candidate_is_counted_replaced_and_logged_rate_limited(tmp_path, caplog):
    """Candidate failures count as failed, each call gets a fresh instance, one log line per interval."""
    stage = shadowed(live_with(tmp_path), explodes())
    caplog.set_level(logging.ERROR, logger="mwhost.pipeline")
    for i in range(5):
        state = request(f"{MARKER}/{i}")
        stage.call_request(state)
        assert run(state.shadows[0]) == "failed"
    state = request("/fine")
    stage.call_request(state)
    assert run(state.shadows[0]) == "same"  # a fresh instance answers after the failures
    assert TALLIES.shadow[stage.count_key]["failed"] == 5
    assert len([r for r in caplog.records if "failed in the request phase" in r.getMessage()]) == 1


def test_only_the_last_differences_are_kept():
    """A process keeps the newest 20 differences of a shadow."""
    for i in range(25):
        count("test-kept/0/0.000", "different", {"at": i, "fields": ["path"]})
    results = TALLIES.shadow.pop("test-kept/0/0.000")
    assert results["different"] == 25
    assert [d["at"] for d in results["differences"]] == list(range(5, 25))


def test_the_runner_runs_every_job_off_the_calling_thread(tmp_path):
    """Submitted jobs run on the runner's thread and every one is counted."""
    stage = shadowed(live_with(tmp_path), DIFFERS)
    runner = ShadowRunner()
    jobs = []
    for i in range(40):
        state = request(f"{MARKER}/{i}" if i % 4 == 0 else f"/{i}")
        stage.call_request(state)
        jobs += state.shadows
    runner.submit(jobs)
    assert runner.idle(10)
    results = TALLIES.shadow[stage.count_key]
    assert (results["same"], results["different"], results["dropped"]) == (30, 10, 0)


def test_a_full_queue_drops_and_counts_jobs(tmp_path):
    """With the runner busy on a slow candidate, jobs past the queue's size are dropped and counted."""
    slow = marked_guest("(loop $spin (br $spin))")  # spins on MARKER paths until the stage's timeout
    live = live_with(tmp_path)
    sha = live.store.put(slow)
    entry = StageEntry(name="mw", sha256=sha, origin="admin", timeout_ms=300).to_json()
    rollout = Rollout.start("shadow", entry, live.manifests.read().stage("mw").sha256, key="header:x-user")
    live.manifests.update(lambda m: transitions.started(m, "mw", rollout), source="test")
    assert live.reload()
    stage = live.holder.current.stages[0]
    runner = ShadowRunner(size=2)
    jobs = []
    for i in range(6):
        state = request(f"{MARKER}/{i}")
        stage.call_request(state)
        jobs += state.shadows
    runner.submit(jobs)
    assert runner.idle(20)
    results = TALLIES.shadow[stage.count_key]
    assert results["dropped"] >= 3
    assert results["failed"] + results["dropped"] == 6  # every job is accounted for once


def test_hand_off_waits_for_the_server_when_it_releases_after_sending(tmp_path):
    """With ``after_send`` the jobs stay in the environ until ``release``; then they run."""
    stage = shadowed(live_with(tmp_path), DIFFERS)
    runner = ShadowRunner()
    runner.after_send = True
    state = request("/a")
    stage.call_request(state)
    env: dict = {}
    runner.hand_off(env, state.shadows, record_values=True)
    assert env[ENV_KEY][0].record_values is True
    assert TALLIES.shadow.get(stage.count_key) is None  # nothing ran before the response was sent
    runner.release(env)
    assert runner.idle(10) and ENV_KEY not in env
    assert TALLIES.shadow[stage.count_key]["same"] == 1


def test_snapshot_copies_headers_and_ctx():
    """A snapshot is independent of the request it was taken from."""
    state = request("/a")
    state.ctx["k"] = "v"
    copy = snapshot(state)
    state.headers.append(("x-more", "1"))
    state.ctx["k"] = "changed"
    assert copy.headers == [("x-user", "u1")] and copy.ctx == {"k": "v"} and copy.query == "q=1"


# ---- through the web layer ---------------------------------------------------------------


def test_clients_see_only_the_baseline_and_every_request_is_counted(tmp_path):
    """Through the falcon app: answers are the same with and without the shadow, and each shadowed
    request is counted once after its response."""
    settings = testing.pipeline_settings(tmp_path, ("mw", BASELINE, {}))
    client = testing.client(settings)
    paths = ["/a", f"{MARKER}/b", "/c", f"{MARKER}/d"]
    before = [client.simulate_get(path, headers={"X-User": "u"}) for path in paths]
    stage = shadowed(live_pipeline(client.app), DIFFERS)
    after = [client.simulate_get(path, headers={"X-User": "u"}) for path in paths]
    for old, new in zip(before, after):
        assert (new.status_code, new.headers, new.content) == (old.status_code, old.headers, old.content)
    assert RUNNER.idle(10)
    results = TALLIES.shadow[stage.count_key]
    assert (results["same"], results["different"], results["failed"]) == (2, 2, 0)


def test_the_middleware_passes_record_values_from_the_live_settings(tmp_path):
    """``live.rollout_settings.record_values`` reaches the comparison: differing ctx values then show."""
    settings = testing.pipeline_settings(tmp_path, ("mw", TAGGED, {}))
    client = testing.client(settings)
    live = live_pipeline(client.app)
    stage = shadowed(live, const_guest({"action": "continue", "ctx": {"variant": "candidate"}}))

    class RolloutSettings:
        record_values = True

    live.rollout_settings = RolloutSettings()
    assert client.simulate_get("/a").json["ctx"] == {"variant": "baseline"}
    assert RUNNER.idle(10)
    [difference] = TALLIES.shadow[stage.count_key]["differences"]
    assert difference["fields"] == ["ctx"]
    assert difference["candidate"]["ctx"] == {"variant": "candidate"}

