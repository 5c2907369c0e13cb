"""A gunicorn config module: your own app under plain gunicorn gets what ``mwhost serve`` sets up.

    MWHOST_CONFIG=mwhost.toml gunicorn -c python:mwhost.gunicorn_conf myapp:app

where ``myapp.app = mwhost.create_app(None, your_falcon_app)`` (``None``: the same
``$MWHOST_CONFIG`` this module reads; without it, the demo pipeline in ``$MWHOST_DATA_DIR``,
default ``./mwhost-data``). It gives the server what ``mwhost serve`` gives it
(host/server.py's hooks, reused): the pipeline checked once before any worker starts (a bad
one stops gunicorn with a one-line reason), mwhost's log lines (``[server] log_format``),
a fresh multiprocess metrics folder so ``/metrics`` sums every worker, a generated admin
secret and printed token when none is configured, every worker watching the manifest (the
generation log), the drop folder's process, shadow calls after the response is sent,
instances closed when a worker exits, dead workers' gauges dropped, and gunicorn's control
socket under the data dir instead of one shared by every server of the user. Its settings
(bind, workers, worker class, threads, timeouts) come from the ``[server]`` table; gunicorn
flags given on the command line win. docs/embedding.md has the details and caveats.
"""

from __future__ import annotations

import logging
import os
import pathlib
import sys

from .admin import SECRET_ENV, announce, prepare_admin
from .errors import HostError
from .logs import configure_logging
from .server import (_SPAWN, _check, _child_exit, _on_exit, _post_request, _post_worker_init,
                     _prepare_metrics_folder, _when_ready, _worker_exit, gunicorn_options)
from .settings import Settings
from .web import live_pipeline, resolve_settings

logger = logging.getLogger("mwhost.server")

def _settings() -> Settings:
    """The settings ``mwhost.create_app(None, app)`` resolves in every worker, with the data dir
    made absolute here and in the environment (log lines and the drop folder's process see
    the same absolute path whatever the worker's cwd)."""
    if not os.environ.get("MWHOST_CONFIG"):
        data_dir = pathlib.Path(os.environ.get("MWHOST_DATA_DIR", "mwhost-data")).resolve()
        os.environ["MWHOST_DATA_DIR"] = str(data_dir)
    try:
        return resolve_settings(None)
    except HostError as err:
        sys.exit(f"mwhost: error: {err}")  # NOTE: SystemExit passes gunicorn's config loader untouched


SETTINGS = _settings()

# gunicorn reads the module's variables whose names are its settings; the rest is ignored
globals().update(gunicorn_options(SETTINGS))  # the control socket in the data dir included
preload_app = False  # NOTE: the master must hold no wasmtime state (host/server.py); never --preload


def on_starting(server) -> None:
    """Before any socket or worker: logging, the metrics folder, the admin secret, and the
    pipeline checked in a spawned process (which fills the compile cache for the workers)."""
    global SETTINGS
    configure_logging(SETTINGS.log_format)
    try:
        _prepare_metrics_folder(SETTINGS)
        startup = prepare_admin(SETTINGS)
        with _SPAWN.Pool(1) as pool:
            count, error = pool.apply(_check, (SETTINGS,))
    except HostError as err:
        error = str(err)
    if error:
        sys.exit(f"mwhost: error: {error}")
    if startup.token is not None:
        # NOTE: workers are forked from this process: they read the generated secret from the
        # environment (host/admin/auth.py), like a secret an operator exported
        os.environ[SECRET_ENV] = startup.settings.admin.jwt_secret
    SETTINGS = startup.settings
    server.mwhost_startup = startup
    logger.info("pipeline of %d stage(s) checked; data in %s", count, SETTINGS.data_dir)


def when_ready(server) -> None:
    """Sockets are bound: print the admin lines with the real address, start the drop folder."""
    print(announce(server.mwhost_startup, _bound_address(server)), file=sys.stderr, flush=True)
    server.app.settings = SETTINGS  # what host/server.py's hooks read from the application
    server.app.drop_process = None
    _when_ready(server)


def _bound_address(server) -> str:
    """``HOST:PORT`` gunicorn listens on (its ``-b`` wins over ``[server] bind``)."""
    bound = server.cfg.bind[0] if server.cfg.bind else ""
    return bound if bound and not bound.startswith(("unix:", "fd://")) else SETTINGS.bind


def post_worker_init(worker) -> None:
    """In each worker: watch the manifest and start the metrics flush (as ``mwhost serve``)."""
    try:
        live_pipeline(worker.wsgi)
    except LookupError:
        logger.error("the app gunicorn serves was not made by mwhost.create_app(None, app): "
                     "mwhost.gunicorn_conf cannot make it follow the manifest")
        raise
    _post_worker_init(worker)


on_exit = _on_exit
worker_exit = _worker_exit
post_request = _post_request
child_exit = _child_exit

#: what ``from mwhost.gunicorn_conf import *`` gives a config module of the user's: every
#: gunicorn setting and hook set here
__all__ = sorted(["child_exit", "on_exit", "on_starting", "post_request", "post_worker_init",
                  "when_ready", "worker_exit", *gunicorn_options(SETTINGS)])
