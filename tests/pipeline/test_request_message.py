"""The packed Request is made once per request and made again only after an edit."""

from __future__ import annotations

import pytest

from mwhost.abi.messages import CONTINUE, Action
from mwhost.pipeline import RequestState


def _state() -> RequestState:
    state = RequestState("GET", "/", "", [("host", "a")], "127.0.0.1", "http")
    state.message = b"packed"
    return state


def test_a_bare_continue_keeps_the_packed_request():
    """The shared bare continue changes nothing, so the next stage reuses the same bytes."""
    state = _state()
    state.apply(CONTINUE)
    assert state.message == b"packed"


def test_response_headers_alone_keep_the_packed_request():
    """response_headers do not change the request the next stage sees."""
    state = _state()
    state.apply(Action(response_headers=[("x-a", "1")]))
    assert state.message == b"packed"


@pytest.mark.parametrize("edit", [
    {"set_headers": [("x-a", "1")]}, {"remove_headers": ["host"]}, {"path": "/b"},
    {"query": "q=1"}, {"ctx": {"k": "v"}},
])
def test_every_request_edit_drops_the_packed_request(edit):
    """Any edit of headers, path, query or ctx makes the next stage pack the request again."""
    state = _state()
    state.apply(Action(**edit))
    assert state.message is None
