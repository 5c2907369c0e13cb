"""``create_app``: the host app, or the host's middleware added to an app of the user's."""

from __future__ import annotations

import os
import pathlib

import falcon

from ..admin import build_admin, mount_admin
from ..registry import demo_settings
from ..runtime import Runtime, default_runtime
from ..settings import Settings, load_settings
from ..watch import LivePipeline
from .demo import EchoSink
from .health import HealthResource
from .middleware import WasmMiddleware
from .observability import mount_observability

Config = str | os.PathLike | Settings | None

HEALTH_PATH = "/_admin/health"


def resolve_settings(config: Config) -> Settings:
    """A Settings object from a path, a Settings, or None (``$MWHOST_CONFIG``, else the demo)."""
    if isinstance(config, Settings):
        return config
    if config is None:
        config = os.environ.get("MWHOST_CONFIG")
        if not config:
            return demo_settings(pathlib.Path(os.environ.get("MWHOST_DATA_DIR", "mwhost-data")))
    return load_settings(config)


def load_live(settings: Settings, runtime: Runtime | None = None, *, strict: bool = True) -> LivePipeline:
    """The live pipeline for ``settings``: manifest seeded from the config, loaded and checked
    (``strict``: see ``LivePipeline.from_settings``)."""
    return LivePipeline.from_settings(settings, runtime or default_runtime(), strict=strict)


def create_app(config: Config = None, app: falcon.App | None = None, *,
               runtime: Runtime | None = None, strict: bool = True) -> falcon.App:
    """The host app: ``config`` is a path to an ``mwhost.toml``, a ``Settings``, or None.

    With ``app`` the pipeline is added to that app as a ``WasmMiddleware``; without it a new
    app answers every method and path with the demo echo. Both get the admin API
    (``/_admin/...``, docs/admin.md): it needs a bearer token checked with ``[admin]
    jwt_secret`` / ``jwt_public_key`` or ``$MWHOST_ADMIN_JWT_SECRET``, and answers 503 while
    none is configured. Raises ``ConfigError`` or ``StageLoadError`` naming what is wrong;
    nothing is served half-loaded. The pipeline follows the manifest in ``data_dir`` once
    ``live_pipeline(app).start_watching()`` runs in the serving process (``mwhost serve``
    does it in every worker). ``strict=False`` is for a worker of a server whose pipeline
    was checked at start: it boots even when the data dir has lost something since (on an
    earlier generation, or answering 503), reporting not-ready, so gunicorn keeps it.
    """
    settings = resolve_settings(config)
    live = load_live(settings, runtime, strict=strict)
    admin = build_admin(live, settings.admin)
    middleware = WasmMiddleware(live.holder)
    middleware.live = live
    if app is None:
        app = falcon.App(middleware=[middleware])
        app.add_sink(EchoSink(), r"/")
    else:
        app.add_middleware(middleware)
    mount_admin(app, admin)
    app.add_route(HEALTH_PATH, HealthResource(admin))
    mount_observability(app, admin, live)
    middleware.guard_control_plane(app)
    return app


def live_pipeline(app: falcon.App) -> LivePipeline:
    """The LivePipeline behind an app made by ``create_app``."""
    for middleware in app._unprepared_middleware:
        live = getattr(middleware, "live", None)
        if isinstance(live, LivePipeline):
            return live
    raise LookupError("this app was not made by mwhost.create_app")
