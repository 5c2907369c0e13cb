"""``mwhost serve``: gunicorn running the host app through ``BaseApplication``."""

from __future__ import annotations

import logging

from gunicorn.app.base import BaseApplication

from .runtime import Runtime
from .settings import Settings
from .watch import DropFolder, LivePipeline
from .web import create_app, live_pipeline

logger = logging.getLogger("mwhost.server")


class HostApplication(BaseApplication):
    """The standalone gunicorn application (gunicorn's ``examples/standalone_app.py`` shape).

    The master checks the whole pipeline before any worker starts (filling the compile
    cache: workers only deserialize) and runs the drop folder; every worker builds its own
    runtime after fork and watches the manifest (gunicorn hooks, not globals).
    """

    def __init__(self, settings: Settings, options: dict | None = None) -> None:
        self.settings = settings
        self.options = options or {}
        self.master_runtime: Runtime | None = None
        self.drop: DropFolder | None = None
        super().__init__()

    def precompile(self) -> int:
        """Seed the manifest and load every stage once in the master; raises on a bad one."""
        self.master_runtime = Runtime(parallel_compilation=True)
        live = LivePipeline.from_settings(self.settings, self.master_runtime)
        count = len(live.holder.current)
        live.close()
        return count

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("when_ready", _when_ready)
        self.cfg.set("on_exit", _on_exit)
        self.cfg.set("post_worker_init", _post_worker_init)
        self.cfg.set("worker_exit", _worker_exit)

    def load(self):
        # NOTE: runs in each worker after fork (no preload): every worker builds its own
        # engine, stores and instances; parallel compilation stays off in the fork.
        return create_app(self.settings, runtime=Runtime(parallel_compilation=False))


def _when_ready(server) -> None:
    app: HostApplication = server.app
    live = LivePipeline(app.settings.data_dir, app.master_runtime or Runtime())
    app.drop = DropFolder(app.settings.drop_folder, live.store, live.cache, live.manifests)
    app.drop.start()
    logger.info("watching the drop folder %s", app.settings.drop_folder)


def _on_exit(server) -> None:
    if server.app.drop is not None:
        server.app.drop.stop()


def _post_worker_init(worker) -> None:
    live_pipeline(worker.wsgi).start_watching()


def _worker_exit(server, worker) -> None:
    wsgi = getattr(worker, "wsgi", None)
    if wsgi is not None:
        live_pipeline(wsgi).close()


def gunicorn_options(settings: Settings) -> dict:
    return {
        "bind": settings.bind,
        "workers": settings.workers,
        "worker_class": settings.worker_class,
        "threads": settings.threads,
        "preload_app": False,
        "accesslog": None,
        "proc_name": "mwhost",
    }
