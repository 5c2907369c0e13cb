"""The C accelerator at the request's edges: the state made without ``__init__``, the edited
headers written back to the environ, the stages' response headers and a repeated output.
Each does in C what the Python path does (side by side here), or hands the case back."""

from __future__ import annotations

import falcon
import pytest

from mwhost import WasmMiddleware, testing
from mwhost.errors import AbiError
from mwhost.pipeline import PipelineHolder
from mwhost.pipeline.messages import STATE_PROTOTYPE, RequestState
from mwhost.runtime import GuestInstance, GuestModule, Limits, accel, default_runtime
from mwhost.web.middleware import _set_response_headers
from mwhost.web.wsgi_headers import ENVIRON_KEYS, write_environ_headers
from tests.wat import const_guest, guest

pytestmark = pytest.mark.skipif(accel.ACCEL is None, reason="the C accelerator is not built or is off")


@pytest.fixture(autouse=True)
def both_hot_paths():
    """These tests compare the two paths themselves (overrides tests/hot_path.py's)."""


def slots(state: RequestState) -> dict:
    return {name: getattr(state, name) for name in RequestState.__slots__}


# ---- clone_state -------------------------------------------------------------------------

def test_a_cloned_state_is_what_init_makes():
    """Every slot equal to __init__'s, and each container a new empty one of its own."""
    environ = {"HTTP_X_A": "1"}
    args = ("GET", "/p", "q=1", "10.0.0.1", "https", environ)
    made = RequestState(args[0], args[1], args[2], None, args[3], args[4], environ)
    cloned = accel.ACCEL.clone_state(STATE_PROTOTYPE, *args)
    assert type(cloned) is RequestState
    assert slots(cloned) == slots(made)
    again = accel.ACCEL.clone_state(STATE_PROTOTYPE, *args)
    for name, value in slots(cloned).items():
        if isinstance(value, (dict, list, set)) and name not in ("env", "_environ"):  # the request's own
            assert value is not getattr(STATE_PROTOTYPE, name) and value is not getattr(again, name), name
    assert cloned.env is environ and cloned._environ is environ


def test_the_prototype_holds_nothing_a_request_could_share():
    """clone_state copies references: the prototype may hold only immutable defaults and
    empty dicts, lists and sets (which the clone replaces with new ones)."""
    for name, value in slots(STATE_PROTOTYPE).items():
        if isinstance(value, (dict, list, set)):
            assert type(value) in (dict, list, set) and not value, name
        else:
            assert value is None or isinstance(value, (bool, int, str)), (name, value)


def test_clone_state_refuses_a_prototype_whose_containers_are_not_empty():
    """A container on the prototype would be every request's: a non-empty one (something
    wrote into the prototype) is refused, never handed to a request."""
    spoiled = RequestState("", "", "", None, "", "", None)
    spoiled.ctx["leak"] = "from another request"
    with pytest.raises(RuntimeError, match="non-empty container"):
        accel.ACCEL.clone_state(spoiled, "GET", "/", "", "", "http", {})


def test_clone_state_refuses_a_prototype_without_slots():
    class Loose:
        pass

    with pytest.raises(TypeError):
        accel.ACCEL.clone_state(Loose(), "GET", "/", "", "", "http", {})
    with pytest.raises(TypeError):
        accel.ACCEL.clone_state(STATE_PROTOTYPE, "GET")


# ---- write_edits -------------------------------------------------------------------------

ONE_PAIR_PER_NAME = [
    ([("x-demo", "1")], {"x-demo"}),
    ([("content-type", "a/b")], {"content-type"}),  # an unprefixed key (ENVIRON_KEYS makes it)
    ([("x-a", "1"), ("x-b", "2"), ("accept", "3")], {"x-a", "x-b", "accept"}),
    ([["x-list", "1"]], {"x-list"}),
]
HANDED_BACK = [
    ([("x-demo", "1"), ("x-demo", "2")], {"x-demo"}),       # joined values
    ([], {"accept"}),                                        # a removed name
    ([("x-a", "1")], {"x-a", "accept"}),                     # set one, remove one
    ([("x-a", "1"), ("x-a", "2")], {"x-a", "accept"}),       # as many pairs as names, one repeated
    ([("x-a", "1"), ("x-c", "2")], {"x-a", "x-b"}),          # a pair of no edited name
    ([("x-a", 1)], {"x-a"}),                                 # not str: Python's to judge
    ([(f"x-{i}", "v") for i in range(17)], {f"x-{i}" for i in range(17)}),  # more than C takes
]


def edited_state(added: list, names: set) -> RequestState:
    state = RequestState.from_environ("GET", "/", "", {"HTTP_ACCEPT": "*/*"}, "", "http")
    state._added, state.edited_names = added, set(names)
    return state


@pytest.mark.parametrize("headers, names", ONE_PAIR_PER_NAME + HANDED_BACK)
def test_write_edits_writes_what_python_writes_or_nothing(headers, names):
    """The common case (one added pair per edited name) written in C gives the Python path's
    environ; any other case is handed back with the environ untouched."""
    env = {"HTTP_ACCEPT": "*/*", "PATH_INFO": "/"}
    expected = dict(env)
    if all(isinstance(value, str) for _, value in headers):
        state = edited_state(headers, names)
        write_environ_headers(expected, state.edited_headers(), state.edited_names)
    before = dict(env)
    written = accel.ACCEL.write_edits(env, edited_state(headers, names), ENVIRON_KEYS)
    assert written is ((headers, names) in ONE_PAIR_PER_NAME)
    assert env == (expected if written else before)


def test_write_edits_hands_back_a_state_whose_headers_are_a_list():
    """Once a stage made the header list (a rollout's key, an http-wasm stage), the whole
    list is the edit: Python writes it."""
    state = edited_state([("x-a", "1")], {"x-a"})
    state.headers  # noqa: B018 - turns the overlay into the list
    env = {"PATH_INFO": "/"}
    assert accel.ACCEL.write_edits(env, state, ENVIRON_KEYS) is False and env == {"PATH_INFO": "/"}


# ---- set_response_headers ----------------------------------------------------------------

class _Response:
    """What _set_response_headers needs of a falcon response for its slow cases."""

    def __init__(self) -> None:
        self._headers: dict = {"content-type": "application/json"}

    def set_header(self, name: str, value: str) -> None:
        self._headers[name] = value

    def append_header(self, name: str, value: str) -> None:
        self._headers[name] = self._headers[name] + ", " + value if name in self._headers else value


SIMPLE_RUNS = [
    [("a", [("x-r", "1")]), ("b", None), ("c", [("x-s", "2")])],
    [("a", [("x-r", "first")]), ("b", [("x-r", "second")])],  # the first stage's value wins
    [("a", []), ("b", ())],
]
PYTHON_RUNS = [
    [("a", [("set-cookie", "k=v")])],
    [("a", [("x-r", "1"), ("x-r", "2")])],
    [("a", [("x-r", "1")]), ("b", [("x-s", "1"), ("x-t", "2")])],
]


@pytest.mark.parametrize("ran", SIMPLE_RUNS + PYTHON_RUNS)
def test_set_response_headers_sets_what_python_sets_or_nothing(ran):
    expected = _Response()
    _set_response_headers(expected, expected._headers, ran)
    response = _Response()
    before = dict(response._headers)
    done = accel.ACCEL.set_response_headers(response._headers, ran)
    assert done is (ran in SIMPLE_RUNS)
    assert response._headers == (expected._headers if done else before)


# ---- a repeated output --------------------------------------------------------------------

def test_a_repeated_output_is_the_same_bytes_object():
    """A guest answering the same bytes again gets the last output's object back (no new
    bytes, its hash already known to the decoded-action cache); other bytes are new."""
    module = GuestModule.from_bytes(default_runtime(), const_guest({"action": "continue"}))
    instance = GuestInstance(module, Limits(), "const@test")
    try:
        instance.init(b"\x80")
        first = instance.on_request(b"\x80")
        assert instance.on_request(b"\x80") is first
        assert first == b"\x81\xa6action\xa8continue"
    finally:
        instance.close()


# ---- the memory's size, read only when a bound needs it -----------------------------------

GROW_THEN_ANSWER = """
    (if (i32.eq (memory.size) (i32.const 2))
      (then
        (drop (memory.grow (i32.const 1)))
        ;; the continue action copied past the old end (131072), where the output then lies
        (memory.copy (i32.const 131072) (i32.const 16) (i32.const 17))))
    (if (result i64) (i32.eq (memory.size) (i32.const 3))
      (then (i64.const 0x0002000000000011))
      (else (i64.const 0x0000001000000011)))
"""


def test_an_output_in_memory_the_call_grew_is_read():
    """A guest that grows its memory and answers from the new pages: the size the host read
    before (two pages) does not cover the output, so it reads the size again and copies it;
    an output past the real end is still refused."""
    module = GuestModule.from_bytes(default_runtime(), guest(GROW_THEN_ANSWER))
    instance = GuestInstance(module, Limits(), "grow@test")
    try:
        assert instance.on_request(b"\x80") == b"\x81\xa6action\xa8continue"
        assert instance.on_request(b"\x80") == b"\x81\xa6action\xa8continue"
    finally:
        instance.close()
    beyond = GuestModule.from_bytes(default_runtime(), guest("(i64.const 0x0003000000000011)"))
    instance = GuestInstance(beyond, Limits(), "beyond@test")
    try:
        with pytest.raises(AbiError, match="lies outside guest memory of 131072 bytes"):
            instance.on_request(b"\x80")
    finally:
        instance.close()


# ---- RequestEdge -------------------------------------------------------------------------

ADD_ONE = {"action": "continue", "set_headers": [["x-added", "1"]]}


def edge_of(tmp_path, *actions):
    """The RequestEdge of a host app whose stages each answer one of ``actions`` (const guests)."""
    stages = [(f"s{i}", const_guest(action), {}) for i, action in enumerate(actions)]
    app = testing.client(testing.pipeline_settings(tmp_path, *stages)).app
    middleware = next(m for m in app._unprepared_middleware if isinstance(m, WasmMiddleware))
    assert middleware._edge is not None
    return middleware._edge


def request(path="/p", request_type=falcon.Request, **environ) -> falcon.Request:
    env = testing.environ(path, headers={"Accept": "*/*"})
    for key, value in environ.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return request_type(env)


def test_the_edge_runs_plain_stages_and_writes_their_edits_back(tmp_path):
    """The common case whole in C: the state on req.context, every stage run, the one added
    pair per name in the environ, falcon's header caches dropped."""
    edge = edge_of(tmp_path, ADD_ONE, {"action": "continue", "set_headers": [["x-other", "2"]]})
    req = request()
    req.get_header("accept")  # falcon caches its header dict
    assert edge.enter(req) is None
    state = req.context.mwhost
    assert [stage.name for stage, _ in state.ran] == ["s0", "s1"]
    assert req.env["HTTP_X_ADDED"] == "1" and req.env["HTTP_X_OTHER"] == "2"
    assert req.get_header("x-added") == "1" and req.get_header("x-other") == "2"
    assert (state.method, state.path, state.query, state.scheme) == ("GET", "/p", "", "http")


def test_the_edge_hands_back_what_python_finishes(tmp_path):
    """A respond, an edit write_edits does not take, a path rewrite: the state made and the
    stages run as far as C ran them, with the index and outcome Pipeline.resume takes."""
    responds = {"action": "respond", "status": 403, "headers": [], "body": b"no"}
    pipeline, state, index, outcome = edge_of(tmp_path / "a", ADD_ONE, responds).enter(req := request())
    assert (index, outcome.respond, outcome.status) == (1, True, 403)
    assert req.context.mwhost is state and len(state.ran) == 1 and "HTTP_X_ADDED" not in req.env
    assert pipeline.resume(state, index, outcome) is outcome
    joined = {"action": "continue", "set_headers": [["x-added", "1"], ["x-added", "2"]]}
    _, state, index, outcome = edge_of(tmp_path / "b", joined).enter(req := request())
    assert (index, outcome, state.edited_names) == (1, None, {"x-added"}) and "HTTP_X_ADDED" not in req.env
    _, state, index, outcome = edge_of(tmp_path / "c", {"action": "continue", "path": "/q"}).enter(request())
    assert (index, outcome, state.edited_target, state.path) == (1, None, True, "/q")


def test_the_edge_leaves_the_control_plane_and_the_routers_cases(tmp_path):
    """/_admin/ is never a stage's (done, no state); a path the router must judge and a
    pipeline with a stage only Python calls go to the Python path untouched."""
    edge = edge_of(tmp_path / "a", ADD_ONE)
    assert edge.enter(req := request("/_admin/pipeline")) is None and not hasattr(req.context, "mwhost")
    for path in ("//_admin/pipeline", "/metrics", "/metricsx"):
        assert edge.enter(req := request(path)) is False and not hasattr(req.context, "mwhost"), path
    assert edge_of(tmp_path / "b").enter(req := request()) is None and not hasattr(req.context, "mwhost")


def test_the_edge_leaves_a_pipeline_with_a_stage_python_calls(tmp_path, monkeypatch):
    monkeypatch.setenv(accel.STAGE_SWITCH, "1")  # every stage called in Python
    assert edge_of(tmp_path, ADD_ONE).enter(req := request()) is False and not hasattr(req.context, "mwhost")


class ProxiedRequest(falcon.Request):
    """An app's request type reading the peer its own way."""

    @property
    def remote_addr(self) -> str:
        return self.env.get("HTTP_X_REAL_IP", "")


@pytest.mark.parametrize("request_type, environ, remote_addr", [
    (falcon.Request, {"REMOTE_ADDR": "10.1.2.3"}, "10.1.2.3"),
    (falcon.Request, {"REMOTE_ADDR": None}, "127.0.0.1"),  # falcon's default
    (falcon.Request, {"REMOTE_ADDR": ""}, ""),
    (ProxiedRequest, {"HTTP_X_REAL_IP": "192.0.2.7"}, "192.0.2.7"),
    (ProxiedRequest, {}, ""),
])
def test_the_edge_reads_the_peer_as_the_request_type_does(tmp_path, request_type, environ, remote_addr):
    req = request(request_type=request_type, **environ)
    assert edge_of(tmp_path, ADD_ONE).enter(req) is None
    assert req.context.mwhost.remote_addr == remote_addr == (req.remote_addr or "")


def test_the_edge_hands_a_request_without_a_scheme_to_python(tmp_path):
    """falcon's scheme property raises KeyError then: Python's path raises it as it would."""
    req = request()
    del req.env["wsgi.url_scheme"]
    assert edge_of(tmp_path, ADD_ONE).enter(req) is False and not hasattr(req.context, "mwhost")


def test_the_edge_gives_the_stages_the_trace_context(tmp_path):
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    req = request(HTTP_TRACEPARENT=traceparent)
    assert edge_of(tmp_path, ADD_ONE).enter(req) is None
    assert req.context.mwhost.ctx == {"traceparent": traceparent}


def test_the_edge_follows_a_new_holder(tmp_path):
    """The middleware's holder set again (an embedding app swapping its own): the C edge
    reads the new one's pipeline."""
    app = testing.client(testing.pipeline_settings(tmp_path, ("s0", const_guest(ADD_ONE), {}))).app
    middleware = next(m for m in app._unprepared_middleware if isinstance(m, WasmMiddleware))
    middleware.holder = PipelineHolder()  # an empty pipeline
    assert middleware._edge.enter(req := request()) is None and not hasattr(req.context, "mwhost")
