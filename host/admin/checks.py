"""Checks a module version passes before it serves, in order, each with its own answer:

1. the body is a core WebAssembly binary (``\\0asm``, version 1)      400 ``check: binary``
2. it compiles                                                     400 ``check: compile``
3. ABI v1 exports and imports (names and signatures)               422 ``check: abi``
4. it instantiates within its limits, ``_initialize``,
   ``mw_abi_version`` = 1, ``mw_init`` accepts its config           422 ``check: init`` (``abi`` for the version)
5. probe requests (the golden requests, then the upload's samples)
   run without a trap, a timeout or an invalid action, through the
   response phase when the module has one                          422 ``check: probe``

Nothing is written while checking: the module compiles in memory (the compile cache gets
its artifact only once the version is accepted, ``CompileCache.keep``). The size limit
(413) and signatures (403) are checked before any of this, by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import AdminBadRequest, GuestLoadError, ModuleRefused, ModuleRejected
from ..pipeline import RequestState, ResponseState, Stage
from ..pipeline.stage import STAGE_FAILURES
from ..registry import CompileCache
from ..runtime import GuestModule, Runtime
from ..settings import StageSettings
from .probes import GOLDEN_REQUESTS, GOLDEN_RESPONSE

WASM_MAGIC = b"\0asm"
WASM_VERSION_1 = b"\x01\0\0\0"


@dataclass(frozen=True)
class Checked:
    """A module that passed every check: compiled, and how many probe requests it answered."""

    module: GuestModule
    probes: int


class _CheckCache(CompileCache):
    """Compiles in memory only (a refused upload leaves nothing behind) and tells a module
    that is not valid WebAssembly (400) from one that breaks the ABI (422)."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime, None)
        self.module: GuestModule | None = None

    def load(self, wasm: bytes, fuel: bool = False) -> GuestModule:
        try:
            self.module = super().load(wasm, fuel)
        except ModuleRefused as err:
            raise ModuleRejected(f"the module breaks ABI v1: {err}", check="abi") from err
        except GuestLoadError as err:
            raise AdminBadRequest(f"the module does not compile: {err}", check="compile") from err
        return self.module


def check_binary(wasm: bytes) -> None:
    """A core WebAssembly binary, version 1 (a cheap look before compiling)."""
    if not wasm:
        raise AdminBadRequest("the body is empty: send the module's bytes", check="binary")
    if wasm[:4] != WASM_MAGIC:
        hint = (" (this looks like WebAssembly text: compile it with wat2wasm first)"
                if wasm.lstrip()[:1] in (b"(", b";") else "")
        raise AdminBadRequest(f"the body is not a WebAssembly binary: it does not start with \\0asm{hint}",
                              check="binary")
    if wasm[4:8] != WASM_VERSION_1:
        what = "a component (component model), not a core module" if wasm[6:8] == b"\x01\0" else \
            f"binary format version {wasm[4:8].hex() or 'missing'}"
        raise AdminBadRequest(f"the body is {what}; the host runs core WebAssembly modules (version 1)",
                              check="binary")


def check_module(settings: StageSettings, wasm: bytes, runtime: Runtime,
                 samples: Iterable[dict[str, Any]] = ()) -> Checked:
    """Run every check on ``wasm`` as stage ``settings``; an ``AdminError`` says which failed."""
    check_binary(wasm)
    cache = _CheckCache(runtime)
    try:
        stage = Stage.load(settings, wasm, cache)
    except ModuleRefused as err:
        raise ModuleRejected(f"the module breaks ABI v1: {err}", check="abi") from err
    except GuestLoadError as err:
        raise ModuleRejected(f"the module does not start with its config and limits: {err}", check="init") from err
    try:
        probes = run_probes(stage, samples)
    finally:
        stage.close()
    assert cache.module is not None
    return Checked(cache.module, probes)


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
            raise ModuleRejected(f"{label} ({message['method']} {message['path']}) failed in the {phase} "
                                 f"phase ({kind}): {err}", check="probe", probe=label, failure=kind) from err
    return len(probes)
