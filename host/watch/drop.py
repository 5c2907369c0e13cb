"""The drop folder: ``NAME.wasm`` (and optional ``NAME.toml``) becomes stage NAME.

A file appearing or changing is applied once it has settled (same size and mtime for
``SETTLE_S``) and passed every check a stage must pass (compile, ABI, instantiate,
``mw_init`` with its config); removing ``NAME.wasm`` removes the stage it created. A bad
file is rejected with a logged reason and the pipeline stays as it was. Runs in one
process (the gunicorn master): the manifest it writes reaches every worker.
"""

from __future__ import annotations

import logging
import pathlib
import threading
import time
import tomllib
from typing import Any

from ..errors import ConfigError, DropRejected, HostError
from ..pipeline import Stage
from ..registry import CompileCache, Manifest, ManifestStore, ModuleStore, StageEntry
from ..settings import STAGE_KEYS, Key, StageSettings, check_table
from .observer import watch_folder

logger = logging.getLogger("mwhost.drop")

SETTLE_S = 0.3

DROP_KEYS: dict[str, Key] = {
    **{name: key for name, key in STAGE_KEYS.items() if name not in ("name", "module")},
    "position": Key(int, None, "0-based place in the pipeline (default: appended; a replaced "
                    "stage keeps its place).", lambda v: None if v >= 0 else "must be 0 or more"),
}


class DropFolder:
    """Applies the drop folder's files to the manifest."""

    def __init__(self, folder: pathlib.Path, store: ModuleStore, cache: CompileCache,
                 manifests: ManifestStore) -> None:
        self.folder = folder
        self.store = store
        self.cache = cache
        self.manifests = manifests
        self._pending: dict[str, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._observer = None

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Apply what is there now, then watch for changes (in background threads)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.scan()
        self._observer = watch_folder(self.folder, self._on_path)
        threading.Thread(target=self._run, name="mwhost-drop", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.stop()

    def scan(self) -> None:
        """Apply every file present, and remove drop stages whose file is gone."""
        names = {path.stem for path in self.folder.glob("*.wasm") if not path.name.startswith(".")}
        current = self.manifests.read() or Manifest()
        names |= {entry.name for entry in current.stages if entry.origin == "drop"}
        for name in sorted(names):
            self.apply(name)

    def _on_path(self, path: pathlib.Path) -> None:
        if path.name.startswith(".") or path.suffix not in (".wasm", ".toml"):
            return
        with self._lock:
            self._pending[path.stem] = time.monotonic()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(SETTLE_S)
            self._wake.clear()
            for name in self._settled():
                try:
                    self.apply(name)
                except Exception:  # noqa: BLE001 - one bad file must not stop the folder
                    logger.exception("drop: applying %s failed", name)

    def _settled(self) -> list[str]:
        """Names whose files have not changed for SETTLE_S (a half-written file is not read)."""
        now = time.monotonic()
        ready = []
        with self._lock:
            for name, seen in list(self._pending.items()):
                if now - seen >= SETTLE_S and self._stable(name):
                    ready.append(name)
                    del self._pending[name]
        return ready

    def _stable(self, name: str) -> bool:
        path = self.folder / f"{name}.wasm"
        try:
            before = path.stat()
        except FileNotFoundError:
            return True  # removed: nothing to wait for
        time.sleep(0.05)
        try:
            after = path.stat()
        except FileNotFoundError:
            return True
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            self._pending[name] = time.monotonic()
            return False
        return True

    # ---- applying one name --------------------------------------------------------------

    def apply(self, name: str) -> bool:
        """Make stage ``name`` match its files; returns whether the manifest changed."""
        wasm_path = self.folder / f"{name}.wasm"
        try:
            if not wasm_path.exists():
                return self._remove(name)
            return self._install(name, wasm_path)
        except HostError as err:
            logger.error("drop: %s rejected, pipeline unchanged: %s", wasm_path.name, err)
            return False

    def _remove(self, name: str) -> bool:
        current = self.manifests.read() or Manifest()
        entry = current.stage(name)
        if entry is None or entry.origin != "drop":
            return False
        manifest = self.manifests.update(
            lambda m: m.with_stages([e for e in m.stages if e.name != name]), source="drop")
        logger.info("drop: removed stage %s (generation %d)", name, manifest.generation)
        return True

    def _install(self, name: str, wasm_path: pathlib.Path) -> bool:
        if STAGE_KEYS["name"].check(name):
            raise DropRejected(f"{name!r} is not a valid stage name (letters, digits, '-', '_', '.')")
        wasm = wasm_path.read_bytes()
        options = self._options(name)
        position = options.pop("position", None)
        settings = StageSettings(name=name, module=wasm_path, **options)
        Stage.load(settings, wasm, self.cache).close()  # every check a stage must pass
        entry = StageEntry.from_settings(settings, self.store.put(wasm), "drop")
        current = self.manifests.read() or Manifest()
        if current.stage(name) == entry and position is None:
            return False
        manifest = self.manifests.update(lambda m: _placed(m, entry, position), source="drop")
        logger.info("drop: stage %s is now %s (generation %d)", name, entry.sha256[:12], manifest.generation)
        return True

    def _options(self, name: str) -> dict[str, Any]:
        path = self.folder / f"{name}.toml"
        if not path.exists():
            return {}
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise ConfigError(f"{path}: not valid TOML: {err}") from err
        return check_table(table, DROP_KEYS, str(path))


def _placed(manifest: Manifest, entry: StageEntry, position: int | None) -> Manifest:
    stages = list(manifest.stages)
    index = next((i for i, e in enumerate(stages) if e.name == entry.name), None)
    if index is not None:
        stages.pop(index)
    if position is None:
        position = index if index is not None else len(stages)
    stages.insert(min(position, len(stages)), entry)
    return manifest.with_stages(stages)
