"""Compile cache: a module is compiled once per machine and deserialized everywhere else.

``<data_dir>/cache/<sha256>-<engine key>.cwasm``. Compiling in a gunicorn worker after the
master compiled in parallel hangs (rayon's pool does not survive fork), so the master
compiles every module at start and the workers only deserialize.
"""

from __future__ import annotations

import hashlib
import logging
import pathlib
import weakref

from ..errors import GuestLoadError, RegistryError
from ..runtime import GuestModule, Runtime
from .files import write_atomic

logger = logging.getLogger("mwhost.registry")


class CompileCache:
    """Loads modules through a folder of compiled artifacts; ``folder=None`` compiles every time."""

    def __init__(self, runtime: Runtime, folder: pathlib.Path | None) -> None:
        self.runtime = runtime
        self.folder = folder
        # (sha256, fuel) -> the module loaded for it, while any stage still holds it
        self._live: weakref.WeakValueDictionary[tuple[str, bool], GuestModule] = weakref.WeakValueDictionary()

    def artifact_path(self, sha256: str, fuel: bool = False) -> pathlib.Path | None:
        if self.folder is None:
            return None
        return self.folder / f"{sha256}-{self.runtime.flavour(fuel).key}.cwasm"

    def load(self, wasm: bytes, fuel: bool = False, sha256: str | None = None) -> GuestModule:
        """The checked module for ``wasm`` (for the fuel-metering engine if ``fuel``), from
        the cache when it holds it. A cache that cannot be written (disk full, read-only)
        costs a compile per process, never the load: the module is served from memory."""
        sha256 = sha256 or hashlib.sha256(wasm).hexdigest()
        # PERF: stages running one module (with their own configs and instances) share its
        # compiled code: one copy in memory and in the CPU's caches, not one per stage
        live = self._live.get((sha256, fuel))
        if live is not None:
            return live
        module = self._load(wasm, fuel, sha256)
        self._live[(sha256, fuel)] = module
        return module

    def _load(self, wasm: bytes, fuel: bool, sha256: str) -> GuestModule:
        artifact = self.artifact_path(sha256, fuel)
        if artifact is not None and artifact.exists():
            try:
                return GuestModule.from_compiled(self.runtime, str(artifact), sha256, fuel)
            except GuestLoadError as err:
                # NOTE: a stale or damaged artifact is rebuilt, never trusted.
                logger.warning("recompiling %s: %s", sha256[:12], err)
        module = GuestModule.from_bytes(self.runtime, wasm, fuel, sha256)
        try:
            self.keep(module)
        except RegistryError as err:
            logger.warning("%s; serving %s from memory", err, sha256[:12])
        return module

    def keep(self, module: GuestModule) -> None:
        """Store ``module``'s compiled artifact (compiled elsewhere, e.g. by a check that must
        not write before it passed), so the next load only deserializes it; RegistryError
        when it cannot be written whole."""
        artifact = self.artifact_path(module.sha256, module.fuel)
        if artifact is None or artifact.exists():
            return
        try:
            write_atomic(artifact, module.serialize())
        except OSError as err:
            raise RegistryError(f"cannot write the compiled module {artifact}: {err.strerror or err}") from err
