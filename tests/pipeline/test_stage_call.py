"""Stage.on_request's flat call (an instance's ``request_call``) reports a failure as the
instance's own ``on_request`` does: the guest's unfinished stderr line reaches the report."""

from __future__ import annotations

import falcon.testing
import pytest

from mwhost.errors import GuestTrap
from mwhost.pipeline import RequestState
from mwhost.pipeline.stage import Stage
from mwhost.runtime import GuestModule, default_runtime
from mwhost.settings import StageSettings
from tests.runtime.test_wasi import write
from tests.wat import guest

FD_WRITE = '(import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))'


def test_a_trapping_guests_unfinished_stderr_line_reaches_the_failure():
    """A guest that writes ``panic: boom`` (no newline) to stderr and traps: the stage call
    flushes the partial line before the failure is annotated, on the flat path too."""
    wasm = guest(write(2, b"panic: boom") + " (unreachable)", imports=FD_WRITE)
    stage = Stage.isolated(StageSettings(name="panicky"), GuestModule.from_bytes(default_runtime(), wasm))
    assert stage._idle[0].instance.request_call is not None  # the flat path is the one taken
    environ = falcon.testing.create_environ(headers={"X-A": "1"})
    state = RequestState.from_environ("GET", "/", "", environ, "", "http")
    with pytest.raises(GuestTrap) as caught:
        stage.on_request(state)
    assert caught.value.guest_stderr == ["panic: boom"]
    stage.close()


def test_the_log_budget_and_recent_lines_are_per_call_on_the_flat_path(caplog):
    """Each stage call gets the whole log budget again and only its own recent lines, also
    when the call before it logged (the flat path resets the log only after a logging call)."""
    import logging

    from mwhost.settings import StageSettings as Settings

    imports = '(import "mw" "log" (func $log (param i32 i32 i32)))'
    data = '(data (i32.const 16) "\\81" "\\a6" "action" "\\a8" "continue")'
    body = ("(local $i i32) (loop $l (call $log (i32.const 1) (i32.const 0) (i32.const 600)) "
            "(local.set $i (i32.add (local.get $i) (i32.const 1))) "
            "(br_if $l (i32.lt_u (local.get $i) (i32.const 3)))) (i64.const 0x0000001000000011)")
    wasm = guest(body, imports=imports, data=data)
    stage = Stage.isolated(Settings(name="chatty", max_log_kb=1), GuestModule.from_bytes(default_runtime(), wasm))
    instance = stage._idle[0].instance
    assert instance.request_call is not None
    environ = falcon.testing.create_environ()
    with caplog.at_level(logging.INFO, "mwhost.guest"):
        for _ in range(2):
            stage.on_request(RequestState.from_environ("GET", "/", "", environ, "", "http"))
            assert len(instance.log.recent) == 1  # this call's one admitted line, not the last call's
    lines = [r.getMessage() for r in caplog.records if "] log: " in r.getMessage()]
    assert len(lines) == 2  # one line of 600 bytes fits a 1 KiB budget per call, twice
    assert caplog.text.count("1200 bytes dropped") == 2
    stage.close()
