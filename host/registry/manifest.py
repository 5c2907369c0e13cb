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
from ..settings import ON_ERROR_POLICIES, POLICY_KEYS, STAGE_KEYS, StageSettings
from .files import write_atomic
from .rollout import Rollout, RolloutError

FORMAT = 1
#: versions kept per stage besides the active one (for rollback)
KEEP_VERSIONS = 5
#: earlier generations kept in ``<data_dir>/generations/`` for a worker that cannot build
#: the current one (a module file deleted, a disk full while compiling)
KEEP_GENERATIONS = 20


class ManifestError(RegistryError):
    """The manifest file is unreadable, torn or invalid; it is never applied."""


@dataclass(frozen=True)
class StageEntry(StageSettings):
    """One stage of the desired pipeline: the stage's settings plus its module version (by
    sha256) and who put it there (``origin``: "config", "drop" or "admin")."""

    sha256: str = ""
    origin: str = "config"

    @classmethod
    def from_settings(cls, settings: StageSettings, sha256: str, origin: str) -> "StageEntry":
        """The entry for a stage configured as ``settings`` running module ``sha256``."""
        return cls(name=settings.name, sha256=sha256, origin=origin, **settings.described())

    def to_json(self) -> dict[str, Any]:
        body = {key: getattr(self, key) for key in _JSON_KEYS}
        body["config"] = dict(self.config)
        return body

    @classmethod
    def from_json(cls, data: Any) -> "StageEntry":
        if not isinstance(data, dict):
            raise ManifestError("a stage entry must be an object")
        unknown = set(data) - set(_JSON_KEYS)
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
        for key in POLICY_KEYS:
            value = getattr(self, key)
            if key in ("on_error", "config"):
                continue
            if type(value) is not int or STAGE_KEYS[key].check(value):
                raise ManifestError(f"stage {self.name!r}: {key} {value!r} is invalid")
        if not isinstance(self.config, Mapping):
            raise ManifestError(f"stage {self.name!r}: config must be an object")


#: an entry's keys in the manifest file (the module path of a config is not one of them)
_JSON_KEYS = ("name", "sha256", *POLICY_KEYS, "origin")


@dataclass(frozen=True)
class Manifest:
    """The desired pipeline. ``versions`` keeps, per stage name, earlier entries (newest last)."""

    generation: int = 0
    stages: tuple[StageEntry, ...] = ()
    config_digest: str = ""
    versions: Mapping[str, tuple[StageEntry, ...]] = field(default_factory=dict)
    source: str = ""
    written_at: float = 0.0
    #: per stage name, its latest rollout (active or ended; docs/rollouts.md)
    rollouts: Mapping[str, Rollout] = field(default_factory=dict)
    #: per removed stage name, the 0-based place it had (a rollback puts it back there)
    removed_from: Mapping[str, int] = field(default_factory=dict)

    def stage(self, name: str) -> StageEntry | None:
        return next((entry for entry in self.stages if entry.name == name), None)

    def active_rollout(self, name: str) -> Rollout | None:
        rollout = self.rollouts.get(name)
        return rollout if rollout is not None and rollout.active else None

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
        removed_from = {n: i for n, i in self.removed_from.items() if n not in names}
        return dataclasses.replace(self, stages=tuple(stages), removed_from=removed_from,
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
            "rollouts": {name: rollout.to_json() for name, rollout in sorted(self.rollouts.items())},
            # NOTE: only when there is one, so manifests without removals keep their bytes
            **({"removed_from": dict(sorted(self.removed_from.items()))} if self.removed_from else {}),
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
                rollouts={name: Rollout.from_json(r) for name, r in body.get("rollouts", {}).items()},
                removed_from={str(name): int(i) for name, i in body.get("removed_from", {}).items()},
            )
        except RolloutError as err:
            raise ManifestError(str(err)) from err
        except (KeyError, TypeError, ValueError) as err:
            raise ManifestError(f"the manifest is incomplete: {err!r}") from err


def _checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class ManifestStore:
    """Reads and writes ``<data_dir>/manifest.json`` and the copies that make it durable.

    NOTE: besides ``manifest.json`` every write leaves ``manifest.last-good.json`` and
    ``generations/<generation>.json`` (the last KEEP_GENERATIONS). A missing manifest is
    restored from them, a damaged one is never applied, a worker that cannot build the current
    generation falls back to an earlier one, and no write is ever based on less than the
    newest good copy, so generations never go backwards.
    """

    def __init__(self, data_dir: pathlib.Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / "manifest.json"
        self.last_good_path = data_dir / "manifest.last-good.json"
        self.history_dir = data_dir / "generations"
        self.lock_path = data_dir / "manifest.lock"

    def read(self) -> Manifest | None:
        """The current manifest: ``manifest.json`` or, when that file is missing, the newest
        good copy (None if there never was one); ManifestError if ``manifest.json`` is damaged."""
        manifest = self._read(self.path)
        return manifest if manifest is not None else self._newest_copy()

    def read_good(self) -> Manifest | None:
        """The current manifest or, when it is damaged or missing, the newest good copy."""
        try:
            return self.read()
        except ManifestError:
            return self._newest_copy()

    def missing(self) -> bool:
        """Whether ``manifest.json`` is gone while a good copy exists (``restore`` brings it back)."""
        return not self.path.exists() and self._newest_copy() is not None

    def restore(self) -> Manifest | None:
        """Write the newest good copy back as ``manifest.json`` if that file is missing."""
        with self.locked():
            if self.path.exists():
                return None
            copy = self._newest_copy()
            if copy is not None:
                write_atomic(self.path, copy.to_bytes())
            return copy

    def history(self) -> list[Manifest]:
        """The kept generations, newest first (unreadable ones left out)."""
        kept = []
        for path in self._history_files():
            try:
                manifest = self._read(path)
            except ManifestError:
                continue
            if manifest is not None:
                kept.append(manifest)
        return kept

    def _newest_copy(self) -> Manifest | None:
        for path in (self.last_good_path, *self._history_files()):
            try:
                manifest = self._read(path)
            except ManifestError:
                continue
            if manifest is not None:
                return manifest
        return None

    def _history_files(self) -> list[pathlib.Path]:
        try:
            names = [path for path in self.history_dir.iterdir() if path.suffix == ".json"
                     and path.stem.isdigit()]
        except OSError:
            return []
        return sorted(names, key=lambda path: int(path.stem), reverse=True)

    def _newest_generation(self) -> int:
        """The highest generation any copy names: a new write goes above it."""
        files = self._history_files()
        newest = int(files[0].stem) if files else 0
        for path in (self.path, self.last_good_path):
            try:
                manifest = self._read(path)
            except ManifestError:
                continue
            if manifest is not None:
                newest = max(newest, manifest.generation)
        return newest

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
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            lock = open(self.lock_path, "a+b")
        except OSError as err:
            raise RegistryError(f"cannot lock the manifest in {self.data_dir}: {err.strerror or err}; "
                                "nothing changed") from err
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def update(self, change: Callable[[Manifest], Manifest], source: str) -> Manifest:
        """Apply ``change`` to the current manifest and write it as the next generation.

        ``change`` runs under the lock and may raise to abort; nothing is written then. A
        write that fails (disk full, read-only folder) raises RegistryError and leaves
        ``manifest.json`` as it was.
        """
        with self.locked():
            current = self.read_good() or Manifest()
            generation = max(current.generation, self._newest_generation()) + 1
            updated = dataclasses.replace(change(current), generation=generation,
                                          source=source, written_at=time.time())
            self._write(updated)
            return updated

    def mirror(self, manifest: Manifest) -> bool:
        """Write ``manifest`` as it is (its generation included) when it is newer than every
        local copy: a fleet host mirroring the fleet's manifest. Returns whether it wrote."""
        with self.locked():
            if manifest.generation <= self._newest_generation():
                return False
            self._write(manifest)
            return True

    def newest_generation(self) -> int:
        """The highest generation any local copy names (a fleet write goes above it too)."""
        return self._newest_generation()

    def _write(self, updated: Manifest) -> None:
        data = updated.to_bytes()
        copy = self.history_dir / f"{updated.generation}.json"
        try:
            # NOTE: the copies first: a manifest.json that names a generation always has
            # its copy, so a worker can fall back to it and nothing goes backwards.
            write_atomic(copy, data)
            write_atomic(self.last_good_path, data)
            write_atomic(self.path, data)
        except OSError as err:
            copy.unlink(missing_ok=True)
            raise RegistryError(f"cannot write the manifest in {self.data_dir}: {err.strerror or err}; "
                                "nothing changed") from err
        self._prune()

    def _prune(self) -> None:
        for path in self._history_files()[KEEP_GENERATIONS:]:
            path.unlink(missing_ok=True)
