"""What the admin API does, without HTTP: read the pipeline, upload, roll back, remove, reorder.

A write is a manifest write: checks first (nothing is written while they run), then one
``ManifestStore.update`` computed from the latest manifest under its lock, then this
process's ``LivePipeline.reload()`` so the worker that took the call serves the result at
once; every other worker follows through its manifest watcher.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any, Callable, Mapping

from ..errors import (
    AdminConflict, AdminError, BlobRefused, DataDirUnavailable, HostError, ModuleRejected, RegistryError,
)
from ..metrics import METRICS
from ..pipeline import Admitted, admit
from ..registry import Manifest, ManifestError, StageEntry
from ..registry.rollout import Rollout
from ..settings import AdminSettings
from ..watch import LivePipeline
from ..watch.rollout_view import describe
from .changes import (
    CONTROLS, Unchanged, check_can_start, check_position, ending_rollout, history, latest_rollout, placed, removed,
    reordered, rollback_target, rolled_back, rollout_controlled, rollout_started,
)
from .params import UploadOptions, check_name, parse_upload
from .rollout_params import parse_rollout, split_rollout
from .signatures import TrustedKeys, decode_signature, encode_signature


#: sha256 -> ABI of modules read for GET /_admin/pipeline but not served by this worker:
#: a module is content-addressed, so an entry never goes stale; oldest dropped past the bound
_ABI_BY_SHA256: dict[str, str] = {}
_ABI_LOCK = threading.Lock()  # NOTE: gthread workers answer admin calls on several threads
ABI_CACHE_SIZE = 256


def _remember_abi(sha256: str, abi: str) -> None:
    with _ABI_LOCK:
        while len(_ABI_BY_SHA256) >= ABI_CACHE_SIZE:
            del _ABI_BY_SHA256[next(iter(_ABI_BY_SHA256))]
        _ABI_BY_SHA256[sha256] = abi


def entry_json(entry: StageEntry, **extra: Any) -> dict[str, Any]:
    return {**entry.to_json(), **extra}


class AdminService:
    """The admin operations on one process's live pipeline."""

    def __init__(self, live: LivePipeline, admin: AdminSettings, trusted: TrustedKeys) -> None:
        self.live = live
        self.admin = admin
        self.trusted = trusted

    # ---- reads --------------------------------------------------------------------------

    def manifest(self) -> Manifest:
        try:
            return self.live.manifests.read() or Manifest()
        except ManifestError as err:
            raise AdminError(f"the manifest is unreadable, so nothing can change until it is fixed: {err}") from err

    def pipeline(self) -> dict[str, Any]:
        manifest = self.manifest()
        return {
            "generation": manifest.generation,
            "served_generation": self.live.generation,
            "pid": os.getpid(),
            "source": manifest.source,
            "written_at": manifest.written_at,
            "stages": [entry_json(entry, position=i, kept_versions=len(_earlier(manifest, entry)),
                                  abi=self._abi(entry))
                       for i, entry in enumerate(manifest.stages)],
            "rollouts": [rollout_summary(entry.name, rollout) for entry in manifest.stages
                         if (rollout := manifest.active_rollout(entry.name)) is not None],
        }

    def _abi(self, entry: StageEntry) -> str | None:
        """``v1`` or ``http-wasm``: from the stage this worker serves, else from the module
        (loaded once per sha256, then remembered); None when it cannot be loaded here."""
        for stage in self.live.holder.current.stages:
            for part in (getattr(stage, "baseline", stage), getattr(stage, "candidate", None)):
                module = getattr(part, "module", None)
                if module is not None and part.version == entry.sha256:
                    return module.abi
        abi = _ABI_BY_SHA256.get(entry.sha256)
        if abi is None:
            try:
                abi = self.live.cache.load(self.live.store.get(entry.sha256), entry.fuel > 0, entry.sha256).abi
            except HostError:
                return None  # NOTE: not remembered: the module may arrive later (a fleet's blob)
            _remember_abi(entry.sha256, abi)
        return abi

    def versions(self, name: str) -> dict[str, Any]:
        check_name(name)
        manifest = self.manifest()
        versions = history(manifest, name)
        return {"name": name, "generation": manifest.generation,
                "active": next((entry.sha256 for entry, active in versions if active), None),
                "versions": [entry_json(entry, active=active) for entry, active in versions]}

    def health(self) -> dict[str, Any]:
        pipeline = self.live.holder.current
        return {"status": "ok", "pid": os.getpid(), "generation": pipeline.generation,
                "stages": [{"name": stage.name, "version": stage.version} for stage in pipeline.stages]}

    # ---- writes -------------------------------------------------------------------------

    def upload(self, name: str, wasm: bytes, params: Mapping[str, Any], signature: str | None,
               who: str = "admin") -> dict[str, Any]:
        """Check ``wasm`` as stage ``name`` and make it the active version (see ``checks``);
        an active rollout of the stage ends in the same write."""
        check_name(name)
        split_rollout(params)  # a rollout parameter without rollout=: say what it needs
        current = self.manifest()
        options = parse_upload(params, current.stage(name))
        others = len([e for e in current.stages if e.name != name])
        check_position(options.position, others, name)
        entry, checked, signed_by = self._admitted(name, wasm, options, params, signature)
        reason = f"ended by an upload of {entry.sha256[:12]} by {who}"
        ended = _Ended(name, reason)
        manifest, changed = self._write(lambda m: ending_rollout(
            ended.note(m), name, reason, lambda m: placed(m, entry, options.position, self.admin.keep_versions)))
        self.live.reload()
        position = next(i for i, e in enumerate(manifest.stages) if e.name == name)
        return {**entry_json(entry, position=position), "generation": manifest.generation,
                "served_generation": self.live.generation, "changed": changed,
                "signed_by": signed_by, "probes": checked.probes, "ended_rollout": ended.reason_if(changed)}

    def start_rollout(self, name: str, wasm: bytes, params: Mapping[str, Any], signature: str | None,
                      who: str = "admin") -> dict[str, Any]:
        """Check ``wasm`` as a candidate of stage ``name`` (every upload check), keep it, and
        start a canary or shadow rollout of it beside the active version (docs/rollouts.md)."""
        check_name(name)
        kind, rollout_params, upload_params = split_rollout(params)
        rollout_options = parse_rollout(kind or "", rollout_params)
        baseline = check_can_start(self.manifest(), name)
        options = parse_upload(upload_params, baseline)
        if hashlib.sha256(wasm).hexdigest() == baseline.sha256 and \
                options.stage_settings(name).policy() == baseline.policy():
            raise AdminConflict(f"the candidate is stage {name!r}'s active version with the same settings: "
                                "there is nothing to roll out", stage=name)
        entry, checked, signed_by = self._admitted(name, wasm, options, upload_params, signature)
        rollout = Rollout.start(rollout_options.kind, entry.to_json(), baseline.sha256, **rollout_options.options)
        manifest, _ = self._write(lambda m: rollout_started(m, name, rollout))
        self.live.reload()
        return {**describe(name, manifest.rollouts[name], self.live.data_dir), "generation": manifest.generation,
                "served_generation": self.live.generation, "signed_by": signed_by, "probes": checked.probes,
                "started_by": who}

    def rollout(self, name: str) -> dict[str, Any]:
        """The latest rollout of stage ``name`` (active or ended), with its analysis."""
        check_name(name)
        manifest = self.manifest()
        return {**describe(name, latest_rollout(manifest, name), self.live.data_dir),
                "generation": manifest.generation}

    def control_rollout(self, name: str, action: str, who: str, note: str | None = None) -> dict[str, Any]:
        """An operator's promote, abort, pause or resume of stage ``name``'s active rollout."""
        check_name(name)
        reason = f"{CONTROLS[action][1]} by {who}" + (f": {note}" if note else "")
        manifest, _ = self._write(lambda m: rollout_controlled(m, name, action, reason))
        METRICS.rollout_transition(name, CONTROLS[action][1])
        self.live.reload()
        return {**describe(name, manifest.rollouts[name], self.live.data_dir), "generation": manifest.generation,
                "served_generation": self.live.generation}

    def _admitted(self, name: str, wasm: bytes, options: UploadOptions, params: Mapping[str, Any],
                  signature: str | None) -> tuple[StageEntry, Admitted, str | None]:
        """Every upload check on ``wasm`` as stage ``name`` (signature, admission), then the
        module and its artifact stored: (its entry, its admission, who signed it)."""
        sha256 = hashlib.sha256(wasm).hexdigest()
        signed_by = self.trusted.check(sha256, signature)
        settings = options.stage_settings(name)
        try:
            checked = admit(settings, wasm, self.live.cache.runtime, options.samples, sha256)
        except ModuleRejected as err:
            if err.members.get("check") == "init" and "config" not in params and options.config:
                err.detail += " (the config was kept from the current version; send config to replace it)"
            raise
        self._persist(wasm, checked)
        if signature and self.live.fleet is not None:
            # NOTE: kept beside the module, so the fleet hands it on and every host checks it
            self.live.store.put_signature(sha256, encode_signature(decode_signature(signature)))
        return StageEntry.from_settings(settings, sha256, "admin"), checked, signed_by

    def rollback(self, name: str, sha256: str | None, who: str = "admin") -> dict[str, Any]:
        """Make the newest earlier version (or the kept version ``sha256``) active again; an
        active rollout of the stage ends in the same write."""
        check_name(name)
        current = self.manifest()
        target = rollback_target(current, name, sha256)
        self._check_kept(target)
        previous = current.stage(name)
        reason = f"ended by a rollback to {target.sha256[:12]} by {who}"
        ended = _Ended(name, reason)
        manifest, _ = self._write(lambda m: ending_rollout(
            ended.note(m), name, reason, lambda m: rolled_back(m, name, target.sha256, self.admin.keep_versions)))
        self.live.reload()
        return {**entry_json(target), "previous": previous.sha256 if previous else None,
                "generation": manifest.generation, "served_generation": self.live.generation,
                "ended_rollout": ended.reason_if(True)}

    def remove(self, name: str, who: str = "admin") -> dict[str, Any]:
        """Remove stage ``name``; an active rollout of it ends in the same write."""
        check_name(name)
        entry = self.manifest().stage(name)
        reason = f"ended by the removal of the stage by {who}"
        ended = _Ended(name, reason)
        manifest, _ = self._write(lambda m: ending_rollout(
            ended.note(m), name, reason, lambda m: removed(m, name, self.admin.keep_versions)))
        self.live.reload()
        return {"name": name, "removed": entry.sha256 if entry else None,
                "generation": manifest.generation, "served_generation": self.live.generation,
                "ended_rollout": ended.reason_if(True)}

    def reorder(self, order: list[str]) -> dict[str, Any]:
        manifest, changed = self._write(lambda m: reordered(m, order))
        self.live.reload()
        return {"order": [e.name for e in manifest.stages], "changed": changed,
                "generation": manifest.generation, "served_generation": self.live.generation}

    def _persist(self, wasm: bytes, checked: Admitted) -> None:
        """Write the module and its compiled artifact, each verified, before any manifest
        names them: a full or read-only disk refuses the upload and changes nothing."""
        try:
            self.live.store.put(wasm, checked.sha256)
            self.live.cache.keep(checked.module)
        except RegistryError as err:
            raise DataDirUnavailable(f"the module cannot be stored, nothing changed: {err}") from err

    def _write(self, change: Callable[[Manifest], Manifest]) -> tuple[Manifest, bool]:
        """Apply ``change`` to the latest manifest under the lock; (manifest, whether written)."""
        try:
            return self.live.manifests.update(change, source="admin"), True
        except Unchanged:
            return self.manifest(), False
        except ManifestError as err:
            raise AdminError(f"the manifest is unreadable, so nothing can change until it is fixed: {err}") from err
        except BlobRefused as err:  # NOTE: a fleet host: a module it refuses (signature, sha256)
            raise AdminConflict(f"{err}; nothing changed, here or in the fleet") from err
        except RegistryError as err:
            raise DataDirUnavailable(str(err)) from err

    def _check_kept(self, entry: StageEntry) -> None:
        """A kept version still passes admission (its module is still in the store, whole)."""
        try:
            wasm = self.live.store.get(entry.sha256)
        except HostError as err:
            raise AdminError(f"version {entry.sha256[:12]} of {entry.name!r} cannot be read: {err}") from err
        try:
            admit(entry, wasm, self.live.cache.runtime, sha256=entry.sha256, cache=self.live.cache)
        except ModuleRejected as err:
            err.detail = f"version {entry.sha256[:12]} of {entry.name!r} no longer passes: {err.detail}"
            raise


def rollout_summary(name: str, rollout: Rollout) -> dict[str, Any]:
    """One line of ``mwhost list``: a running rollout of stage ``name``."""
    return {"stage": name, "kind": rollout.kind, "state": rollout.state, "percent": rollout.candidate_percent,
            "step": rollout.step, "steps": list(rollout.steps), "candidate": rollout.candidate_sha256,
            "baseline": rollout.baseline, "reason": rollout.reason}


class _Ended:
    """Whether a write ended stage ``name``'s rollout: noted on the manifest the write read
    under the lock (the one that counts, whatever was read before it)."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        self.active = False

    def note(self, manifest: Manifest) -> Manifest:
        self.active = manifest.active_rollout(self.name) is not None
        return manifest

    def reason_if(self, written: bool) -> str | None:
        return self.reason if written and self.active else None


def _earlier(manifest: Manifest, entry: StageEntry) -> list[StageEntry]:
    return [e for e in manifest.versions.get(entry.name, ()) if e.sha256 != entry.sha256]
