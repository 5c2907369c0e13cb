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
