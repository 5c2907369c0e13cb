"""Admission: the one way a module version becomes servable, whoever brings it.

The config seed, the drop folder, the admin API, ``mwhost validate`` and (next) rollouts
all call ``admit``; workers then only load versions they find by sha256. In order, each
with its own answer:

1. the bytes are a core WebAssembly binary (``\\0asm``, version 1)  400 ``check: binary``
2. they compile                                                  400 ``check: compile``
3. the ABI (v1, or http-wasm for a module importing from
   ``http_handler``; both or neither is refused), its exports and
   imports (names and signatures)                                 422 ``check: abi``
4. it instantiates within its limits, ``_initialize``,
   ``mw_abi_version`` = 1, ``mw_init`` accepts its config         422 ``check: init`` (``abi`` for the version)
   (http-wasm: ``_start`` or ``_initialize``, with ``get_config``)
5. probe requests (the golden requests, then the caller's samples)
   run without a trap, a timeout or an invalid action, through the
   response phase when the module has one (http-wasm: through
   ``handle_request``, the golden response standing in for the app) 422 ``check: probe``

It runs in isolation: the module compiles in memory (nothing is written: the caller keeps
the artifact once it decided to serve the version), and the stage counts into no production
meter (probe calls are not traffic). The sizes (413) and signatures (403) of an upload are
the admin API's, checked before this.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import AdminBadRequest, GuestLoadError, ModuleRefused, ModuleRejected
from ..registry import CompileCache
from ..runtime import GuestModule, Runtime
from ..runtime.module import ABI_HTTP_WASM
from ..settings import StageSettings
from .httpwasm_stage import HttpWasmStage
from .messages import RequestState, ResponseState
from .probes import GOLDEN_REQUESTS, GOLDEN_RESPONSE
from .stage import STAGE_FAILURES, Stage

WASM_MAGIC = b"\0asm"
WASM_VERSION_1 = b"\x01\0\0\0"


@dataclass(frozen=True)
class Admitted:
    """A version that passed every check: its digest, compiled module and probe count."""

    settings: StageSettings
    sha256: str
    module: GuestModule
    probes: int

    @property
    def has_on_response(self) -> bool:
        return self.module.has_on_response

    @property
    def abi(self) -> str:
        """``v1`` or ``http-wasm``."""
        return self.module.abi


def admit(settings: StageSettings, wasm: bytes, runtime: Runtime,
          samples: Iterable[dict[str, Any]] = (), sha256: str | None = None,
          cache: CompileCache | None = None) -> Admitted:
    """Run every check on ``wasm`` as stage ``settings``; AdminBadRequest (binary, compile)
    or ModuleRejected (abi, init, probe) says which failed, with ``check`` naming it.

    ``cache`` is for versions admitted before (a rollback): their compiled artifact is
    loaded instead of compiling again; new versions compile in memory."""
    check_binary(wasm)
    sha256 = sha256 or hashlib.sha256(wasm).hexdigest()
    module = _compiled(settings, wasm, cache or CompileCache(runtime, None), sha256)
    try:
        stage = (HttpWasmStage if module.abi == ABI_HTTP_WASM else Stage).isolated(settings, module)
    except ModuleRefused as err:
        raise ModuleRejected(f"the module breaks {_abi_name(module.abi)}: {err}", check="abi") from err
    except GuestLoadError as err:
        raise ModuleRejected(f"the module does not start with its config and limits: {err}", check="init") from err
    try:
        probes = run_probes(stage, samples)
    finally:
        stage.close()
    return Admitted(settings, sha256, module, probes)


def check_binary(wasm: bytes) -> None:
    """A core WebAssembly binary, version 1 (a cheap look before compiling; wasmtime would
    also parse WebAssembly text and answer with a text parser's error)."""
    if not wasm:
        raise AdminBadRequest("the module is empty (0 bytes)", check="binary")
    if wasm[:4] != WASM_MAGIC:
        hint = (" (this looks like WebAssembly text: compile it with wat2wasm first)"
                if wasm.lstrip()[:1] in (b"(", b";") else "")
        raise AdminBadRequest(f"the module is not a WebAssembly binary: it does not start with \\0asm{hint}", check="binary")
    if wasm[4:8] != WASM_VERSION_1:
        what = "a component (component model), not a core module" if wasm[6:8] == b"\x01\0" else \
            f"binary format version {wasm[4:8].hex() or 'missing'}"
        raise AdminBadRequest(f"the module is {what}; the host runs core WebAssembly modules (version 1)",
                              check="binary")


def _compiled(settings: StageSettings, wasm: bytes, cache: CompileCache, sha256: str) -> GuestModule:
    try:
        return cache.load(wasm, settings.fuel > 0, sha256)
    except ModuleRefused as err:
        # NOTE: the refusal comes before a module exists: it says which ABI's rules it broke,
        # or none when no ABI could be told (both, or neither), whose message says so itself
        detail = f"the module breaks {_abi_name(err.abi)}: {err}" if err.abi else str(err)
        raise ModuleRejected(detail, check="abi") from err
    except GuestLoadError as err:
        raise AdminBadRequest(f"the module does not compile: {err}", check="compile") from err


def _abi_name(abi: str) -> str:
    return "the http-wasm handler ABI" if abi == ABI_HTTP_WASM else "ABI v1"


def run_probes(stage: Stage, samples: Iterable[dict[str, Any]] = ()) -> int:
    """Send the golden requests and ``samples`` through ``stage``; returns how many it answered."""
    probes = [(f"golden request {name!r}", message) for name, message in GOLDEN_REQUESTS.items()]
    probes += [(f"sample request #{i}", message) for i, message in enumerate(samples)]
    for label, message in probes:
        state = RequestState(message["method"], message["path"], message["query"],
                             [(name, value) for name, value in message["headers"]],
                             message["remote_addr"], message["scheme"])
        state.ctx.update(message["ctx"])
        phase = "request"
        try:
            action = stage.on_request(state)
            if stage.has_on_response and not action.respond:
                phase = "response"
                response = ResponseState(GOLDEN_RESPONSE["status"],
                                         [(name, value) for name, value in GOLDEN_RESPONSE["headers"]])
                stage.on_response(state, response)
        except STAGE_FAILURES as err:
            kind = getattr(err, "kind", "abi")
            logged = getattr(err, "guest_log", None)
            said = f"; the guest logged: {' | '.join(logged)}" if logged else ""
            raise ModuleRejected(f"{label} ({message['method']} {message['path']}) failed in the {phase} "
                                 f"phase ({kind}): {err}{said}", check="probe", probe=label, failure=kind,
                                 guest_log=list(logged or ())) from err
    return len(probes)
