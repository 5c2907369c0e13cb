"""``create_app``: the host app, or the host's middleware added to an app of the user's."""

from __future__ import annotations

import os
import pathlib

import falcon

from ..pipeline import PipelineHolder, build_pipeline
from ..registry import CompileCache, demo_settings
from ..runtime import Runtime, default_runtime
from ..settings import Settings, load_settings
from .demo import EchoSink
from .middleware import WasmMiddleware

Config = str | os.PathLike | Settings | None


def resolve_settings(config: Config) -> Settings:
    """A Settings object from a path, a Settings, or None (``$MWHOST_CONFIG``, else the demo)."""
    if isinstance(config, Settings):
        return config
    if config is None:
        config = os.environ.get("MWHOST_CONFIG")
        if not config:
            return demo_settings(pathlib.Path(os.environ.get("MWHOST_DATA_DIR", "mwhost-data")))
    return load_settings(config)


def load_holder(settings: Settings, runtime: Runtime | None = None) -> PipelineHolder:
    """Build the configured pipeline (compile cache in ``data_dir/cache``) into a holder."""
    runtime = runtime or default_runtime()
    cache = CompileCache(runtime, settings.data_dir / "cache")
    return PipelineHolder(build_pipeline(settings.middleware, cache))


def create_app(config: Config = None, app: falcon.App | None = None, *,
               runtime: Runtime | None = None) -> falcon.App:
    """The host app: ``config`` is a path to an ``mwhost.toml``, a ``Settings``, or None.

    With ``app`` the pipeline is added to that app as a ``WasmMiddleware``; without it a new
    app answers every method and path with the demo echo. Raises ``ConfigError`` or
    ``StageLoadError`` naming what is wrong; nothing is served half-loaded.
    """
    middleware = WasmMiddleware(load_holder(resolve_settings(config), runtime))
    if app is not None:
        app.add_middleware(middleware)
        return app
    app = falcon.App(middleware=[middleware])
    app.add_sink(EchoSink(), r"/")
    return app
