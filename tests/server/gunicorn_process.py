"""Run ``mwhost serve`` as a real gunicorn subprocess on a free loopback port."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import jwt

#: the admin secret every served host gets unless a test passes its own (or none: generated)
ADMIN_SECRET = "test-admin-secret-0123456789abcdef-0123456789"
SECRET_ENV = "MWHOST_ADMIN_JWT_SECRET"


def admin_token(secret: str = ADMIN_SECRET, *, scope: str = "mwhost:admin", sub: str = "tests",
                ttl_s: float = 600, **claims) -> str:
    """A bearer token as an operator would mint it (HS256)."""
    now = int(time.time())
    return jwt.encode({"sub": sub, "scope": scope, "iat": now, "exp": now + int(ttl_s), **claims},
                      secret, algorithm="HS256")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    """A running ``mwhost serve``; ``request`` talks HTTP/1.1 to it like curl would."""

    def __init__(self, process: subprocess.Popen, port: int, log: pathlib.Path, secret: str | None) -> None:
        self.process = process
        self.port = port
        self.log = log
        self.secret = secret

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def admin_headers(self, **claims) -> dict[str, str]:
        """``Authorization`` for the admin API: a token made with the test secret, or the one
        ``mwhost serve`` printed when it generated its own."""
        if self.secret is not None:
            return {"Authorization": f"Bearer {admin_token(self.secret, **claims)}"}
        return {"Authorization": f"Bearer {self.printed_token()}"}

    def printed_token(self) -> str:
        found = re.search(r"MWHOST_TOKEN=(\S+)", self.output())
        assert found, f"mwhost serve printed no admin token:\n{self.output()}"
        return found.group(1)

    def request(self, method: str, path: str, headers: dict | None = None,
                body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def get_json(self, path: str, headers: dict | None = None) -> tuple[int, dict]:
        status, _, body = self.request("GET", path, headers)
        return status, json.loads(body)

    def health(self) -> dict:
        """``GET /_admin/health`` with an admin token: the answering worker's pid and generation."""
        status, body = self.get_json("/_admin/health", self.admin_headers())
        assert status == 200, body
        return body

    def worker_pids(self) -> set[int]:
        """The gunicorn workers: children of the master running the master's own command
        (the drop folder's spawned process and multiprocessing's helpers run others)."""
        master_cmdline = _cmdline(self.process.pid)
        pids = set()
        for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                pid = int(stat.parent.name)
                if int(fields[1]) == self.process.pid and _cmdline(pid) == master_cmdline:
                    pids.add(pid)
        return pids

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _cmdline(pid: int) -> bytes:
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def mwhost_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mwhost.cli", *args]


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path, *args: str, workers: int = 2, ready_timeout: float = 60.0,
          admin_secret: str | None = ADMIN_SECRET):
    """Start ``mwhost serve`` and wait until every worker answers; always stops it.
    ``admin_secret=None`` lets serve generate its own (``Served.printed_token``)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
    if admin_secret is not None:
        env[SECRET_ENV] = admin_secret
    command = mwhost_command("serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                             "--data-dir", str(tmp_path / "data"), *args)
    with supervised(command, tmp_path / f"serve-{port}.log", port, env, workers, ready_timeout,
                    admin_secret) as served:
        yield served


@contextlib.contextmanager
def supervised(command: list[str], log: pathlib.Path, port: int, env: dict, workers: int,
               ready_timeout: float = 60.0, admin_secret: str | None = None, cwd=None):
    """Run a gunicorn ``command`` listening on ``port``, wait until ``workers`` workers
    answer, yield its ``Served``; always stop it (SIGTERM, then SIGKILL after 20 s)."""
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   env={**env, "PYTHONUNBUFFERED": "1"}, cwd=cwd)
    served = Served(process, port, log, admin_secret)
    try:
        _wait_ready(served, workers, ready_timeout)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(served: Served, workers: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise AssertionError(f"the server exited with {served.process.returncode}:\n{served.output()}")
        with contextlib.suppress(OSError):
            served.request("GET", "/__ready__")
            if len(served.worker_pids()) >= workers:
                return
        time.sleep(0.1)
    raise AssertionError(f"the server was not ready within {timeout}s:\n{served.output()}")


def run_to_exit(tmp_path: pathlib.Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run ``mwhost`` expecting it to exit by itself (e.g. refusing a bad config)."""
    port = free_port()
    return subprocess.run(mwhost_command("serve", "--bind", f"127.0.0.1:{port}",
                                         "--data-dir", str(tmp_path / "data"), *args),
                          capture_output=True, text=True, timeout=timeout)
