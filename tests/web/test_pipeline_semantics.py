"""Pipeline semantics through the Falcon app: order, ctx, edits, short-circuit, response phase."""

from __future__ import annotations

import json

import falcon
import msgpack
import pytest

from mwhost import WasmMiddleware, testing
from mwhost.web import load_live
from tests.wat import MARKER, const_guest, guest_wat, marked_guest, returns

ECHO = testing.reference_guest("echo")


def client(tmp_path, *stages, app=None):
    return testing.client(testing.pipeline_settings(tmp_path, *stages), app)


def echoed_request(result) -> dict:
    """The Request message the echo guest received, from its 200 body."""
    assert result.status_code == 200, result.text
    return msgpack.unpackb(result.content, raw=False)


def test_an_empty_pipeline_passes_requests_through(tmp_path):
    result = client(tmp_path).simulate_get("/a/b", query_string="x=1")
    assert result.status_code == 200
    assert result.json["path"] == "/a/b" and result.json["query"] == "x=1"


def test_the_request_message_carries_what_the_abi_promises(tmp_path):
    result = client(tmp_path, ("echo", ECHO, {})).simulate_post(
        "/p", query_string="q=1", headers={"X-Two": "2", "Content-Type": "text/plain"}, body="hi")
    message = echoed_request(result)
    assert message["v"] == 1 and message["method"] == "POST"
    assert message["path"] == "/p" and message["query"] == "q=1"
    assert ["x-two", "2"] in message["headers"] and ["content-type", "text/plain"] in message["headers"]
    assert message["scheme"] == "http" and message["remote_addr"] and message["ctx"] == {}
    assert "body" not in message


def test_later_stages_see_earlier_edits_and_ctx(tmp_path):
    first = const_guest({"action": "continue", "ctx": {"user": "alice"},
                         "set_headers": [["x-user", "alice"]], "remove_headers": ["user-agent"]})
    second = const_guest({"action": "continue", "ctx": {"role": "admin"}})
    message = echoed_request(client(tmp_path, ("a", first, {}), ("b", second, {}), ("echo", ECHO, {}))
                             .simulate_get("/"))
    assert message["ctx"] == {"user": "alice", "role": "admin"}
    names = [name for name, _ in message["headers"]]
    assert "x-user" in names and "user-agent" not in names


def test_set_headers_replaces_every_value_of_a_name(tmp_path):
    stage = const_guest({"action": "continue", "set_headers": [["accept", "a"], ["accept", "b"]]})
    result = client(tmp_path, ("s", stage, {})).simulate_get("/", headers={"Accept": "old"})
    assert ["accept", "a, b"] in result.json["headers"]
    assert ["accept", "old"] not in result.json["headers"]


def test_the_app_sees_edited_headers_and_ctx(tmp_path):
    stage = const_guest({"action": "continue", "set_headers": [["x-added", "1"]], "ctx": {"k": "v"}})
    result = client(tmp_path, ("s", stage, {})).simulate_get("/")
    assert ["x-added", "1"] in result.json["headers"]
    assert result.json["ctx"] == {"k": "v"}


def test_path_and_query_rewrites_reach_routing_and_params(tmp_path):
    class Target:
        def on_get(self, req, resp):
            resp.media = {"routed": True, "a": req.get_param("a"), "header": req.get_header("x-h")}

    app = falcon.App()
    app.add_route("/v2/items", Target())
    stage = const_guest({"action": "continue", "path": "/v2/items", "query": "a=2",
                         "set_headers": [["x-h", "yes"]]})
    result = client(tmp_path, ("rewrite", stage, {}), app=app).simulate_get("/v1/items", query_string="a=1")
    assert result.json == {"routed": True, "a": "2", "header": "yes"}


def test_respond_short_circuits_later_stages_and_the_app(tmp_path):
    first = const_guest({"action": "continue", "response_headers": [["x-first", "ran"]]})
    never = const_guest({"action": "respond", "status": 500})  # would answer 500 if it ever ran
    result = client(tmp_path, ("first", first, {}), ("deny", testing.reference_guest("respond"), {}),
                    ("never", never, {})).simulate_get("/")
    assert result.status_code == 403
    assert result.text == "forbidden\n"
    assert result.headers["content-type"] == "text/plain"
    assert result.headers["x-first"] == "ran"  # the response phase ran for the stage before


def test_response_phase_runs_in_reverse_order(tmp_path):
    outer = const_guest({"action": "continue"}, {"set_headers": [["x-order", "outer"]]})
    inner = const_guest({"action": "continue"}, {"set_headers": [["x-order", "inner"]], "status": 202})
    result = client(tmp_path, ("outer", outer, {}), ("inner", inner, {})).simulate_get("/")
    assert result.headers["x-order"] == "outer"  # inner ran first, outer last
    assert result.status_code == 202


def response_echo_guest() -> bytes:
    """echo.wat with its request phase replaced by a plain continue: only the response phase echoes."""
    source = (testing.REFERENCE_WAT / "echo.wat").read_text()
    source = source.replace(
        "(call $wrap (i32.const 1024) (i32.const 31) (local.get $ptr) (local.get $len)))",
        "(i64.const 0x0000001000000011))")
    source = source.replace('(memory (export "memory") 4)',
                            '(memory (export "memory") 4) (data (i32.const 16) "\\81" "\\a6" "action" "\\a8" "continue")')
    return testing.wat_guest(source)


def test_response_message_carries_status_headers_ctx_and_request(tmp_path):
    rewrite = const_guest({"action": "continue", "ctx": {"rid": "7"}, "path": "/seen"})
    result = client(tmp_path, ("echo", response_echo_guest(), {}), ("rewrite", rewrite, {})).simulate_get("/x")
    message = msgpack.unpackb(result.content, raw=False)
    assert message["v"] == 1 and message["status"] == 200
    assert ["content-type", "application/json"] in message["headers"]
    assert message["ctx"] == {"rid": "7"}
    assert message["request"] == {"method": "GET", "path": "/seen"}


def test_response_edits_remove_and_replace_body(tmp_path):
    stage = const_guest({"action": "continue"}, {"remove_headers": ["content-type"],
                                                  "set_headers": [["content-type", "text/plain"]],
                                                  "body": b"replaced"})
    result = client(tmp_path, ("s", stage, {})).simulate_get("/")
    assert result.text == "replaced"
    assert result.headers["content-type"] == "text/plain"
    assert result.headers["content-length"] == "8"


@pytest.mark.parametrize("garbage", [b"not msgpack", {"action": "explode"}, {"action": "continue", "path": "x"}])
def test_garbage_fails_closed_with_problem_json_and_the_next_request_works(tmp_path, garbage, caplog):
    output = garbage if isinstance(garbage, bytes) else msgpack.packb(garbage)
    app = client(tmp_path, ("bad", marked_guest(returns(output), output=output), {}))
    for _ in range(2):
        result = app.simulate_get(MARKER)
        assert result.status_code == 503
        assert result.headers["content-type"] == "application/problem+json"
        problem = json.loads(result.text)
        assert problem["status"] == 503 and problem["stage"] == "bad"
        assert "msgpack" not in problem["detail"]  # no guest internals
    # logged once: the second failure of the same kind within a second is counted, not logged
    assert caplog.text.count("stage bad failed") == 1


def test_garbage_fails_open_by_skipping_the_stage(tmp_path):
    output = msgpack.packb({"action": "explode"})
    stage = marked_guest(returns(output), output=output)
    after = const_guest({"action": "continue", "ctx": {"after": "ran"}})
    result = client(tmp_path, ("bad", stage, {"on_error": "fail_open"}), ("after", after, {})).simulate_get(MARKER)
    assert result.status_code == 200
    assert result.json["ctx"] == {"after": "ran"}


def test_a_failed_instance_is_replaced_by_a_fresh_one(tmp_path):
    settings = testing.pipeline_settings(tmp_path, ("trap", marked_guest("(unreachable)"), {"on_error": "fail_open"}))
    holder = load_live(settings).holder
    stage = holder.current.stages[0]
    first = stage._idle[0].instance
    client = falcon.testing.TestClient(falcon.App(middleware=[WasmMiddleware(holder)]))
    client.simulate_get(MARKER)
    assert first.closed and stage.idle_instances == 0
    client.simulate_get(MARKER)
    assert stage.idle_instances == 0  # the fresh instance trapped too and was thrown away


def test_a_response_phase_failure_fails_closed(tmp_path):
    stage = marked_guest(on_response="(unreachable)")
    result = client(tmp_path, ("late", stage, {})).simulate_get(MARKER)
    assert result.status_code == 503
    assert json.loads(result.text)["stage"] == "late"


def test_stages_response_headers_replace_the_apps_and_apply_in_reverse_order(tmp_path):
    """Stages without mw_on_response: each one's response_headers replace the app's header of
    that name (whatever case the app used), the first stage's value wins over a later one's
    (reverse order), and Set-Cookie values are appended, never replaced."""
    class App:
        def on_get(self, req, resp):
            resp.set_header("X-Resp", "app")
            resp.append_header("Set-Cookie", "a=1")
            resp.text = "ok"

    app = falcon.App()
    app.add_route("/r", App())
    first = const_guest({"action": "continue", "response_headers": [["x-resp", "first"], ["set-cookie", "b=2"]]})
    second = const_guest({"action": "continue", "response_headers": [["x-resp", "second"]]})
    third = const_guest({"action": "continue", "response_headers": [["x-other", "third"]]})
    result = client(tmp_path, ("first", first, {}), ("second", second, {}), ("third", third, {}),
                    app=app).simulate_get("/r")
    assert result.status_code == 200
    assert result.headers["x-resp"] == "first" and result.headers["x-other"] == "third"
    assert {c.name: c.value for c in result.cookies.values()} == {"a": "1", "b": "2"}
