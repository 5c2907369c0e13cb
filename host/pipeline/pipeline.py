"""An immutable pipeline of stages: request phase in order, response phase in reverse."""

from __future__ import annotations

from ..abi.messages import CONTINUE, Action
from ..runtime import accel
from .messages import RequestState, ResponseState, edit_headers, stage_failed
from .stage import STAGE_FAILURES, Stage


class Pipeline:
    """A tuple of stages and a generation number. Never mutated: a swap builds a new one."""

    __slots__ = ("stages", "generation", "_preps")

    def __init__(self, stages: tuple[Stage, ...] = (), generation: int = 0) -> None:
        self.stages = stages
        self.generation = generation
        # PERF: what the C request phase needs of each plain stage, resolved once (None for
        # the stages only Python calls); None when no stage can be called in C
        preps = tuple(stage.request_prep() if type(stage) is Stage else None for stage in stages)
        self._preps = preps if any(preps) and accel.stage_calls_in_c() else None

    def __len__(self) -> int:
        return len(self.stages)

    def on_request(self, state: RequestState) -> Action | None:
        """Run the request phase; a ``respond`` action (a stage's or a failure's) ends it."""
        preps, native = self._preps, accel.ACCEL
        if preps is None or native is None:
            return self._in_python(state, 0, len(self.stages))
        # PERF: plain stages run in C (``run_stages``: the stage call, the action cache, the
        # meter, ``state.apply``, ``state.ran``) until one needs Python: a subclass's call, a
        # new instance, a respond, a failure. The same effects as ``_in_python``.
        index, outcome = native.run_stages(preps, state, 0, CONTINUE)
        return self.resume(state, index, outcome)

    def resume(self, state: RequestState, index: int, outcome) -> Action | None:
        """The request phase from where the C loop (``run_stages``, the web layer's
        ``RequestEdge``) stopped: at stage ``index`` (``len(self)`` when every stage ran) with
        ``outcome``: None (the stage needs the Python path), a ``respond`` action, or the
        exception the stage failed with (its instance already discarded and counted)."""
        count = len(self.stages)
        while index < count:
            if outcome is None:
                outcome = self._in_python(state, index, index + 1)
            elif isinstance(outcome, BaseException):
                outcome = _request_failure(self.stages[index], outcome, state)
            if outcome is not None:
                return outcome
            native = accel.ACCEL
            if native is None or self._preps is None:  # NOTE: the accelerator switched off since
                return self._in_python(state, index + 1, count)
            index, outcome = native.run_stages(self._preps, state, index + 1, CONTINUE)
        return None

    def _in_python(self, state: RequestState, start: int, stop: int) -> Action | None:
        """The request phase of ``stages[start:stop]``, each stage called in Python."""
        stages = self.stages
        for index in range(start, stop):
            stage = stages[index]
            try:
                action = stage.call_request(state)
            except STAGE_FAILURES as err:
                failed = _request_failure(stage, err, state)
                if failed is None:
                    continue  # fail_open
                return failed
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


def _request_failure(stage: Stage, err: BaseException, state: RequestState) -> Action | None:
    """A stage's request call failed: None when it fails open, else the respond action a
    client gets; any error that is no stage failure is raised again."""
    if not isinstance(err, STAGE_FAILURES):
        raise err
    if stage.failed(err, "request", state):
        return None
    status, headers, body = stage_failed(stage.name)
    return Action(respond=True, status=status, headers=headers, body=body)


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
