"""A stage: one module version with its settings and a pool of instances."""

from __future__ import annotations

import logging
import time
import weakref

from ..abi import Codec
from ..abi.codec import decode_action, decode_response_action
from ..abi.messages import Action, ResponseAction
from ..errors import AbiError, GuestError, GuestLoadError
from ..metrics import FOLD_AT, METRICS, NULL_METER
from ..registry import CompileCache
from ..runtime import GuestInstance, GuestModule, Limits, accel
from ..settings import StageSettings
from ..tracing import parent_context, stage_tracer
from .failures import FailureLog, annotate, failure_kind
from .messages import RequestState, ResponseState

logger = logging.getLogger("mwhost.pipeline")

#: what one stage call may raise; each fails that request by the stage's policy
STAGE_FAILURES = (AbiError, GuestError)

FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 10.0

_CACHED_OUTPUT_BYTES = 512
_CACHED_OUTPUTS = 64


def _decoded(raw: bytes, cache: dict, decode):
    result = cache.get(raw)
    if result is None:
        result = decode(raw)  # raises AbiDecodeError for bad output; nothing is cached then
        if len(raw) <= _CACHED_OUTPUT_BYTES and len(cache) < _CACHED_OUTPUTS:
            cache[raw] = result
    return result


class _Slot:
    """An instance and the codec that packs its inputs (msgpack packers are not thread-safe)."""

    __slots__ = ("instance", "codec")

    def __init__(self, instance: GuestInstance) -> None:
        self.instance = instance
        self.codec = Codec()


def stage_key(settings: StageSettings, sha256: str) -> tuple:
    """What makes two stages interchangeable: same module version, same settings."""
    return (settings.name, sha256, *settings.policy())


def limits_of(settings: StageSettings) -> Limits:
    """The runtime's view of a stage's limits."""
    return Limits(timeout_ms=settings.timeout_ms, max_memory_mb=settings.max_memory_mb, fuel=settings.fuel,
                  max_output_bytes=settings.max_output_kb * 1024, max_log_bytes=settings.max_log_kb * 1024)


class Stage:
    """An immutable stage with a pool of idle instances.

    A call takes an instance out of the pool and puts it back when it succeeded, so no
    instance is ever used by two threads at once (gthread workers), and a failed one is
    simply not put back: the next call gets a fresh instance.
    """

    __slots__ = ("settings", "name", "module", "version", "label", "fail_open", "key",
                 "has_on_response", "limits", "_config", "_idle", "_actions", "_response_actions",
                 "_failures", "_backoff_until", "_backoff_s", "live_instances", "_meters", "_request_meter",
                 "_tracer", "__weakref__")

    def __init__(self, settings: StageSettings, module: GuestModule, *, isolated: bool = False) -> None:
        self.settings = settings
        self.limits = limits_of(settings)
        self.name = settings.name
        self.module = module
        self.version = module.sha256
        self.key = stage_key(settings, module.sha256)
        self.label = f"{self.name}@{self.version[:12]}"
        self.fail_open = settings.fail_open
        self.has_on_response = module.has_on_response
        self._config = Codec().encode_config(dict(settings.config))
        self._idle: list[_Slot] = []
        # PERF: many stages answer with the same bytes every time (add_header, a CORS
        # preflight...); remember the decoded result of small outputs. Decoded actions are
        # never mutated, so the cache is shared by all threads.
        self._actions: dict[bytes, Action] = {}
        self._response_actions: dict[bytes, ResponseAction] = {}
        self._failures = FailureLog()
        self._backoff_until = 0.0
        self._backoff_s = 0.0
        self.live_instances = 0
        if isolated:
            # NOTE: a stage under admission is not traffic: no meters, no instance gauge
            self._meters = {"request": NULL_METER, "response": NULL_METER}
        else:
            self._meters = {phase: METRICS.meter(self.name, self.version, phase) for phase in ("request", "response")}
            METRICS.track_instances(self.name, self.version, weakref.ref(self))
        self._request_meter = self._meters["request"]
        self._tracer = None

    @classmethod
    def load(cls, settings: StageSettings, wasm: bytes, cache: CompileCache, sha256: str | None = None) -> "Stage":
        """Compile (or fetch from cache) and check the module, and create the first instance,
        so a bad config or a trapping ``mw_init`` fails here, not on a request.

        NOTE: tracing is chosen here, once: with an OpenTelemetry SDK configured the stage is
        a TracedStage; without, the plain class's calls are used as they are and a request
        pays nothing for tracing (and no bound method on the instance makes a cycle that only
        the cyclic collector could free)."""
        tracer = stage_tracer()
        stage = (TracedStage if tracer else cls)(settings, cache.load(wasm, fuel=settings.fuel > 0, sha256=sha256))
        stage._tracer = tracer
        stage._idle.append(stage._new_slot())
        return stage

    @classmethod
    def isolated(cls, settings: StageSettings, module: GuestModule) -> "Stage":
        """A stage for admission: its first instance made (``mw_init`` run), counted nowhere."""
        stage = cls(settings, module, isolated=True)
        stage._idle.append(stage._new_slot())
        return stage

    # ---- instances ----------------------------------------------------------------------

    def _new_slot(self) -> _Slot:
        instance = GuestInstance(self.module, self.limits, self.label)
        try:
            instance.init(self._config)
        except BaseException:
            instance.close()
            raise
        self.live_instances += 1
        return _Slot(instance)

    def _discard(self, slot: _Slot) -> None:
        slot.instance.close()
        self.live_instances -= 1

    def _acquire(self) -> _Slot:
        # NOTE: list.pop and list.append are atomic under the GIL: no lock needed.
        try:
            return self._idle.pop()
        except IndexError:
            return self._replacement()

    def _replacement(self) -> _Slot:
        """A new instance for a request; after a failed one, wait (exponentially longer,
        up to MAX_BACKOFF_S) before trying again instead of spinning on instantiation."""
        now = time.monotonic()
        if now < self._backoff_until:
            raise GuestLoadError(f"creating an instance failed; next try in "
                                 f"{(self._backoff_until - now) * 1000:.0f} ms")
        try:
            slot = self._new_slot()
        except GuestError:
            self._backoff_s = min(MAX_BACKOFF_S, self._backoff_s * 2 or FIRST_BACKOFF_S)
            self._backoff_until = time.monotonic() + self._backoff_s
            raise
        self._backoff_s = 0.0
        return slot

    @property
    def idle_instances(self) -> int:
        return len(self._idle)

    def close(self) -> None:
        """Free the idle instances (those in use are freed by the calls that hold them)."""
        while self._idle:
            self._discard(self._idle.pop())

    def __del__(self) -> None:
        try:
            self.close()
            for meter in self._meters.values():
                if meter is not NULL_METER:
                    METRICS.retire(meter)
        except Exception:  # noqa: BLE001 - at interpreter exit module globals may be gone
            pass

    def failed(self, err: Exception, phase: str, state: RequestState | None = None) -> bool:
        """Count and report a failure (the log line is rate-limited per kind), with what an
        operator needs to find the culprit; returns whether the request goes on (fail_open)."""
        self._meters[phase].failure(failure_kind(err))
        self._failures.report(self, err, phase, state.request_id() if state is not None else None)
        return self.fail_open

    # ---- calls --------------------------------------------------------------------------

    def on_request(self, state: RequestState, _clock=time.perf_counter) -> Action:
        # PERF: the per-request stage call, flat: the clock bound as a default, the pool's
        # pop inline, the request packed once per request (``state.message``, reset by
        # ``RequestState.apply`` on an edit), the decoded-output cache read inline.
        # NOTE: with the accelerator, Pipeline.on_request calls a plain stage through
        # ``_accel.run_stages`` (host/runtime/_accel.c), which does what this does: keep the
        # two in step (tests/pipeline/test_request_phase.py runs both).
        started = _clock()
        meter = self._request_meter
        try:
            slot = self._idle.pop()
        except IndexError:
            try:
                slot = self._replacement()
            except BaseException:
                meter.record(_clock() - started, False)
                raise
        try:
            message = state.message
            if message is None:
                message = state.message = state.pack(slot.codec)
            instance = slot.instance
            call = instance.request_call
            if call is not None:
                # PERF: GuestInstance.on_request written out for an open instance with no
                # per-call fuel or Python clock (one Python frame less per stage; the log's calls
                # only after a call that logged); keep them in step
                log = instance.log
                if not log.clean:
                    log.begin_call()
                raw = call(message)
                if not log.clean and log.pending:
                    log.end_call()
            else:
                raw = instance.on_request(message)
            action = self._actions.get(raw)
            if action is None:
                action = _decoded(raw, self._actions, decode_action)
        except BaseException as err:
            self._request_failed(slot, err, _clock() - started)
            raise
        self._idle.append(slot)
        meter.record(_clock() - started, True)
        return action

    def _request_failed(self, slot: _Slot, err: BaseException, seconds: float) -> None:
        """A request call failed: the guest's last lines, the failure's context, the instance
        discarded, the call counted (also run_stages's failure path, in C)."""
        log = slot.instance.log
        if log.pending:  # NOTE: as on_request's finally: the guest's last lines before the report
            log.end_call()
        annotate(err, slot.instance)
        self._discard(slot)  # its memory may be half-written: never reuse it
        self._request_meter.record(seconds, False)

    def _request_action(self, raw: bytes) -> Action:
        """The Action of output ``raw`` on a miss of the decoded-action cache (run_stages)."""
        return _decoded(raw, self._actions, decode_action)

    def request_prep(self) -> tuple | None:
        """What the C request phase (``_accel.run_stages``) needs of this stage, resolved
        once per pipeline; None for a subclass (traced, http-wasm): Python calls those."""
        if type(self) is not Stage:
            return None
        meter = self._request_meter
        durations = getattr(meter, "waiting", None)  # None for NULL_METER: nothing to count
        if durations is None:
            return (self, self._idle, self._actions, meter, None, None, FOLD_AT, self.has_on_response)
        # PERF: the calls counted in C (the meter's Tally), else appended to its deque
        tally = meter.tally_with(accel.ACCEL.Tally) if hasattr(accel.ACCEL, "Tally") else None
        if tally is not None:
            return (self, self._idle, self._actions, meter, tally, tally, FOLD_AT, self.has_on_response)
        return (self, self._idle, self._actions, meter, durations, durations.append, FOLD_AT,
                self.has_on_response)

    def on_response(self, state: RequestState, response: ResponseState) -> ResponseAction:
        started = time.perf_counter()
        try:
            slot = self._acquire()
        except BaseException:
            self._meters["response"].record(time.perf_counter() - started, False)
            raise
        try:
            message = slot.codec.encode_response(
                response.status, response.headers, state.ctx, state.method, state.path)
            action = _decoded(slot.instance.on_response(message), self._response_actions,
                              decode_response_action)
        except BaseException as err:
            annotate(err, slot.instance)
            self._discard(slot)
            self._meters["response"].record(time.perf_counter() - started, False)
            raise
        self._idle.append(slot)
        self._meters["response"].record(time.perf_counter() - started, True)
        return action

    #: what the pipeline calls (TracedStage wraps them in spans)
    call_request = on_request
    call_response = on_response


class TracedStage(Stage):
    """A stage whose calls each get an OpenTelemetry span (only with an SDK configured)."""

    __slots__ = ()

    def call_request(self, state: RequestState) -> Action:
        with self._span("request", state) as span:
            action = self.on_request(state)
            span.set_attribute("mwhost.outcome", "respond" if action.respond else "continue")
            return action

    def call_response(self, state: RequestState, response: ResponseState) -> ResponseAction:
        with self._span("response", state) as span:
            action = self.on_response(state, response)
            span.set_attribute("mwhost.outcome", "ok")
            return action

    def _span(self, phase: str, state: RequestState):
        return self._tracer.start_as_current_span(
            f"mwhost {self.name} {phase}", context=parent_context(state.ctx.get("traceparent")),
            attributes={"mwhost.stage": self.name, "mwhost.version": self.version, "mwhost.phase": phase})
