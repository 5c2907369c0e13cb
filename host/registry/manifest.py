"""The manifest: the desired pipeline with a generation number, shared by every worker.

``<data_dir>/manifest.json`` is written whole to a temp file, fsynced and renamed into place,
under an exclusive lock on ``<data_dir>/manifest.lock``, so readers see the old file or the
new one, never half of one. It carries a checksum over its own content: a file torn or
edited by hand is refused (``ManifestError``) and workers keep their last good generation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import pathlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from ..errors import RegistryError
from ..settings import ON_ERROR_POLICIES, STAGE_KEYS, StageSettings
from .files import write_atomic
from .store import ModuleStore

FORMAT = 1
# the per-stage settings an entry carries besides name, module and config
_LIMIT_KEYS = ("on_error", "timeout_ms", "max_memory_mb", "fuel", "max_output_kb", "max_log_kb")
#: versions kept per stage besides the active one (for rollback)
KEEP_VERSIONS = 5


class ManifestError(RegistryError):
    """The manifest file is unreadable, torn or invalid; it is never applied."""


@dataclass(frozen=True)
class StageEntry:
    """One stage of the desired pipeline: a module version (by sha256) and its settings."""

    name: str
    sha256: str
    config: Mapping[str, Any] = field(default_factory=dict)
    on_error: str = STAGE_KEYS["on_error"].default
    timeout_ms: int = STAGE_KEYS["timeout_ms"].default
    max_memory_mb: int = STAGE_KEYS["max_memory_mb"].default
    fuel: int = STAGE_KEYS["fuel"].default
    max_output_kb: int = STAGE_KEYS["max_output_kb"].default
    max_log_kb: int = STAGE_KEYS["max_log_kb"].default
    #: who put it there: "config", "drop" or "admin"
    origin: str = "config"

    @classmethod
    def from_settings(cls, settings: StageSettings, sha256: str, origin: str) -> "StageEntry":
        """The entry for a stage configured as ``settings`` running module ``sha256``."""
        return cls(name=settings.name, sha256=sha256, config=dict(settings.config), origin=origin,
                   **{key: getattr(settings, key) for key in _LIMIT_KEYS})

    def settings(self, store: ModuleStore) -> StageSettings:
        return StageSettings(name=self.name, module=store.path(self.sha256), config=dict(self.config),
                             **{key: getattr(self, key) for key in _LIMIT_KEYS})

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> "StageEntry":
        if not isinstance(data, dict):
            raise ManifestError("a stage entry must be an object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ManifestError(f"stage entry has unknown keys {sorted(unknown)}")
        try:
            entry = cls(**data)
        except TypeError as err:
            raise ManifestError(f"stage entry is incomplete: {err}") from err
        entry.check()
        return entry

    def check(self) -> None:
        if not isinstance(self.name, str) or STAGE_KEYS["name"].check(self.name):
            raise ManifestError(f"stage name {self.name!r} is invalid")
        if not isinstance(self.sha256, str) or len(self.sha256) != 64:
            raise ManifestError(f"stage {self.name!r}: sha256 {self.sha256!r} is invalid")
        if self.on_error not in ON_ERROR_POLICIES:
            raise ManifestError(f"stage {self.name!r}: on_error {self.on_error!r} is invalid")
        for key in _LIMIT_KEYS:
            value = getattr(self, key)
            if key == "on_error":
                continue
            if type(value) is not int or STAGE_KEYS[key].check(value):
                raise ManifestError(f"stage {self.name!r}: {key} {value!r} is invalid")
        if not isinstance(self.config, Mapping):
            raise ManifestError(f"stage {self.name!r}: config must be an object")


@dataclass(frozen=True)
class Manifest:
    """The desired pipeline. ``versions`` keeps, per stage name, earlier entries (newest last)."""

    generation: int = 0
    stages: tuple[StageEntry, ...] = ()
    config_digest: str = ""
    versions: Mapping[str, tuple[StageEntry, ...]] = field(default_factory=dict)
    source: str = ""
    written_at: float = 0.0

    def stage(self, name: str) -> StageEntry | None:
        return next((entry for entry in self.stages if entry.name == name), None)

    def with_stages(self, stages: list[StageEntry] | tuple[StageEntry, ...],
                    keep: int = KEEP_VERSIONS) -> "Manifest":
        """A copy with ``stages``; entries that change version push the old one to ``versions``
        (at most ``keep`` per stage, the oldest dropped first)."""
        versions = {name: list(kept) for name, kept in self.versions.items()}
        for old in self.stages:
            new = next((entry for entry in stages if entry.name == old.name), None)
            if new is None or new.sha256 != old.sha256:
                kept = [e for e in versions.get(old.name, []) if e.sha256 != old.sha256]
                versions[old.name] = (kept + [old])[-keep:]
        names = [entry.name for entry in stages]
        if len(set(names)) != len(names):
            raise ManifestError(f"stage names must be unique, got {names}")
        return dataclasses.replace(self, stages=tuple(stages),
                                   versions={n: tuple(v) for n, v in versions.items()})

    def body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "generation": self.generation,
            "source": self.source,
            "written_at": self.written_at,
            "config_digest": self.config_digest,
            "stages": [entry.to_json() for entry in self.stages],
            "versions": {name: [e.to_json() for e in kept] for name, kept in sorted(self.versions.items())},
        }

    def to_bytes(self) -> bytes:
        body = self.body()
        body["checksum"] = _checksum(body)
        return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Manifest":
        try:
            body = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ManifestError(f"not valid JSON (torn or hand-edited?): {err}") from err
        if not isinstance(body, dict):
            raise ManifestError("the manifest must be a JSON object")
        checksum = body.pop("checksum", None)
        if checksum != _checksum(body):
            raise ManifestError("checksum mismatch: the manifest was torn or edited by hand")
        if body.get("format") != FORMAT:
            raise ManifestError(f"unknown manifest format {body.get('format')!r}")
        try:
            return cls(
                generation=int(body["generation"]),
                stages=tuple(StageEntry.from_json(s) for s in body["stages"]),
                config_digest=str(body.get("config_digest", "")),
                versions={name: tuple(StageEntry.from_json(e) for e in kept)
                          for name, kept in body.get("versions", {}).items()},
                source=str(body.get("source", "")),
                written_at=float(body.get("written_at", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ManifestError(f"the manifest is incomplete: {err!r}") from err


def _checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class ManifestStore:
    """Reads and writes ``<data_dir>/manifest.json``."""

    def __init__(self, data_dir: pathlib.Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / "manifest.json"
        # NOTE: a copy of the last manifest this store wrote, for a process that starts
        # while manifest.json is damaged (a new worker) and for the next write.
        self.last_good_path = data_dir / "manifest.last-good.json"
        self.lock_path = data_dir / "manifest.lock"

    def read(self) -> Manifest | None:
        """The current manifest, None if there is none yet; ManifestError if it is bad."""
        return self._read(self.path)

    def read_good(self) -> Manifest | None:
        """The current manifest or, when it is damaged, the last one written whole."""
        try:
            return self.read()
        except ManifestError:
            return self._read(self.last_good_path)

    @staticmethod
    def _read(path: pathlib.Path) -> Manifest | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise ManifestError(f"cannot read {path}: {err.strerror}") from err
        return Manifest.from_bytes(data)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive lock for a read-modify-write of the manifest (across processes)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def update(self, change: Callable[[Manifest], Manifest], source: str) -> Manifest:
        """Apply ``change`` to the current manifest and write it as the next generation.

        ``change`` runs under the lock and may raise to abort; nothing is written then.
        """
        with self.locked():
            current = self.read_good() or Manifest()
            updated = dataclasses.replace(change(current), generation=current.generation + 1,
                                          source=source, written_at=time.time())
            data = updated.to_bytes()
            write_atomic(self.path, data)
            write_atomic(self.last_good_path, data)
            return updated
