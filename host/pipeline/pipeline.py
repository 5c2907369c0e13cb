"""An immutable pipeline of stages: request phase in order, response phase in reverse."""

from __future__ import annotations

from ..abi.messages import CONTINUE, Action
from .messages import RequestState, ResponseState, edit_headers, stage_failed
from .stage import STAGE_FAILURES, Stage


class Pipeline:
    """A tuple of stages and a generation number. Never mutated: a swap builds a new one."""

    __slots__ = ("stages", "generation")

    def __init__(self, stages: tuple[Stage, ...] = (), generation: int = 0) -> None:
        self.stages = stages
        self.generation = generation

    def __len__(self) -> int:
        return len(self.stages)

    def on_request(self, state: RequestState) -> Action | None:
        """Run the request phase; a ``respond`` action (a stage's or a failure's) ends it."""
        for stage in self.stages:
            try:
                action = stage.call_request(state)
            except STAGE_FAILURES as err:
                if stage.failed(err, "request", state):
                    continue  # fail_open
                status, headers, body = stage_failed(stage.name)
                return Action(respond=True, status=status, headers=headers, body=body)
            if action.respond:
                return action
            if action is not CONTINUE:  # PERF: a bare continue edits nothing
                state.apply(action)
            state.ran.append((stage, action.response_headers))
            if stage.has_on_response:
                state.response_calls = True
        return None

    def close(self) -> None:
        for stage in self.stages:
            stage.close()


def response_phase(state: RequestState, response: ResponseState) -> None:
    """Run the response phase over the stages whose request phase completed, in reverse.

    It needs no pipeline: ``state.ran`` holds the very stages (and versions) that saw the request.
    """
    for stage, response_headers in reversed(state.ran):
        if response_headers:
            response.headers = edit_headers(response.headers, None, response_headers)
            response.changed = True
        if not stage.has_on_response:
            continue
        try:
            action = stage.call_response(state, response)
        except STAGE_FAILURES as err:
            if not stage.failed(err, "response", state):
                response.replace(*stage_failed(stage.name))
            continue
        if action.status is not None:
            response.status = action.status
            response.changed = True
        if action.remove_headers or action.set_headers:
            response.headers = edit_headers(response.headers, action.remove_headers, action.set_headers)
            response.changed = True
        if action.body is not None:
            response.body = action.body
            response.changed = True
