"""An http-wasm stage in the pipeline (in-process): answers, merges, failure policies, metrics,
admission probes, rollouts and the admin view, like an ABI v1 stage."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mwhost import testing
from mwhost.errors import ModuleRejected
from mwhost.pipeline import RequestState, admit
from mwhost.pipeline.httpwasm_stage import HttpWasmStage
from mwhost.pipeline.pipeline import Pipeline
from mwhost.pipeline.rollout_stage import CanaryStage
from mwhost.pipeline.stage import Stage
from mwhost.runtime import GuestModule, Runtime, default_runtime
from mwhost.settings import StageSettings
from tests.admin.support import GOOD, admin_client, bearer
from tests.test_observability import samples
from tests.wat import MARKER

from .backend import backend_app
from .wat_guests import NEXT, STOP, data, hw_guest

#: answers 403 "no" with x-deny: 1, never calling the app
DENY = hw_guest("""(call $set_status_code (i32.const 403))
                   (call $set_header_value (i32.const 1) (i32.const 50) (i32.const 6) (i32.const 60) (i32.const 1))
                   (call $write_body (i32.const 1) (i32.const 70) (i32.const 2)) (i64.const 0)""",
                data_=data(50, "x-deny") + data(60, "1") + data(70, "no"))
#: sets the response header x-guest: 1 and request header x-from-guest: yes, then proceeds
TAG = hw_guest("""(call $set_header_value (i32.const 1) (i32.const 50) (i32.const 7) (i32.const 60) (i32.const 1))
                  (call $set_header_value (i32.const 0) (i32.const 70) (i32.const 12) (i32.const 90) (i32.const 3))
                  (i64.const 1)""",
               data_=data(50, "x-guest") + data(60, "1") + data(70, "x-from-guest") + data(90, "yes"))
#: traps on a request whose URI starts with /b (tests/wat.py's MARKER, /boom: no probe carries it)
TRAP_ON_BOOM = hw_guest("""(drop (call $get_uri (i32.const 100) (i32.const 8)))
                           (if (i32.eq (i32.load8_u (i32.const 101)) (i32.const 98)) (then unreachable))
                           (i64.const 1)""")
#: traps on every POST (the golden upload request is one)
TRAP_ON_POST = hw_guest("""(drop (call $get_method (i32.const 100) (i32.const 8)))
                           (if (i32.eq (i32.load8_u (i32.const 100)) (i32.const 80)) (then unreachable))
                           (i64.const 1)""")


def client(tmp_path, *stages):
    return testing.client(testing.pipeline_settings(tmp_path, *stages), backend_app())


def test_next_zero_answers_with_what_the_guest_set(tmp_path):
    """next=0: the client gets the guest's status, headers and body; the app is not called."""
    result = client(tmp_path, ("deny", DENY, {})).simulate_get("/x")
    assert result.status_code == 403 and result.text == "no"
    assert result.headers["x-deny"] == "1" and "x-backend" not in result.headers


def test_next_one_merges_response_headers_and_edits_the_request(tmp_path):
    """next=1: response headers set before next are merged into the app's; request edits reach it."""
    result = client(tmp_path, ("tag", TAG, {})).simulate_get("/x")
    assert result.status_code == 200 and result.headers["x-backend"] == "1"
    assert result.headers["x-guest"] == "1"
    assert result.headers["x-httpwasm-next-header-X-From-Guest-0"] == "yes"


@pytest.mark.parametrize("policy, status", [("fail_closed", 503), ("fail_open", 200)])
def test_a_trapping_guest_follows_the_failure_policy(tmp_path, policy, status):
    """A trap in handle_request fails the request (503 naming the stage) or skips the stage."""
    result = client(tmp_path, ("trappy", TRAP_ON_BOOM, {"on_error": policy})).simulate_get(MARKER)
    assert result.status_code == status
    if status == 503:
        assert result.json["stage"] == "trappy"
    else:
        assert result.headers["x-backend"] == "1"


def test_calls_and_failures_are_metered_like_v1_stages(tmp_path):
    """The stage's calls and failures appear in the Prometheus metrics under its name."""
    app = client(tmp_path, ("hw_metered", TRAP_ON_BOOM, {"on_error": "fail_open"}))
    app.simulate_get("/x")
    app.simulate_get(MARKER)
    assert samples("mwhost_stage_calls_total", stage="hw_metered", phase="request", outcome="ok") == 1
    assert samples("mwhost_stage_calls_total", stage="hw_metered", phase="request", outcome="failed") == 1
    assert samples("mwhost_stage_failures_total", stage="hw_metered", kind="trap") == 1


def test_admission_probes_run_through_handle_request():
    """Admission sends the golden requests through handle_request: a guest trapping on POST
    (the golden upload request) is rejected at the probe check; a good one is admitted."""
    settings = StageSettings(name="probe")
    with pytest.raises(ModuleRejected) as refused:
        admit(settings, TRAP_ON_POST, Runtime())
    assert refused.value.members["check"] == "probe" and "request_with_body" in str(refused.value)
    admitted = admit(settings, TAG, Runtime())
    assert admitted.abi == "http-wasm" and admitted.probes == 4


def test_admission_refuses_a_module_mixing_both_abis():
    """A module importing http_handler and mw is refused at the abi check."""
    wasm = hw_guest(imports=__import__("tests.httpwasm.wat_guests", fromlist=["IMPORTS"]).IMPORTS
                    + '(import "mw" "log" (func (param i32 i32 i32)))')
    with pytest.raises(ModuleRejected, match="mixes two guest ABIs") as refused:
        admit(StageSettings(name="mixed"), wasm, Runtime())
    assert refused.value.members["check"] == "abi"
    assert not str(refused.value).startswith("the module breaks")  # no ABI could be told


@pytest.mark.parametrize("wat, detail", [
    ('(module (memory (export "memory") 1) (func (export "run")))',
     "the module speaks no guest ABI this host knows"),
    ('(module (import "http_handler" "nope" (func)) (memory (export "memory") 1)'
     ' (func (export "handle_request") (result i64) (i64.const 1)))',
     "the module breaks the http-wasm handler ABI: the module imports 'http_handler.nope'"),
    ('(module (import "env" "system" (func)) (memory (export "memory") 1)'
     ' (func (export "mw_abi_version") (result i32) (i32.const 1))'
     ' (func (export "mw_alloc") (param i32) (result i32) (i32.const 0))'
     ' (func (export "mw_on_request") (param i32 i32) (result i64) (i64.const 0)))',
     "the module breaks ABI v1: the module imports 'env.system'"),
])
def test_abi_refusals_name_the_abi_only_when_one_was_detected(wat, detail):
    """A refusal names the ABI whose rules the module broke; a module speaking neither ABI is
    refused without one (its ABI is not guessed from the message)."""
    from mwhost.testing import wat_guest
    with pytest.raises(ModuleRejected) as refused:
        admit(StageSettings(name="abi"), wat_guest(wat), Runtime())
    assert str(refused.value).startswith(detail) and refused.value.members["check"] == "abi"


def test_an_http_wasm_candidate_serves_its_share_of_a_canary():
    """In a CanaryStage beside an ABI v1 baseline, the forced candidate is the http-wasm stage."""
    runtime = default_runtime()
    baseline = Stage.isolated(StageSettings(name="c"), GuestModule.from_bytes(runtime, GOOD))
    candidate = HttpWasmStage.isolated(StageSettings(name="c"), GuestModule.from_bytes(runtime, DENY))
    canary = CanaryStage(baseline, candidate, percent=0, salt="s", key="header:x-user", step_key="k")
    pipeline = Pipeline((canary,))
    state = RequestState("GET", "/", "", [("x-mwhost-variant", "candidate")], "127.0.0.1", "http")
    action = pipeline.on_request(state)
    assert action is not None and action.status == 403 and action.body == b"no"
    assert pipeline.on_request(RequestState("GET", "/", "", [], "127.0.0.1", "http")) is None  # baseline
    canary.close()


def test_config_table_and_raw_string_become_get_config_bytes(tmp_path):
    """A config table reaches get_config as compact sorted JSON; {raw = "..."} as the string itself."""
    echo = hw_guest("""(local.set $n (call $get_config (i32.const 100) (i32.const 200)))
                       (call $write_body (i32.const 1) (i32.const 100) (local.get $n)) (i64.const 0)""")
    assert client(tmp_path / "a", ("cfg", echo, {"config": {"b": [1, 2], "a": "x"}})).simulate_get("/").text \
        == '{"a":"x","b":[1,2]}'
    assert client(tmp_path / "b", ("cfg", echo, {"config": {"raw": "level=debug\n"}})).simulate_get("/").text \
        == "level=debug\n"


def test_admin_pipeline_says_which_abi_each_stage_speaks(tmp_path):
    """GET /_admin/pipeline has abi: http-wasm for the http-wasm stage and v1 for the other."""
    admin = admin_client(tmp_path, ("hw", TAG, {}), ("native", GOOD, {}))
    result = admin.simulate_get("/_admin/pipeline", headers=bearer())
    assert result.status_code == 200, result.text
    assert {stage["name"]: stage["abi"] for stage in result.json["stages"]} == {"hw": "http-wasm", "native": "v1"}


def test_validate_prints_the_abi(tmp_path):
    """``mwhost validate`` on an http-wasm guest says ``abi: http-wasm``."""
    path = tmp_path / "tag.wasm"
    path.write_bytes(TAG)
    done = subprocess.run([sys.executable, "-m", "mwhost.cli", "validate", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "abi: http-wasm" in done.stdout and "request and response phase" in done.stdout


def test_next_zero_without_anything_set_is_an_empty_200(tmp_path):
    """A guest that returns next=0 and sets nothing answers the default empty 200."""
    result = client(tmp_path, ("empty", hw_guest(STOP), {})).simulate_get("/")
    assert result.status_code == 200 and result.text == "" and "x-backend" not in result.headers


def test_handle_response_runs_only_after_next(tmp_path):
    """handle_response runs only when handle_request returned next=1 (probes included: a
    trapping handle_response after next=1 is rejected in the response phase)."""
    assert client(tmp_path, ("skip", hw_guest(STOP, handle_response="unreachable"), {})) \
        .simulate_get("/").status_code == 200
    with pytest.raises(ModuleRejected, match="failed in the response phase"):
        admit(StageSettings(name="after"), hw_guest(NEXT, handle_response="unreachable"), Runtime())


def test_an_http_wasm_shadow_candidate_gives_its_instance_back():
    """A shadow's http-wasm candidate answers the copy and returns its instance to the pool
    (no response phase ever runs for a copy)."""
    from mwhost.pipeline.shadow import ShadowStage, run

    runtime = default_runtime()
    baseline = Stage.isolated(StageSettings(name="s"), GuestModule.from_bytes(runtime, GOOD))
    candidate = HttpWasmStage.isolated(StageSettings(name="s"), GuestModule.from_bytes(runtime, TAG))
    shadow = ShadowStage(baseline, candidate, percent=100, salt="s", key="header:x-user", step_key="k-hw")
    state = RequestState("GET", "/", "", [], "127.0.0.1", "http")
    Pipeline((shadow,)).on_request(state)
    for _ in range(3):
        assert run(state.shadows[0]) == "different"  # the candidate edits headers, the baseline sets ctx
    assert (candidate.idle_instances, candidate.live_instances) == (1, 1)
    shadow.close()


def test_admin_upload_rollout_and_rollback_of_an_http_wasm_version(tmp_path):
    """Through the admin API an http-wasm module is a canary candidate beside a v1 version
    (the force header picks it), then the active version, then rolled back to v1."""
    admin = admin_client(tmp_path, ("tag", GOOD, {}))
    auth = {**bearer(), "Content-Type": "application/wasm"}
    started = admin.simulate_put("/_admin/middlewares/tag", body=DENY, headers=auth,
                                 params={"rollout": "canary", "steps": "50,100", "step_s": "3600"})
    assert started.status_code == 201, started.text
    assert admin.simulate_get("/", headers={"x-mwhost-variant": "candidate"}).status_code == 403
    assert admin.simulate_get("/", headers={"x-mwhost-variant": "baseline"}).status_code == 200
    uploaded = admin.simulate_put("/_admin/middlewares/tag", body=DENY, headers=auth)
    assert uploaded.status_code == 201, uploaded.text
    assert admin.simulate_get("/_admin/pipeline", headers=bearer()).json["stages"][0]["abi"] == "http-wasm"
    assert admin.simulate_get("/").status_code == 403
    assert admin.simulate_post("/_admin/middlewares/tag/rollback", headers=bearer()).status_code == 200
    assert admin.simulate_get("/_admin/pipeline", headers=bearer()).json["stages"][0]["abi"] == "v1"
    assert admin.simulate_get("/").status_code == 200


#: set_uri("/simple%26clean?x=%20"), then proceeds
SET_ESCAPED_URI = hw_guest("(call $set_uri (i32.const 50) (i32.const 21)) (i64.const 1)",
                           data_=data(50, "/simple%26clean?x=%20"))
#: answers the response header x-seen-uri with what get_uri returned, then proceeds
ECHO_URI = hw_guest("""(local.set $n (call $get_uri (i32.const 200) (i32.const 200)))
                       (call $set_header_value (i32.const 1) (i32.const 50) (i32.const 10) (i32.const 200) (local.get $n))
                       (i64.const 1)""", data_=data(50, "x-seen-uri"))


def test_a_later_stage_gets_the_escaped_uri_an_earlier_set_uri_wrote(tmp_path):
    """After one http-wasm stage's set_uri, the next one's get_uri is that raw URI, still
    escaped (not rebuilt from the decoded path)."""
    result = client(tmp_path, ("rewrite", SET_ESCAPED_URI, {}), ("echo", ECHO_URI, {})).simulate_get("/x")
    assert result.status_code == 200, result.text
    assert result.headers["x-seen-uri"] == "/simple%26clean?x=%20"
    assert result.headers["x-httpwasm-next-uri"] == "/simple%26clean?x=%20"


def test_after_an_abi_v1_rewrite_get_uri_is_rebuilt_from_the_new_path(tmp_path):
    """An ABI v1 path rewrite after set_uri makes the raw URI stale: the next http-wasm stage
    gets the target rebuilt from the rewritten path and query."""
    from tests.wat import const_guest

    rewrite_v1 = const_guest({"action": "continue", "path": "/v1 path", "query": "a=1"})
    result = client(tmp_path, ("rewrite", SET_ESCAPED_URI, {}), ("v1", rewrite_v1, {}),
                    ("echo", ECHO_URI, {})).simulate_get("/x")
    assert result.status_code == 200, result.text
    assert result.headers["x-seen-uri"] == "/v1%20path?a=1"


#: enables buffer_response, proceeds; handle_response reads 16 bytes of the app's body
READS_RESPONSE_BODY = hw_guest("(drop (call $enable_features (i32.const 2))) (i64.const 1)",
                               handle_response="(drop (call $read_body (i32.const 1) (i32.const 100) (i32.const 16)))")


@pytest.mark.parametrize("policy, status", [("fail_closed", 503), ("fail_open", 200)])
def test_reading_an_app_body_over_max_output_kb_fails_by_the_policy(tmp_path, policy, status):
    """buffer_response reads are bounded by max_output_kb: an app body over it fails the
    response phase by the stage's policy (a body within it is read normally)."""
    settings = {"max_output_kb": 1, "on_error": policy}
    http = client(tmp_path, ("reader", READS_RESPONSE_BODY, settings))
    assert http.simulate_post("/", body=b"x" * 1024).status_code == 200
    result = http.simulate_post("/", body=b"x" * 2048)
    assert result.status_code == status
    if policy == "fail_open":
        assert result.content == b"x" * 2048


#: handle_response answers the response header x-is-error with its is_error ("0" or "1")
ECHO_IS_ERROR = hw_guest(NEXT, data_=data(50, "x-is-error"), handle_response="""
    (i32.store8 (i32.const 300) (i32.add (i32.const 48) (local.get $is_error)))
    (call $set_header_value (i32.const 1) (i32.const 50) (i32.const 10) (i32.const 300) (i32.const 1))""")


def test_handle_response_is_error_says_whether_the_app_raised(tmp_path):
    """handle_response gets is_error=1 when the app raised (falcon's req_succeeded false) and
    0 when it answered, errors answered on purpose included."""
    import falcon

    class Raising:
        def on_get(self, req, resp):
            raise falcon.HTTPForbidden()

        def on_post(self, req, resp):
            raise RuntimeError("the app broke")

    class Answering:
        def on_get(self, req, resp):
            resp.status = falcon.HTTP_404

    app = falcon.App()
    app.add_route("/raise", Raising())
    app.add_route("/ok", Answering())
    http = testing.client(testing.pipeline_settings(tmp_path, ("echo", ECHO_IS_ERROR, {})), app)
    assert http.simulate_get("/ok").headers["x-is-error"] == "0"
    assert http.simulate_get("/raise").headers["x-is-error"] == "1"
    broken = http.simulate_post("/raise")
    assert broken.status_code == 500 and broken.headers["x-is-error"] == "1"
