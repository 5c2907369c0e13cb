"""The live pipeline of one process: built from the manifest and swapped when it changes."""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import threading

from ..errors import HostError
from ..metrics import METRICS
from ..pipeline import PipelineHolder, build_from_manifest
from ..registry import (
    CompileCache, Manifest, ManifestError, ManifestStore, ModuleStore, config_entries, reseeded,
)
from ..runtime import Runtime
from ..settings import Settings
from .observer import watch_folder

logger = logging.getLogger("mwhost.watch")

#: how often the watcher also stats the manifest by itself: inotify events can be missed
#: (e.g. written while the watchdog emitter thread is still starting), a stat costs ~1 us
SAFETY_POLL_S = 0.2


class LivePipeline:
    """A process's view of the desired pipeline: the holder requests read, kept at the
    manifest's generation. Swaps are built off the request path, then one reference rebinds;
    requests in flight finish on the pipeline they started with."""

    def __init__(self, data_dir: pathlib.Path, runtime: Runtime) -> None:
        self.data_dir = data_dir
        self.store = ModuleStore(data_dir / "modules")
        self.cache = CompileCache(runtime, data_dir / "cache")
        self.manifests = ManifestStore(data_dir)
        self.holder = PipelineHolder()
        self._reload_lock = threading.Lock()
        self._watching_pid = 0
        self._stop = threading.Event()
        self._observer = None

    @classmethod
    def from_settings(cls, settings: Settings, runtime: Runtime) -> "LivePipeline":
        """Load the manifest, seeding it from the config when the config changed since.

        The config's pipeline is built and checked before anything is written: a bad module
        raises ``StageLoadError`` (naming the stage) and leaves the manifest as it was.
        """
        live = cls(settings.data_dir, runtime)
        entries = config_entries(settings, live.store)
        try:
            current = live.manifests.read_good() or Manifest()
        except ManifestError as err:
            logger.error("no readable manifest, seeding it from %s again: %s", settings.source, err)
            current = Manifest()
        candidate = reseeded(current, entries)
        if candidate is not None:
            # check first (as generation 0: not served); the reload below reuses these stages
            checked = dataclasses.replace(candidate, generation=0)
            live.holder.swap(build_from_manifest(checked, live.store, live.cache))
            manifest = live.manifests.update(lambda m: reseeded(m, entries) or m, source="config")
            logger.info("manifest generation %d seeded from %s", manifest.generation, settings.source)
        if not live.reload():
            raise ManifestError(f"cannot load the manifest in {settings.data_dir}; see the log")
        return live

    @property
    def generation(self) -> int:
        return self.holder.current.generation

    def reload(self) -> bool:
        """Swap to the manifest's generation if it is newer. A bad manifest or a stage that
        fails to load changes nothing (logged); returns whether the current one is good."""
        with self._reload_lock:
            current = self.holder.current
            try:
                # a process that serves nothing yet starts from the last good manifest
                manifest = self.manifests.read() if current.generation else self.manifests.read_good()
            except ManifestError as err:
                logger.error("manifest not applied, keeping generation %d: %s", current.generation, err,
                             extra={"generation": current.generation})
                METRICS.swapped("rejected")
                return False
            if manifest is None or manifest.generation <= current.generation:
                return True
            try:
                pipeline = build_from_manifest(manifest, self.store, self.cache, previous=current)
            except HostError as err:
                logger.error("generation %d not applied, keeping %d: %s",
                             manifest.generation, current.generation, err,
                             extra={"generation": current.generation})
                METRICS.swapped("rejected")
                return False
            self.holder.swap(pipeline)
            if current.generation:  # a swap from a served generation, not the first load
                METRICS.swapped("ok", pipeline.generation)
            else:
                METRICS.serving(pipeline.generation)
            logger.info("pid %d now serves generation %d (%s)", os.getpid(), pipeline.generation,
                        ", ".join(f"{s.name}@{s.version[:12]}" for s in pipeline.stages) or "no stages")
            return True

    # ---- watching -----------------------------------------------------------------------

    def start_watching(self) -> None:
        """Watch the manifest from this process (again after fork): inotify through
        watchdog, polling where that is not available, and a slow safety poll."""
        if self._watching_pid == os.getpid():
            return
        self._watching_pid = os.getpid()
        self._stop = threading.Event()
        manifest_name = self.manifests.path.name
        wake = threading.Event()

        def on_path(path: pathlib.Path) -> None:
            if path.name == manifest_name:
                wake.set()

        self._observer = watch_folder(self.data_dir, on_path)
        thread = threading.Thread(target=self._watch, args=(wake, self._stop),
                                  name="mwhost-manifest", daemon=True)
        thread.start()

    def _watch(self, wake: threading.Event, stop: threading.Event) -> None:
        seen = None
        while not stop.is_set():
            woken = wake.wait(SAFETY_POLL_S)
            wake.clear()
            if stop.is_set():
                return
            signature = self._signature()
            if not woken and signature == seen:
                continue
            seen = signature
            try:
                self.reload()
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad reload
                logger.exception("reloading the manifest failed")

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
