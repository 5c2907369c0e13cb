"""Pipeline.on_request: the same effects whether plain stages run in C (``_accel.run_stages``)
or in Python. Every test runs on both hot paths (conftest.py); the C request phase is the one
taken on the ``accel`` run, the Python loop on the ``python`` run."""

from __future__ import annotations

import logging

import falcon.testing
import pytest

from mwhost.abi.messages import CONTINUE
from mwhost.errors import AbiDecodeError, GuestTrap
from mwhost.pipeline import Pipeline, RequestState
from mwhost.pipeline.stage import Stage
from mwhost.runtime import GuestModule, accel, default_runtime
from mwhost.settings import StageSettings
from tests.runtime.test_wasi import write
from tests.wat import const_guest, guest

FD_WRITE = '(import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))'


def counted_stage(wasm: bytes, name: str, **settings) -> Stage:
    """A stage as a served pipeline has it: counted in the meters, one instance ready."""
    module = GuestModule.from_bytes(default_runtime(), wasm, fuel=settings.get("fuel", 0) > 0)
    stage = Stage(StageSettings(name=name, **settings), module)
    stage._idle.append(stage._new_slot())
    return stage


def fresh_state(**headers: str) -> RequestState:
    environ = falcon.testing.create_environ(path="/p", query_string="q=1",
                                            headers={"X-A": "1", "X-Keep": "k", **headers})
    return RequestState.from_environ("GET", "/p", "q=1", environ, "10.0.0.1", "http")


def in_c(pipeline: Pipeline) -> bool:
    """Whether ``pipeline.on_request`` takes the C request phase on this run."""
    return pipeline._preps is not None and accel.ACCEL is not None


def effects(state: RequestState) -> dict:
    """What a request phase leaves for the web layer and the response phase."""
    return {"headers": list(state.headers), "edited": set(state.edited_names), "ctx": dict(state.ctx),
            "target": (state.path, state.query, state.edited_target),
            "ran": [(stage.name, headers) for stage, headers in state.ran],
            "response_calls": state.response_calls, "message": state.pack(state_codec())}


def state_codec():
    from mwhost.abi import Codec
    return Codec()


EDITS = [
    ("add_a", {"action": "continue", "set_headers": [["x-b", "2"]], "response_headers": [["x-r", "1"]]}),
    ("add_b", {"action": "continue", "set_headers": [["x-b", "3"], ["x-c", "4"]]}),
    ("plain", {"action": "continue"}),
    ("remove", {"action": "continue", "remove_headers": ["x-a"], "ctx": {"k": "v"}}),
    ("retarget", {"action": "continue", "path": "/q", "query": "z=2", "set_headers": [["x-d", "5"]]}),
]


@pytest.mark.parametrize("listed", [False, True])
def test_edits_ctx_and_bookkeeping_are_the_same_on_both_paths(listed):
    """Five stages (header sets replacing earlier ones, a bare continue, a remove with ctx, a
    path rewrite) leave the headers, edited names, ctx, target, ``ran`` and the next Request
    exactly as the Python loop does, with the headers still in the environ or already read
    into a list (``listed``)."""
    stages = tuple(counted_stage(const_guest(action), name) for name, action in EDITS)
    pipeline = Pipeline(stages)
    assert in_c(pipeline) == (accel.ACCEL is not None)
    state, expected_state = fresh_state(), fresh_state()
    if listed:
        assert state.headers == expected_state.headers
    assert pipeline.on_request(state) is None
    assert pipeline._in_python(expected_state, 0, len(stages)) is None
    assert effects(state) == effects(expected_state)
    assert dict(state.headers)["x-b"] == "3" and "x-a" not in dict(state.headers)
    assert state.ran[2][1] is None and state.ran[0][1] == [("x-r", "1")]
    assert all(len(stage._idle) == 1 for stage in stages)  # every instance back in its pool
    pipeline.close()


def test_a_respond_ends_the_phase_and_later_stages_never_run():
    """A ``respond`` action is returned as it is; the stages after it are not called and the
    responding stage is not in ``ran``."""
    first = counted_stage(const_guest(EDITS[0][1]), "first")
    responder = counted_stage(const_guest({"action": "respond", "status": 418, "body": b"tea"}), "teapot")
    after = counted_stage(const_guest(EDITS[1][1]), "after")
    pipeline = Pipeline((first, responder, after))
    state = fresh_state()
    action = pipeline.on_request(state)
    assert (action.respond, action.status, action.body) == (True, 418, b"tea")
    assert [stage.name for stage, _ in state.ran] == ["first"]
    assert after._meters["request"].take()[0] == 0
    pipeline.close()


def test_meters_count_every_call_and_fold_at_the_limit(monkeypatch):
    """Each ok call is counted once (and the waiting durations fold into the counts at
    FOLD_AT, as PhaseMeter.record does); a failed call is counted as failed."""
    import mwhost.metrics as metrics

    stage = counted_stage(const_guest(EDITS[0][1]), "metered")
    monkeypatch.setattr(metrics, "FOLD_AT", 4)
    pipeline = Pipeline((stage,))
    pipeline._preps = pipeline._preps and ((*pipeline._preps[0][:6], 4, pipeline._preps[0][7]),)
    meter = stage._meters["request"]
    for _ in range(9):
        pipeline.on_request(fresh_state())
    assert len(meter.waiting) < 4  # folded on the way
    ok, failed, buckets, total, _ = meter.take()
    assert (ok, failed, sum(buckets)) == (9, 0, 9) and total > 0
    pipeline.close()


@pytest.mark.parametrize("fail_open", [False, True])
def test_a_failing_stage_is_discarded_counted_and_its_policy_applied(fail_open, caplog):
    """A trapping stage: its instance is thrown away (the next call gets a fresh one), the
    failure is counted and logged with the guest's stderr, and the request either gets the
    503 problem (fail_closed) or goes on to the next stage without it (fail_open)."""
    wasm = guest(write(2, b"panic: boom") + " (unreachable)", imports=FD_WRITE)
    broken = counted_stage(wasm, "broken", on_error="fail_open" if fail_open else "fail_closed")
    after = counted_stage(const_guest(EDITS[0][1]), "after")
    pipeline = Pipeline((broken, after))
    state = fresh_state()
    with caplog.at_level(logging.ERROR, "mwhost.pipeline"):
        action = pipeline.on_request(state)
    if fail_open:
        assert action is None and [stage.name for stage, _ in state.ran] == ["after"]
    else:
        assert (action.respond, action.status) == (True, 503) and b"broken" in action.body
        assert state.ran == []
    assert broken.live_instances == 0 and broken.idle_instances == 0
    ok, failed, _, _, kinds = broken._meters["request"].take()
    assert (ok, failed, kinds) == (0, 1, {"trap": 1})
    assert "guest stderr: panic: boom" in caplog.text
    pipeline.on_request(fresh_state())  # a fresh instance for the next request
    assert broken._meters["request"].take()[1] == 1
    pipeline.close()


def test_an_error_that_is_no_stage_failure_propagates_and_discards_the_instance():
    """A host bug inside the call (here a RuntimeError from the roundtrip) is raised to the
    caller on both paths, after the instance was discarded."""
    stage = counted_stage(const_guest(EDITS[0][1]), "buggy")
    instance = stage._idle[0].instance

    def broken_call(message: bytes) -> bytes:
        raise RuntimeError("host bug")

    instance.request_call = broken_call
    pipeline = Pipeline((stage,))
    with pytest.raises(RuntimeError, match="host bug"):
        pipeline.on_request(fresh_state())
    assert stage.live_instances == 0 and stage._meters["request"].take()[1] == 1
    pipeline.close()


def test_stages_python_must_call_run_between_plain_ones():
    """A stage whose instance needs per-call fuel (no ``request_call``) and a stage with no
    idle instance run on the Python path between plain ones; the phase goes on after them."""
    first = counted_stage(const_guest(EDITS[0][1]), "first")
    fueled = counted_stage(const_guest(EDITS[1][1]), "fueled", fuel=1_000_000)
    assert fueled._idle[0].instance.request_call is None
    emptied = counted_stage(const_guest(EDITS[3][1]), "emptied")
    emptied.close()  # no idle instance: the call makes one (Stage._replacement)
    pipeline = Pipeline((first, fueled, emptied))
    state = fresh_state()
    assert pipeline.on_request(state) is None
    assert [stage.name for stage, _ in state.ran] == ["first", "fueled", "emptied"]
    assert dict(state.headers)["x-c"] == "4" and state.ctx == {"k": "v"}
    assert emptied.live_instances == 1 and len(emptied._idle) == 1
    pipeline.close()


def test_an_output_is_decoded_once_and_bad_output_fails_the_stage():
    """The first call decodes the output and caches it; a guest answering an invalid action
    fails with AbiDecodeError, counted, fail_closed."""
    good = counted_stage(const_guest(EDITS[0][1]), "good")
    pipeline = Pipeline((good,))
    pipeline.on_request(fresh_state())
    assert len(good._actions) == 1
    cached = next(iter(good._actions.values()))
    state = fresh_state()
    pipeline.on_request(state)
    assert state.ran[0][1] is cached.response_headers
    bad = counted_stage(const_guest({"action": "explode"}), "bad")
    action = Pipeline((bad,)).on_request(fresh_state())
    assert action.status == 503 and bad._meters["request"].take()[4] == {"abi": 1}
    pipeline.close()


def test_the_guest_log_is_per_call(caplog):
    """A guest that logs over its budget on every call: each call's lines and its dropped
    bytes are reported once per call (the log is reset after a call that logged)."""
    imports = '(import "mw" "log" (func $log (param i32 i32 i32)))'
    data = '(data (i32.const 16) "\\81" "\\a6" "action" "\\a8" "continue")'
    body = ("(local $i i32) (loop $l (call $log (i32.const 1) (i32.const 0) (i32.const 600)) "
            "(local.set $i (i32.add (local.get $i) (i32.const 1))) "
            "(br_if $l (i32.lt_u (local.get $i) (i32.const 3)))) (i64.const 0x0000001000000011)")
    stage = counted_stage(guest(body, imports=imports, data=data), "chatty", max_log_kb=1)
    pipeline = Pipeline((stage,))
    with caplog.at_level(logging.INFO, "mwhost.guest"):
        for _ in range(2):
            pipeline.on_request(fresh_state())
            assert len(stage._idle[0].instance.log.recent) == 1
    assert len([r for r in caplog.records if "] log: " in r.getMessage()]) == 2
    assert caplog.text.count("1200 bytes dropped") == 2
    pipeline.close()


def test_the_c_request_phase_is_taken_and_can_be_switched_off(monkeypatch):
    """With the accelerator, a pipeline of plain stages calls them through ``run_stages``;
    ``MWHOST_NO_STAGE_C=1`` (read when a pipeline is built) and subclassed stages keep Python."""
    stage = counted_stage(const_guest(EDITS[0][1]), "plain")
    pipeline = Pipeline((stage,))
    assert pipeline._preps is not None and pipeline._preps[0][0] is stage
    if accel.ACCEL is not None:
        index, outcome = accel.ACCEL.run_stages(pipeline._preps, fresh_state(), 0, CONTINUE)
        assert (index, outcome) == (1, None)
    monkeypatch.setenv(accel.STAGE_SWITCH, "1")
    assert Pipeline((stage,))._preps is None
    monkeypatch.delenv(accel.STAGE_SWITCH)
    traced = type("Traced", (Stage,), {"__slots__": ()})
    stage.__class__ = traced
    try:
        assert Pipeline((stage,))._preps is None and stage.request_prep() is None
    finally:
        stage.__class__ = Stage
    pipeline.close()


def test_a_failure_reaches_the_pipeline_with_the_guests_stderr():
    """The C request phase hands a failed stage's exception back annotated (the guest's
    unfinished stderr line) and with the stage's index, its instance already discarded."""
    if accel.ACCEL is None:
        pytest.skip("the C request phase needs the accelerator")
    wasm = guest(write(2, b"panic: boom") + " (unreachable)", imports=FD_WRITE)
    first = counted_stage(const_guest(EDITS[0][1]), "first")
    broken = counted_stage(wasm, "broken")
    pipeline = Pipeline((first, broken))
    index, outcome = accel.ACCEL.run_stages(pipeline._preps, fresh_state(), 0, CONTINUE)
    assert index == 1 and isinstance(outcome, GuestTrap)
    assert outcome.guest_stderr == ["panic: boom"] and outcome.__traceback__ is not None
    assert broken.live_instances == 0
    pipeline.close()


def test_a_bad_output_on_a_cached_stage_does_not_poison_the_cache():
    """An undecodable output is never cached: the stage's action cache holds only what decoded."""
    bad = counted_stage(const_guest({"action": "explode"}), "bad", on_error="fail_open")
    pipeline = Pipeline((bad,))
    for _ in range(2):
        assert pipeline.on_request(fresh_state()) is None
    assert bad._actions == {}
    with pytest.raises(AbiDecodeError):
        bad._request_action(b"\x81\xa6action\xa7explode")
    pipeline.close()


def test_a_stage_under_admission_counts_nothing_in_a_pipeline():
    """An isolated stage (admission's, NULL_METER) runs in a pipeline like any other and is
    counted nowhere: its prep has no deque to append to."""
    stage = Stage.isolated(StageSettings(name="isolated"), GuestModule.from_bytes(default_runtime(),
                                                                                   const_guest(EDITS[0][1])))
    pipeline = Pipeline((stage,))
    assert pipeline._preps[0][4] is None
    state = fresh_state()
    assert pipeline.on_request(state) is None and dict(state.headers)["x-b"] == "2"
    assert len(stage._idle) == 1
    pipeline.close()
