"""A stage: one module version with its settings and one instance per thread."""

from __future__ import annotations

import logging
import threading

from ..abi import Codec
from ..abi.codec import decode_action, decode_response_action
from ..abi.messages import Action, ResponseAction
from ..errors import AbiError, GuestError
from ..registry import CompileCache
from ..runtime import GuestInstance, GuestModule
from ..settings import StageSettings
from .messages import RequestState, ResponseState

logger = logging.getLogger("mwhost.pipeline")

#: what one stage call may raise; each fails that request by the stage's policy
STAGE_FAILURES = (AbiError, GuestError)


_CACHED_OUTPUT_BYTES = 512
_CACHED_OUTPUTS = 64


def _decoded(raw: bytes, cache: dict, decode):
    result = cache.get(raw)
    if result is None:
        result = decode(raw)  # raises AbiDecodeError for bad output; nothing is cached then
        if len(raw) <= _CACHED_OUTPUT_BYTES and len(cache) < _CACHED_OUTPUTS:
            cache[raw] = result
    return result


class Stage:
    """An immutable stage. Instances are per thread, so gthread workers never share one."""

    __slots__ = ("settings", "name", "module", "version", "label", "fail_open",
                 "has_on_response", "_config", "_local", "_actions", "_response_actions")

    def __init__(self, settings: StageSettings, module: GuestModule) -> None:
        self.settings = settings
        self.name = settings.name
        self.module = module
        self.version = module.sha256
        self.label = f"{self.name}@{self.version[:12]}"
        self.fail_open = settings.fail_open
        self.has_on_response = module.has_on_response
        self._config = Codec().encode_config(dict(settings.config))
        self._local = threading.local()
        # PERF: many stages answer with the same bytes every time (add_header, a CORS
        # preflight...); remember the decoded result of small outputs. Decoded actions are
        # never mutated, so the cache is shared by all threads.
        self._actions: dict[bytes, Action] = {}
        self._response_actions: dict[bytes, ResponseAction] = {}

    @classmethod
    def load(cls, settings: StageSettings, wasm: bytes, cache: CompileCache) -> "Stage":
        """Compile (or fetch from cache) and check the module, and create this thread's
        first instance so a bad config or a trapping ``mw_init`` fails here, not on a request."""
        stage = cls(settings, cache.load(wasm))
        stage._instance()
        return stage

    # ---- instances ----------------------------------------------------------------------

    def _instance(self) -> GuestInstance:
        instance = getattr(self._local, "instance", None)
        if instance is None:
            instance = GuestInstance(self.module, self.settings.limits, self.label)
            try:
                instance.init(self._config)
            except BaseException:
                instance.close()
                raise
            self._local.instance = instance
            self._local.codec = Codec()
        return instance

    def _discard(self) -> None:
        instance = getattr(self._local, "instance", None)
        self._local.instance = None
        if instance is not None:
            instance.close()

    def close(self) -> None:
        """Free this thread's instance (others are freed with their threads or the stage)."""
        self._discard()

    def failed(self, err: Exception, phase: str) -> None:
        """Log the failure once and throw the instance away: its memory may be half-written."""
        self._discard()
        kind = getattr(err, "kind", "abi")
        logger.error("stage %s failed in the %s phase (%s, %s): %s",
                     self.name, phase, kind, "fail_open" if self.fail_open else "fail_closed", err,
                     extra={"stage": self.name, "version": self.version, "kind": kind})

    # ---- calls --------------------------------------------------------------------------

    def on_request(self, state: RequestState) -> Action:
        instance = self._instance()
        message = self._local.codec.encode_request(
            state.method, state.path, state.query, state.headers,
            state.remote_addr, state.scheme, state.ctx)
        return _decoded(instance.on_request(message), self._actions, decode_action)

    def on_response(self, state: RequestState, response: ResponseState) -> ResponseAction:
        instance = self._instance()
        message = self._local.codec.encode_response(
            response.status, response.headers, state.ctx, state.method, state.path)
        return _decoded(instance.on_response(message), self._response_actions, decode_response_action)
