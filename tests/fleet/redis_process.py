"""Private redis-server processes for the fleet tests: free loopback ports (never 6379), no
persistence, started and stopped by the tests themselves (never a mock)."""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import subprocess
import time

import redis

from tests.server.gunicorn_process import free_port

START_TIMEOUT_S = 10.0


class RedisServer:
    """One ``redis-server`` on 127.0.0.1; ``stop`` and ``start`` again on the same port (empty:
    nothing is persisted), like a Redis restarted without persistence."""

    def __init__(self, folder: pathlib.Path) -> None:
        self.folder = folder
        self.port = free_port()
        while self.port == 6379:
            self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2)

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (scripts/setup.sh installs it)"
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"redis-{self.port}.log", "ab") as log:
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.folder), "--protected-mode", "yes"],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        client = self.client()
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.folder / f"redis-{self.port}.log").read_text()
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    client.close()
                    return self
            time.sleep(0.05)
        raise AssertionError(f"redis-server on port {self.port} did not answer within {START_TIMEOUT_S} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
