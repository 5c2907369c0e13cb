"""The drop folder: ``NAME.wasm`` (and optional ``NAME.toml``) becomes stage NAME.

A file is applied once it is complete (closed after writing or renamed into place, else
unchanged for ``SETTLE_S``) and passed admission (host/pipeline/admission.py: every check an
upload passes). A file that does not parse while it is still recent (``RECENT_S``) is
waited for, not rejected: writers that do not rename into place are slow sometimes.
Removing ``NAME.wasm`` removes the stage it created. A bad file is rejected with a logged
reason and the pipeline stays as it was. Every write and refusal is audited like an admin
call, as ``drop-folder``.

NOTE: ``<data_dir>/drop-applied.json`` records the files each name was last applied from.
A file is applied only when it differs from that record, so a restart (which scans the
folder) never reverts what an operator did since through the admin API: a new version
uploaded over a drop stage, or its removal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pathlib
import threading
import time
import tomllib
from typing import Any

from ..errors import AdminError, ConfigError, DropRejected, FleetUnavailable, HostError, RegistryError
from ..pipeline import admit
from ..registry import AuditLog, CompileCache, Manifest, ManifestStore, ModuleStore, StageEntry
from ..registry.files import write_atomic
from ..registry.transitions import end_if_active
from ..settings import STAGE_KEYS, Key, StageSettings, check_table
from .observer import watch_folder

logger = logging.getLogger("mwhost.drop")

SETTLE_S = 0.3
#: a fleet host's file that could not be written to the fleet (Redis down) is tried again this often
FLEET_RETRY_S = 2.0
#: a file modified this recently that does not parse is taken as still being written
RECENT_S = 2.0
WHO = "drop-folder"
#: the host's ``[admin] trusted_keys`` handed to the drop process (paths joined by os.pathsep)
TRUSTED_KEYS_ENV = "MWHOST_DROP_TRUSTED_KEYS"

DROP_KEYS: dict[str, Key] = {
    **{name: key for name, key in STAGE_KEYS.items() if name not in ("name", "module")},
    "position": Key(int, None, "0-based place in the pipeline (default: appended; a replaced "
                    "stage keeps its place).", lambda v: None if v >= 0 else "must be 0 or more"),
}


class _NotComplete(Exception):
    """The file does not parse yet and changed recently: try again once it settles."""


class DropFolder:
    """Applies the drop folder's files to the manifest."""

    def __init__(self, folder: pathlib.Path, store: ModuleStore, cache: CompileCache,
                 manifests: ManifestStore, audit: AuditLog | None = None,
                 trusted_keys: tuple[pathlib.Path, ...] = ()) -> None:
        self.folder = folder
        #: with trusted keys a file needs a valid NAME.wasm.sig beside it (checked before any write)
        self.trusted_keys = trusted_keys
        self.store = store
        self.cache = cache
        self.manifests = manifests
        self.audit = audit or AuditLog(manifests.data_dir / "audit.log")
        self.applied = AppliedFiles(manifests.data_dir / "drop-applied.json")
        self._pending: dict[str, float] = {}
        #: names whose file waits for the fleet store to answer again (said once each)
        self._waiting_for_fleet: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._observer = None

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Apply what is there now, then watch for changes (in background threads)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._observer = watch_folder(self.folder, self._on_path)
        self.scan()
        threading.Thread(target=self._run, name="mwhost-drop", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.stop()

    def scan(self) -> None:
        """Apply every file present that changed since it was last applied, and remove drop
        stages whose file is gone. Files still being written are left to the watcher."""
        names = {path.stem for path in self.folder.glob("*.wasm") if not path.name.startswith(".")}
        # NOTE: only the names this folder applied (drop-applied.json), never every stage of
        # origin "drop": in a fleet the manifest also holds stages other hosts' folders made
        names |= set(self.applied.names())
        for name in sorted(names):
            if self._recent(name):
                self._defer(name)
            else:
                self.apply(name)

    def _on_path(self, path: pathlib.Path, kind: str = "modified") -> None:
        if path.name.startswith(".") or path.suffix not in (".wasm", ".toml") or path.parent != self.folder:
            return
        # NOTE: closed-after-write and renamed-into-place files are complete: due at once
        self._defer(path.stem, due_now=kind in ("closed", "moved"))

    def _defer(self, name: str, due_now: bool = False, later_s: float = 0.0) -> None:
        with self._lock:
            self._pending[name] = time.monotonic() - (SETTLE_S if due_now else 0.0) + later_s
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(SETTLE_S / 3)
            self._wake.clear()
            for name in self._settled():
                try:
                    self.apply(name)
                except Exception:  # noqa: BLE001 - one bad file must not stop the folder
                    logger.exception("drop: applying %s failed", name)

    def _settled(self) -> list[str]:
        """Names whose files have not changed for SETTLE_S (a half-written file is not read)."""
        now = time.monotonic()
        with self._lock:
            due = [name for name, seen in self._pending.items() if now - seen >= SETTLE_S]
        ready = []
        for name in due:
            if self._stable(name):
                with self._lock:
                    self._pending.pop(name, None)
                ready.append(name)
            else:
                self._defer(name)
        return ready

    def _stable(self, name: str) -> bool:
        path = self.folder / f"{name}.wasm"
        before = _stat(path)
        time.sleep(0.05)
        return before == _stat(path)

    def _recent(self, name: str) -> bool:
        """Whether NAME's files changed within RECENT_S (by their modification time)."""
        newest = max((_mtime(self.folder / f"{name}{suffix}") for suffix in (".wasm", ".toml")), default=0.0)
        return time.time() - newest < RECENT_S

    # ---- applying one name --------------------------------------------------------------

    def apply(self, name: str) -> bool:
        """Make stage ``name`` match its files; returns whether the manifest changed."""
        wasm_path = self.folder / f"{name}.wasm"
        try:
            if not wasm_path.exists():
                return self._remove(name)
            applied = self._install(name, wasm_path)
            self._waiting_for_fleet.discard(name)
            return applied
        except _NotComplete:
            logger.info("drop: %s does not parse yet and changed %.1f s ago or less: waiting for it",
                        wasm_path.name, RECENT_S)
            self._defer(name)
            return False
        except FleetUnavailable as err:
            # NOTE: not the file's fault: it is applied once the fleet store answers again
            if name not in self._waiting_for_fleet:
                logger.warning("drop: %s waits for the fleet store: %s", wasm_path.name, err.detail)
                self._waiting_for_fleet.add(name)
            self._defer(name, later_s=FLEET_RETRY_S)
            return False
        except HostError as err:
            detail = getattr(err, "detail", None) or str(err)
            check = getattr(err, "members", {}).get("check")
            logger.error("drop: %s rejected%s, pipeline unchanged: %s", wasm_path.name,
                         f" (check {check})" if check else "", detail)
            self.audit.record(WHO, f"drop {wasm_path.name}", name, "refused",
                              getattr(err, "status", 400), detail=detail, check=check)
            return False

    def _remove(self, name: str) -> bool:
        if self.applied.get(name) is None:
            return False  # NOTE: not a stage this folder made (another host's drop, in a fleet)
        self.applied.forget(name)
        entry = (self.manifests.read() or Manifest()).stage(name)
        if entry is None or entry.origin != "drop":
            return False  # NOTE: a stage the admin API took over is not the folder's to remove
        manifest = self.manifests.update(
            lambda m: m.with_stages([e for e in m.stages if e.name != name]), source="drop")
        logger.info("drop: removed stage %s (generation %d)", name, manifest.generation)
        self.audit.record(WHO, f"remove {name}.wasm", name, "ok", 200, sha256=entry.sha256,
                          generation=manifest.generation)
        return True

    def _install(self, name: str, wasm_path: pathlib.Path) -> bool:
        if STAGE_KEYS["name"].check(name):
            raise DropRejected(f"{name!r} is not a valid stage name: {STAGE_KEYS['name'].check(name)}")
        wasm = _read(wasm_path)
        toml_text = self._toml_text(name)
        files = {"wasm": hashlib.sha256(wasm).hexdigest(), "toml": _digest_text(toml_text)}
        if self.applied.get(name) == files:
            return False  # applied before: whatever happened since was an operator's decision
        options = self._options(name, toml_text)
        position = options.pop("position", None)
        settings = StageSettings(name=name, module=wasm_path, **options)
        try:
            admitted = admit(settings, wasm, self.cache.runtime, sha256=files["wasm"])
        except AdminError as err:
            if err.members.get("check") in ("binary", "compile") and self._recent(name):
                raise _NotComplete() from err
            raise
        entry = StageEntry.from_settings(settings, admitted.sha256, "drop")
        current = self.manifests.read() or Manifest()
        if current.stage(name) == entry and position is None:
            self.applied.record(name, files)
            return False
        signature = self._signature(name, admitted.sha256)
        self.store.put(wasm, admitted.sha256)
        if signature:
            self.store.put_signature(admitted.sha256, signature)
        _keep(self.cache, admitted.module)
        # NOTE: a new version of a stage under rollout ends the rollout in the same write (docs/rollouts.md)
        ended = f"ended by the drop folder's {wasm_path.name} ({entry.sha256[:12]})"
        manifest = self.manifests.update(lambda m: _placed(end_if_active(m, name, ended), entry, position),
                                         source="drop")
        self.applied.record(name, files)
        logger.info("drop: stage %s is now %s (generation %d)", name, entry.sha256[:12], manifest.generation)
        self.audit.record(WHO, f"drop {wasm_path.name}", name, "ok", 200, sha256=entry.sha256,
                          generation=manifest.generation, probes=admitted.probes)
        return True

    def _signature(self, name: str, sha256: str) -> str | None:
        """``NAME.wasm.sig`` (base64), checked against the trusted keys when there are any."""
        path = self.folder / f"{name}.wasm.sig"
        try:
            signature = path.read_text(encoding="ascii").strip() or None
        except FileNotFoundError:
            signature = None
        except (OSError, UnicodeDecodeError) as err:
            raise DropRejected(f"{path.name}: cannot read it: {err}") from err
        if self.trusted_keys:
            from ..fleet.trust import signature_check  # NOTE: lazily: only hosts with trusted keys
            try:
                signature_check(self.trusted_keys)(sha256, signature)
            except HostError as err:
                raise DropRejected(f"{err} (a host with [admin] trusted_keys needs {name}.wasm.sig beside "
                                   f"{name}.wasm: mwhost sign {name}.wasm --key publisher.key)") from err
        return signature

    def _toml_text(self, name: str) -> str | None:
        path = self.folder / f"{name}.toml"
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: cannot read it: {err}") from err

    def _options(self, name: str, text: str | None) -> dict[str, Any]:
        if text is None:
            return {}
        path = self.folder / f"{name}.toml"
        try:
            table = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, RecursionError) as err:
            raise ConfigError(f"{path}: not valid TOML: {err}") from err
        return check_table(table, DROP_KEYS, str(path))


class AppliedFiles:
    """``drop-applied.json``: name -> digests of the ``.wasm`` and ``.toml`` last applied."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._applied = self._load()

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            logger.warning("drop: %s is unreadable, every file counts as new: %s", self.path, err)
            return {}
        return data if isinstance(data, dict) else {}

    def names(self) -> list[str]:
        return list(self._applied)

    def get(self, name: str) -> dict[str, str] | None:
        return self._applied.get(name)

    def record(self, name: str, files: dict[str, str]) -> None:
        self._applied[name] = files
        self._save()

    def forget(self, name: str) -> None:
        if self._applied.pop(name, None) is not None:
            self._save()

    def _save(self) -> None:
        try:
            write_atomic(self.path, json.dumps(self._applied, indent=1, sort_keys=True).encode())
        except OSError as err:
            logger.error("drop: cannot write %s (a restart may apply files again): %s", self.path, err)


def _read(path: pathlib.Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise DropRejected(f"cannot read {path}: {err.strerror}") from err


def _keep(cache: CompileCache, module) -> None:
    try:
        cache.keep(module)
    except RegistryError as err:
        logger.warning("drop: %s (workers compile it themselves)", err)


def _digest_text(text: str | None) -> str:
    return "" if text is None else hashlib.sha256(text.encode()).hexdigest()


def _stat(path: pathlib.Path) -> tuple | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_size, st.st_mtime_ns)


def _mtime(path: pathlib.Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _placed(manifest: Manifest, entry: StageEntry, position: int | None) -> Manifest:
    stages = list(manifest.stages)
    index = next((i for i, e in enumerate(stages) if e.name == entry.name), None)
    if index is not None:
        stages.pop(index)
    if position is None:
        position = index if index is not None else len(stages)
    stages.insert(min(position, len(stages)), entry)
    return manifest.with_stages(stages)
