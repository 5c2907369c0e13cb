"""``mwhost serve``: gunicorn running the host app through ``BaseApplication``."""

from __future__ import annotations

import logging

from gunicorn.app.base import BaseApplication

from .pipeline import build_pipeline
from .registry import CompileCache
from .runtime import Runtime
from .settings import Settings
from .web import create_app

logger = logging.getLogger("mwhost.server")


def precompile(settings: Settings) -> int:
    """Load, check and initialise every stage once in the master, filling the compile cache.

    A bad module or config stops ``mwhost serve`` here, before any worker starts; the workers
    then only deserialize (compiling in a fork after a parallel compile hangs). Returns the
    number of stages.
    """
    runtime = Runtime(parallel_compilation=True)
    try:
        pipeline = build_pipeline(settings.middleware, CompileCache(runtime, settings.data_dir / "cache"))
        pipeline.close()
        return len(pipeline)
    finally:
        runtime.stop_ticker()


class HostApplication(BaseApplication):
    """The standalone gunicorn application (gunicorn's ``examples/standalone_app.py`` shape)."""

    def __init__(self, settings: Settings, options: dict | None = None) -> None:
        self.settings = settings
        self.options = options or {}
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        # NOTE: runs in each worker after fork (no preload): every worker builds its own
        # engine, stores and instances; parallel compilation stays off in the fork.
        return create_app(self.settings, runtime=Runtime(parallel_compilation=False))


def gunicorn_options(settings: Settings) -> dict:
    return {
        "bind": settings.bind,
        "workers": settings.workers,
        "worker_class": "sync",
        "preload_app": False,
        "accesslog": None,
        "proc_name": "mwhost",
    }
