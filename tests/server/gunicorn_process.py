"""Run ``mwhost serve`` as a real gunicorn subprocess on a free loopback port."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    """A running ``mwhost serve``; ``request`` talks HTTP/1.1 to it like curl would."""

    def __init__(self, process: subprocess.Popen, port: int, log: pathlib.Path) -> None:
        self.process = process
        self.port = port
        self.log = log

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

    def worker_pids(self) -> set[int]:
        pids = set()
        for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.process.pid:
                    pids.add(int(stat.parent.name))
        return pids

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def mwhost_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "host.cli", *args]


@contextlib.contextmanager
def serve(tmp_path: pathlib.Path, *args: str, workers: int = 2, ready_timeout: float = 60.0):
    """Start ``mwhost serve`` and wait until every worker answers; always stops it."""
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    command = mwhost_command("serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                             "--data-dir", str(tmp_path / "data"), *args)
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    served = Served(process, port, log)
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
            raise AssertionError(f"mwhost serve exited with {served.process.returncode}:\n{served.output()}")
        with contextlib.suppress(OSError):
            served.request("GET", "/__ready__")
            if len(served.worker_pids()) >= workers:
                return
        time.sleep(0.1)
    raise AssertionError(f"mwhost serve was not ready within {timeout}s:\n{served.output()}")


def run_to_exit(tmp_path: pathlib.Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run ``mwhost`` expecting it to exit by itself (e.g. refusing a bad config)."""
    port = free_port()
    return subprocess.run(mwhost_command("serve", "--bind", f"127.0.0.1:{port}",
                                         "--data-dir", str(tmp_path / "data"), *args),
                          capture_output=True, text=True, timeout=timeout)
