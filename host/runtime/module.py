"""A compiled guest module, checked against its ABI's exports and imports before anything runs.

Two ABIs: ABI v1 (``mw_*`` exports, ``mw.log``) and the http-wasm handler ABI (imports from
``http_handler``, exports ``handle_request``); ``detect_abi`` tells them apart.
"""

from __future__ import annotations

import hashlib

import wasmtime

from ..errors import GuestLoadError, ModuleRefused
from . import httpwasm
from .engine import Runtime

_I32, _I64 = "i32", "i64"

# export name -> (params, results); see abi/ABI.md
REQUIRED_EXPORTS = {
    "mw_abi_version": ((), (_I32,)),
    "mw_alloc": ((_I32,), (_I32,)),
    "mw_on_request": ((_I32, _I32), (_I64,)),
}
OPTIONAL_EXPORTS = {
    "mw_on_response": ((_I32, _I32), (_I64,)),
    "mw_init": ((_I32, _I32), (_I32,)),
    "_initialize": ((), ()),
}
HOST_IMPORTS = {("mw", "log"): ((_I32, _I32, _I32), ())}
WASI_MODULE = "wasi_snapshot_preview1"

ABI_V1, ABI_HTTP_WASM = "v1", "http-wasm"


def _signature(ty: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results)


def _describe(sig: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    params, results = sig
    return f"({', '.join(params)}) -> ({', '.join(results)})"


def detect_abi(module: wasmtime.Module) -> str:
    """Which ABI a module speaks: importing from ``http_handler`` (or exporting
    ``handle_request`` without ``mw_on_request``) is http-wasm, importing ``mw`` or exporting
    ``mw_on_request`` is ABI v1; both, or neither, is refused."""
    imports = {imp.module for imp in module.imports}
    exports = {export.name for export in module.exports}
    http = httpwasm.MODULE in imports
    v1 = "mw" in imports or "mw_on_request" in exports
    if http and v1:
        raise ModuleRefused("the module mixes two guest ABIs: it imports from 'http_handler' (http-wasm) "
                            "and imports 'mw' or exports 'mw_on_request' (ABI v1); a module speaks one")
    if http or (not v1 and "handle_request" in exports):
        return ABI_HTTP_WASM
    if v1 or exports & set(REQUIRED_EXPORTS):
        return ABI_V1
    raise ModuleRefused("the module speaks no guest ABI this host knows: it exports neither 'mw_on_request' "
                        "(ABI v1) nor 'handle_request' (http-wasm, with imports from 'http_handler')")


def check_abi(module: wasmtime.Module) -> set[str]:
    """Refuse a module that breaks its ABI's export or import rules (the refusal names that
    ABI in ``abi``; a detection refusal names none); return its export names."""
    abi = detect_abi(module)
    try:
        if abi == ABI_HTTP_WASM:
            return check_httpwasm(module)
        exports = _checked_exports(module, REQUIRED_EXPORTS, OPTIONAL_EXPORTS, "the module")
        for imp in module.imports:
            _check_import(imp)
        return set(exports)
    except ModuleRefused as err:
        err.abi = abi
        raise


def _checked_exports(module: wasmtime.Module, required: dict, optional: dict, who: str) -> dict:
    """The module's exports by name, after refusing a missing memory or required function and
    any of these functions with the wrong signature."""
    exports = {export.name: export.type for export in module.exports}
    if not isinstance(exports.get("memory"), wasmtime.MemoryType):
        raise ModuleRefused("the module does not export its linear memory as 'memory'")
    for name, want in {**required, **optional}.items():
        ty = exports.get(name)
        if ty is None:
            if name in required:
                raise ModuleRefused(f"{who} does not export the required function {name!r}")
            continue
        if not isinstance(ty, wasmtime.FuncType) or _signature(ty) != want:
            got = _describe(_signature(ty)) if isinstance(ty, wasmtime.FuncType) else "not a function"
            raise ModuleRefused(f"export {name!r} must have the signature {_describe(want)}, got {got}")
    return exports


def check_httpwasm(module: wasmtime.Module) -> set[str]:
    """Refuse an http-wasm guest that breaks that ABI's export or import rules."""
    exports = _checked_exports(module, httpwasm.REQUIRED_EXPORTS, httpwasm.OPTIONAL_EXPORTS, "the http-wasm guest")
    for imp in module.imports:
        where = f"{imp.module}.{imp.name}"
        if imp.module == WASI_MODULE:
            continue
        want = httpwasm.IMPORTS.get(imp.name or "") if imp.module == httpwasm.MODULE else None
        if want is None:
            raise ModuleRefused(f"the module imports {where!r}, which the host does not provide "
                                f"(allowed for http-wasm guests: http_handler.* and {WASI_MODULE}.*)")
        if not isinstance(imp.type, wasmtime.FuncType) or _signature(imp.type) != want:
            raise ModuleRefused(f"import {where!r} must have the signature {_describe(want)}")
    return set(exports)


def _check_import(imp: wasmtime.ImportType) -> None:
    where = f"{imp.module}.{imp.name}"
    if imp.module == WASI_MODULE:
        return
    want = HOST_IMPORTS.get((imp.module, imp.name or ""))
    if want is None:
        raise ModuleRefused(
            f"the module imports {where!r}, which the host does not provide "
            f"(allowed: mw.log and {WASI_MODULE}.*)")
    if not isinstance(imp.type, wasmtime.FuncType) or _signature(imp.type) != want:
        raise ModuleRefused(f"import {where!r} must have the signature {_describe(want)}")


class GuestModule:
    """One compiled, ABI-checked module version, ready to instantiate many times."""

    __slots__ = ("runtime", "flavour", "module", "sha256", "abi", "exports", "needs_wasi", "can_wait", "_pre",
                 "__weakref__")

    def __init__(self, runtime: Runtime, module: wasmtime.Module, sha256: str, fuel: bool = False) -> None:
        self.runtime = runtime
        self.flavour = runtime.flavour(fuel)
        self.module = module
        self.sha256 = sha256
        self.abi = detect_abi(module)
        self.exports = check_abi(module)
        self.needs_wasi = any(imp.module == WASI_MODULE for imp in module.imports)
        #: it imports WASI poll_oneoff, so its calls need a start time to bound their waits
        self.can_wait = any(imp.module == WASI_MODULE and imp.name == "poll_oneoff" for imp in module.imports)
        try:
            # PERF: resolve imports once; each instance is then a cheap instantiate.
            self._pre = self.flavour.linker.instantiate_pre(module)
        except wasmtime.WasmtimeError as err:
            raise ModuleRefused(f"the module's imports cannot be satisfied: {err}") from err

    @classmethod
    def from_bytes(cls, runtime: Runtime, wasm: bytes, fuel: bool = False,
                   sha256: str | None = None) -> "GuestModule":
        """Compile ``wasm`` (a binary module) and check it against the ABI; ``sha256`` is the
        bytes' digest when the caller has it already."""
        try:
            module = wasmtime.Module(runtime.flavour(fuel).engine, wasm)
        except wasmtime.WasmtimeError as err:
            raise GuestLoadError(f"not a valid WebAssembly module: {err}") from err
        return cls(runtime, module, sha256 or hashlib.sha256(wasm).hexdigest(), fuel)

    @classmethod
    def from_compiled(cls, runtime: Runtime, path: str, sha256: str, fuel: bool = False) -> "GuestModule":
        """Load a module compiled earlier by the same engine flavour (a ``.cwasm``)."""
        try:
            module = wasmtime.Module.deserialize_file(runtime.flavour(fuel).engine, path)
        except wasmtime.WasmtimeError as err:
            raise GuestLoadError(f"cannot load compiled module {path}: {err}") from err
        return cls(runtime, module, sha256, fuel)

    @property
    def fuel(self) -> bool:
        return self.flavour.fuel

    @property
    def has_on_response(self) -> bool:
        """Whether the module has a response phase (``mw_on_response`` or ``handle_response``)."""
        return "mw_on_response" in self.exports or "handle_response" in self.exports

    @property
    def has_init(self) -> bool:
        return "mw_init" in self.exports

    def instantiate(self, store: wasmtime.Store) -> wasmtime.Instance:
        return self._pre.instantiate(store)

    def serialize(self) -> bytes:
        return bytes(self.module.serialize())


def wat_to_wasm(source: str) -> bytes:
    """Compile WebAssembly text to a binary module (for tests and hand-written guests)."""
    return bytes(wasmtime.wat2wasm(source))
