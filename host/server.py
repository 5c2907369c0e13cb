"""``mwhost serve``: gunicorn running the host app through ``BaseApplication``."""

from __future__ import annotations

import errno
import ipaddress
import logging
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys

from gunicorn.app.base import BaseApplication

from .errors import HostError
from .watch.drop import TRUSTED_KEYS_ENV
from .metrics import METRICS, MULTIPROC_ENV, mark_process_dead
from .pipeline.shadow import RUNNER as SHADOWS
from .runtime import Runtime
from .settings import FLEET_NAME_ENV, FLEET_URL_ENV, WORKER_TIMEOUT_S, Settings
from .watch import LivePipeline
from .web import create_app, live_pipeline

logger = logging.getLogger("mwhost.server")

# NOTE: the gunicorn master forks workers, so it must hold no wasmtime state: threads that
# wasmtime starts (rayon for parallel compilation, tokio for WASI stdio) do not survive
# fork, and a worker that inherits their half-state hangs on its first guest write to
# stdout. Everything that compiles or instantiates outside the workers runs in a separate
# process instead: the check in a *spawned* one (a fresh interpreter, joined before any
# fork), the drop folder in a child started with exec (host/watch/drop_process.py).
_SPAWN = multiprocessing.get_context("spawn")


def _check(settings: Settings) -> tuple[int, str]:
    """In a spawned process: seed the manifest and load every stage once (filling the
    compile cache, so workers only deserialize). Returns (stage count, error or "")."""
    try:
        runtime = Runtime(parallel_compilation=True)
        live = LivePipeline.from_settings(settings, runtime)
        count = len(live.holder.current)
        live.close()
        runtime.close_instances()
        return count, ""
    except HostError as err:
        return 0, str(err)


class HostApplication(BaseApplication):
    """The standalone gunicorn application (gunicorn's ``examples/standalone_app.py`` shape).

    The pipeline is checked before any worker starts; every worker builds its own runtime
    after fork and watches the manifest; the drop folder runs in its own spawned process
    (gunicorn hooks, not globals).
    """

    def __init__(self, settings: Settings, options: dict | None = None) -> None:
        self.settings = settings
        self.options = options or {}
        self.drop_process: subprocess.Popen | None = None
        _prepare_metrics_folder(settings)
        super().__init__()

    def precompile(self) -> int:
        """Check the whole pipeline in a spawned process; raises HostError naming what is wrong."""
        with _SPAWN.Pool(1) as pool:
            count, error = pool.apply(_check, (self.settings,))
        if error:
            raise HostError(error)
        return count

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("when_ready", _when_ready)
        self.cfg.set("on_exit", _on_exit)
        self.cfg.set("post_worker_init", _post_worker_init)
        self.cfg.set("worker_exit", _worker_exit)
        self.cfg.set("post_request", _post_request)
        self.cfg.set("child_exit", _child_exit)

    def load(self):
        # NOTE: runs in each worker after fork (no preload): every worker builds its own
        # engine, stores and instances; parallel compilation stays off in the fork.
        # NOTE: strict=False: the pipeline was checked before any worker started; a worker
        # booting later over a damaged data dir must still boot (gunicorn's master exits
        # when a worker fails to boot), on the newest generation it can build.
        return create_app(self.settings, runtime=Runtime(parallel_compilation=False), strict=False)


def _when_ready(server) -> None:
    app: HostApplication = server.app
    # the folder exists once serving starts; files dropped before the process is up are
    # picked up by its first scan
    try:
        app.settings.drop_folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # NOTE: in the master: a hook that raises takes the server down
        logger.error("no drop folder: cannot create %s: %s", app.settings.drop_folder, err)
        return
    app.drop_process = subprocess.Popen([sys.executable, "-m", "mwhost.watch.drop_process",
                                         str(app.settings.data_dir), str(app.settings.drop_folder)],
                                        env=fleet_environment(app.settings))
    logger.info("watching the drop folder %s (pid %d)", app.settings.drop_folder, app.drop_process.pid)


def fleet_environment(settings: Settings) -> dict[str, str]:
    """The environment of the drop folder's process: a fleet host's drop folder writes to the
    fleet too (docs/fleet.md)."""
    env = {key: value for key, value in os.environ.items() if key not in (FLEET_URL_ENV, FLEET_NAME_ENV)}
    if settings.fleet.enabled:  # NOTE: only then: the workers of a host without a fleet write locally
        env.update({FLEET_URL_ENV: settings.fleet.url, FLEET_NAME_ENV: settings.fleet.name})
    env[TRUSTED_KEYS_ENV] = os.pathsep.join(str(path) for path in settings.admin.trusted_keys)
    return env


def _on_exit(server) -> None:
    process = server.app.drop_process
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()


def _prepare_metrics_folder(settings: Settings) -> None:
    """A fresh prometheus_client multiprocess folder for this server (before any import of
    prometheus_client: it reads the variable then); workers inherit the variable."""
    folder = settings.data_dir / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.mkdir(parents=True)
    except OSError as err:
        raise HostError(f"cannot create the metrics folder {folder}: {err.strerror or err} "
                        "(the data dir must be writable)") from err
    os.environ[MULTIPROC_ENV] = str(folder)


def _post_worker_init(worker) -> None:
    live = live_pipeline(worker.wsgi)
    live.start_watching()
    METRICS.serving(live.generation)
    METRICS.start_flushing()
    SHADOWS.after_send = True  # _post_request hands shadow jobs over once a response is sent


def _post_request(worker, req, environ, resp) -> None:
    # NOTE: gunicorn calls this after the response was written and closed: shadow calls
    # (host/pipeline/shadow.py) start only then, so they never delay a client's bytes
    SHADOWS.release(environ)


def _child_exit(server, worker) -> None:
    mark_process_dead(worker.pid)  # a dead worker's live gauges leave the totals; never raises


def _worker_exit(server, worker) -> None:
    wsgi = getattr(worker, "wsgi", None)
    if wsgi is not None:
        live_pipeline(wsgi).close()


#: seconds an idle kept-alive connection stays open (gunicorn's default, kept explicit)
KEEPALIVE_S = 2

#: the gunicorn worker class behind each ``worker_class`` setting
WORKER_CLASSES = {"sync": "sync", "gthread": "mwhost.worker.HostWorker"}


def gunicorn_options(settings: Settings) -> dict:
    """gunicorn settings for ``settings``. ``gthread`` is gunicorn's threaded worker made safe
    against idle and slow clients (host/worker.py); ``keepalive`` bounds idle kept-alive
    connections (docs/operations.md, "Clients and connections")."""
    return {
        "bind": settings.bind,
        "workers": settings.workers,
        "worker_class": WORKER_CLASSES[settings.worker_class],
        "threads": settings.threads,
        "keepalive": KEEPALIVE_S,
        "preload_app": False,
        "timeout": WORKER_TIMEOUT_S,  # above every stage's timeout_ms (settings.MAX_TIMEOUT_MS)
        "accesslog": None,
        "proc_name": "mwhost",
        **control_socket_options(settings),
    }


#: the longest path a unix socket may have on Linux (sun_path is 108 bytes with its NUL)
MAX_SOCKET_PATH = 107


def control_socket_options(settings: Settings) -> dict:
    """gunicorn's control socket (``gunicornc``) under this server's data dir, so two hosts on
    one machine never share ``~/.gunicorn/gunicorn.ctl``; off when that path is too long for a
    unix socket."""
    path = settings.data_dir.resolve() / "gunicorn.ctl"
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        return {"control_socket_disable": True}
    return {"control_socket": str(path), "control_socket_mode": 0o600}


def check_bind(bind: str) -> tuple[str, int]:
    """(host, port) of a ``HOST:PORT`` bind address, or a HostError saying what to write.
    All interfaces only when asked for by name (``0.0.0.0:PORT`` or ``[::]:PORT``)."""
    host, sep, port_text = bind.rpartition(":")
    if not sep or not host and not port_text:
        raise HostError(f"bind {bind!r} must be HOST:PORT, e.g. 127.0.0.1:8000")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise HostError(f"bind {bind!r}: the port must be a number from 1 to 65535, got {port_text!r}")
    if not host:
        raise HostError(f"bind {bind!r} has no host: write 127.0.0.1:{port_text} for this machine only, "
                        f"or 0.0.0.0:{port_text} to listen on all interfaces")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError as err:
            raise HostError(f"bind {bind!r}: {host!r} is not an IPv6 address") from err
    return host, int(port_text)


def probe_bind(bind: str) -> None:
    """Bind the address once and let it go, so a port in use or a host that does not resolve
    is one clear error before anything starts (gunicorn would retry it for 5 s). A
    ``unix:PATH`` bind is gunicorn's to check."""
    if bind.startswith("unix:"):
        return
    host, port = check_bind(bind)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise HostError(f"bind {bind!r}: cannot resolve the host {host!r} ({err.strerror})") from err
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does
        try:
            probe.bind(address)
        except OSError as err:
            why = "the port is in use" if err.errno == errno.EADDRINUSE else \
                "this machine has no such address" if err.errno == errno.EADDRNOTAVAIL else err.strerror
            raise HostError(f"cannot listen on {bind}: {why}") from err
