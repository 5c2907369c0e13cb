"""The live pipeline of one process: built from the manifest and swapped when it changes.

What a process does on each data-dir fault (docs/operations.md): a damaged manifest is never
applied (it keeps its generation); a missing one is restored from its copy; a generation it
cannot build (a module file gone, a full disk) leaves it on the newest generation it can
build, not ready, retrying every RETRY_S; with nothing buildable at all a worker under
``mwhost serve`` still boots and answers 503 (never an empty pipeline in place of one that
has an auth stage), so gunicorn's master never gives up on it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import threading
import time

from ..errors import GuestLoadError, HostError, StageLoadError
from ..metrics import METRICS
from ..pipeline import Pipeline, PipelineHolder, admit, build_from_manifest
from ..registry import (
    AuditLog, CompileCache, Manifest, ManifestError, ManifestStore, ModuleStore, StageEntry, read_module_file,
    reseeded,
)
from ..runtime import Runtime
from ..settings import FleetSettings, RolloutSettings, Settings
from .counts import CountsFlusher
from .decider import Decider
from .observer import watch_folder

logger = logging.getLogger("mwhost.watch")

#: how often the watcher also stats the manifest by itself: inotify events can be missed
#: (e.g. written while the watchdog emitter thread is still starting), a stat costs ~1 us
SAFETY_POLL_S = 0.2
#: how often a process that could not build the current generation tries again
RETRY_S = 5.0


class LivePipeline:
    """A process's view of the desired pipeline: the holder requests read, kept at the
    manifest's generation. Swaps are built off the request path, then one reference rebinds;
    requests in flight finish on the pipeline they started with."""

    def __init__(self, data_dir: pathlib.Path, runtime: Runtime, rollout: RolloutSettings | None = None,
                 fleet: FleetSettings | None = None, address: str = "",
                 trusted_keys: tuple[pathlib.Path, ...] = ()) -> None:
        self.data_dir = data_dir
        #: the ``[rollout]`` table: the force header's switch, what a shadow may record
        self.rollout_settings = rollout or RolloutSettings()
        self.store = ModuleStore(data_dir / "modules")
        self.cache = CompileCache(runtime, data_dir / "cache")
        self.manifests = ManifestStore(data_dir)
        #: the fleet store when ``[fleet] url`` is set (docs/fleet.md), else None
        self.fleet = None
        self.address = address
        if fleet is not None and fleet.enabled:
            self.manifests = _fleet_manifests(data_dir, self.store, fleet, trusted_keys)
            self.fleet = self.manifests.fleet
        self.holder = PipelineHolder()
        #: why this process does not serve the manifest's generation (None when it does)
        self.problem: str | None = None
        self._retry_at = 0.0
        self._reload_lock = threading.Lock()
        self._watching_pid = 0
        self._stop = threading.Event()
        self._observer = None

    @classmethod
    def from_settings(cls, settings: Settings, runtime: Runtime, *, strict: bool = True) -> "LivePipeline":
        """Load the manifest, seeding it from the config when the config changed since.

        The config's stages are admitted (every check an upload passes) before anything is
        written. ``strict`` (the default; ``mwhost serve``'s start check) raises
        ``StageLoadError`` naming the stage and leaves the manifest as it was, and raises when
        no generation can be built. A worker (``strict=False``) logs either and boots anyway:
        on the newest generation it can build, else answering 503 until one can be.
        """
        live = cls(settings.data_dir, runtime, settings.rollout, settings.fleet, settings.bind,
                   settings.admin.trusted_keys)
        live.pull_fleet()
        try:
            live.seed(settings)
        except HostError as err:
            if strict:
                raise
            logger.error("the pipeline of %s was not seeded, serving the manifest as it is: %s",
                         settings.source, err)
        live.reload()
        if live.holder.current.generation == 0 and live.problem is not None:
            if strict:
                raise StageLoadError(live.problem)
            live.holder.swap(unavailable(live.problem))
        return live

    def seed(self, settings: Settings) -> None:
        """Write the config's stages into the manifest when the config changed since it was
        last seeded; each stage is admitted first (a refusal raises StageLoadError)."""
        config = [(stage, _config_module(settings, stage)) for stage in settings.middleware]
        entries = [StageEntry.from_settings(stage, _digest(wasm), "config") for stage, wasm in config]
        if reseeded(self.manifests.read_good() or Manifest(), entries) is None:
            return
        for (stage, wasm), entry in zip(config, entries):
            try:
                admitted = admit(stage, wasm, self.cache.runtime, sha256=entry.sha256)
            except HostError as err:
                raise StageLoadError(f"stage {stage.name!r} ({stage.module}): {err}") from err
            self.store.put(wasm, entry.sha256)
            self.cache.keep(admitted.module)
        manifest = self.manifests.update(lambda m: reseeded(m, entries) or m, source="config")
        logger.info("manifest generation %d seeded from %s", manifest.generation, settings.source)

    def audit_log(self) -> AuditLog:
        """The audit log of this data dir; a fleet host's also goes to the fleet's stream."""
        return AuditLog(self.data_dir / "audit.log", stream=self.fleet)

    def pull_fleet(self) -> None:
        """A fleet host starting: mirror the fleet's newer generation first, if Redis answers
        (else it serves its local copy, and its syncer catches up later)."""
        if self.fleet is None:
            return
        try:
            self.manifests.pull()
        except HostError as err:
            logger.warning("fleet not reached at start, serving the local copy: %s", err)

    @property
    def generation(self) -> int:
        return self.holder.current.generation

    def reload(self) -> bool:
        """Swap to the manifest's generation if it is newer. A bad manifest or a stage that
        fails to load changes nothing (logged, ``problem`` says why); returns whether this
        process serves the current generation."""
        with self._reload_lock:
            current = self.holder.current
            self._restore_missing()
            try:
                # a process that serves nothing yet starts from the last good manifest
                manifest = self.manifests.read() if current.generation else self.manifests.read_good()
            except ManifestError as err:
                logger.error("manifest not applied, keeping generation %d: %s", current.generation, err,
                             extra={"generation": current.generation})
                METRICS.swapped("rejected")
                return False
            if manifest is None or manifest.generation <= current.generation:
                if manifest is None or manifest.generation == current.generation:
                    self.problem = None
                return self.problem is None
            try:
                pipeline = build_from_manifest(manifest, self.store, self.cache, previous=current,
                                               force_header=self.rollout_settings.allow_force_header)
            except HostError as err:
                self._failed(manifest.generation, err)
                self._fall_back(manifest.generation)
                return False
            self._swap(pipeline)
            return True

    def _swap(self, pipeline: Pipeline) -> None:
        current = self.holder.swap(pipeline)
        self.problem = None
        if current.generation:  # a swap from a served generation, not the first load
            METRICS.swapped("ok", pipeline.generation)
        else:
            METRICS.serving(pipeline.generation)
        logger.info("pid %d now serves generation %d (%s)", os.getpid(), pipeline.generation,
                    ", ".join(f"{s.name}@{s.version[:12]}" for s in pipeline.stages) or "no stages")

    def _failed(self, generation: int, err: HostError) -> None:
        served = self.holder.current.generation
        self.problem = f"generation {generation} cannot be loaded here: {err}"
        self._retry_at = time.monotonic() + RETRY_S
        logger.error("generation %d not applied, keeping %d (retrying every %.0f s): %s",
                     generation, served, RETRY_S, err, extra={"generation": served})
        METRICS.swapped("rejected")

    def _fall_back(self, wanted: int) -> None:
        """With nothing served yet (a worker booting), serve the newest earlier generation
        that builds; ``problem`` keeps saying that this is not the current one."""
        current = self.holder.current
        if current.generation:
            return
        for manifest in self.manifests.history():
            if manifest.generation >= wanted:
                continue
            try:
                pipeline = build_from_manifest(manifest, self.store, self.cache,
                                               force_header=self.rollout_settings.allow_force_header)
            except HostError as err:
                logger.warning("generation %d cannot be loaded either: %s", manifest.generation, err)
                continue
            problem = self.problem
            self._swap(pipeline)
            self.problem = problem
            logger.error("serving generation %d until generation %d can be loaded", manifest.generation, wanted)
            return

    def _restore_missing(self) -> None:
        """A deleted manifest.json comes back from its copy (never an empty pipeline)."""
        if not self.manifests.missing():
            return
        try:
            restored = self.manifests.restore()
        except (OSError, HostError) as err:
            logger.error("manifest.json is missing and cannot be restored: %s", err)
            return
        if restored is not None:
            logger.warning("manifest.json was missing: restored generation %d from its copy", restored.generation)

    # ---- watching -----------------------------------------------------------------------

    def start_watching(self) -> None:
        """Watch the manifest from this process (again after fork): inotify through
        watchdog, polling where that is not available, and a slow safety poll; write this
        process's rollout counts and bid for the host's rollout decider (docs/rollouts.md)."""
        if self._watching_pid == os.getpid():
            return
        self._watching_pid = os.getpid()
        self._stop = threading.Event()
        manifest_name = self.manifests.path.name
        wake = threading.Event()

        def on_path(path: pathlib.Path, kind: str) -> None:
            if path.name == manifest_name:
                wake.set()

        self._observer = watch_folder(self.data_dir, on_path)
        thread = threading.Thread(target=self._watch, args=(wake, self._stop),
                                  name="mwhost-manifest", daemon=True)
        thread.start()
        # rollouts: this worker's counts for the decider, and its bid to be the decider
        CountsFlusher(self.data_dir, self.manifests, self._stop).start()
        if self.fleet is None:
            Decider(self.data_dir, self.manifests, self._stop).start()
            return
        from ..fleet.rollouts import FleetRollouts  # NOTE: redis-py only on a fleet host
        from ..fleet.sync import FleetSyncer, host_id

        host = host_id(self.address)
        Decider(self.data_dir, self.manifests, self._stop, audit=self.audit_log(),
                fleet=FleetRollouts(self.fleet, host)).start()
        FleetSyncer(self.manifests, lambda: self.generation, self._stop, host, self.address).start()

    def _watch(self, wake: threading.Event, stop: threading.Event) -> None:
        seen = None
        while not stop.is_set():
            woken = wake.wait(SAFETY_POLL_S)
            wake.clear()
            if stop.is_set():
                return
            signature = self._signature()
            if not woken and signature == seen and not self._retry_due():
                continue
            seen = signature
            try:
                self.reload()
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad reload
                logger.exception("reloading the manifest failed")

    def _retry_due(self) -> bool:
        if self.problem is None or time.monotonic() < self._retry_at:
            return False
        self._retry_at = time.monotonic() + RETRY_S
        return True

    def _signature(self) -> tuple | None:
        """What changes when the manifest file is replaced or rewritten."""
        try:
            st = self.manifests.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
        self._watching_pid = 0

    def close(self) -> None:
        self.stop()
        self.holder.current.close()
        if self.fleet is not None:
            self.fleet.close()  # NOTE: redis-py reconnects if a thread still finishing uses it


def _fleet_manifests(data_dir: pathlib.Path, store: ModuleStore, fleet: FleetSettings,
                     trusted_keys: tuple[pathlib.Path, ...]):
    """The fleet-backed manifest store. NOTE: imported here, so redis-py is loaded only on a
    fleet host."""
    from ..fleet.manifests import FleetManifestStore
    from ..fleet.store import FleetStore
    from ..fleet.trust import signature_check

    return FleetManifestStore(data_dir, FleetStore(fleet), store, signature_check(trusted_keys))


def _digest(wasm: bytes) -> str:
    return hashlib.sha256(wasm).hexdigest()


class UnloadableStage:
    """Stands in for a pipeline that cannot be loaded at all: fails every request closed
    (503 naming it) instead of serving the app without its middleware."""

    name = "pipeline"
    version = "unloadable"
    fail_open = False
    has_on_response = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def call_request(self, state):
        raise GuestLoadError(self.reason)

    def failed(self, err: Exception, phase: str, state=None) -> bool:
        return False  # fail closed; the reason was logged when loading failed, not per request

    def close(self) -> None:
        pass


def unavailable(reason: str) -> Pipeline:
    """A pipeline (generation 0) that answers 503 to every request until one can be loaded."""
    return Pipeline((UnloadableStage(reason),), 0)


def _config_module(settings: Settings, stage) -> bytes:
    """The bytes of a configured stage's module; a missing file names the stage and the config."""
    try:
        return read_module_file(stage.module)
    except HostError as err:
        raise StageLoadError(f"{settings.source}: stage {stage.name!r}: {err} (module paths are relative "
                             "to the config file)") from err
