"""Real gunicorn servers for the load, swap and memory benchmarks (loopback only, bounded).

``mwhost_server`` runs ``mwhost serve`` (tests/server/gunicorn_process.py's ``serve``);
``native_server`` runs gunicorn directly on bench/native_app.py: the same host app with an
empty pipeline and native Python Falcon middlewares doing add_header's job instead.
Both yield a ``Served`` (``url``, ``request``, ``worker_pids``, ``output``).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mwhost.registry import example_module  # noqa: E402
from tests.server.gunicorn_process import Served, free_port, serve, supervised  # noqa: E402


_GENERATION = re.compile(r"now serves generation (\d+)")


def stage_headers(index: int) -> dict:
    """add_header's config for stage ``index``: one request and one response header."""
    return {"request_headers": {f"x-req-{index}": "1"}, "response_headers": {f"x-resp-{index}": "1"}}


def rust_stages_config(folder: pathlib.Path, count: int) -> pathlib.Path:
    """An mwhost.toml with ``count`` Rust add_header stages, each setting its own headers."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "add_header.wasm").write_bytes(example_module("add_header").read_bytes())
    lines = []
    for i in range(count):
        lines += ["[[middleware]]", f'name = "add{i}"', 'module = "add_header.wasm"', "[middleware.config]"]
        for table, headers in stage_headers(i).items():
            pairs = ", ".join(f'"{name}" = "{value}"' for name, value in headers.items())
            lines.append(f"{table} = {{ {pairs} }}")
        lines.append("")
    path = folder / "mwhost.toml"
    path.write_text("\n".join(lines))
    return path


def server_args(worker_class: str, threads: int) -> list[str]:
    return ["--worker-class", worker_class, "--threads", str(threads)]


@contextlib.contextmanager
def mwhost_server(folder: pathlib.Path, config: pathlib.Path, workers: int,
                  worker_class: str = "sync", threads: int = 1):
    """``mwhost serve --config CONFIG`` on a free loopback port; stopped on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    with serve(folder, "--config", str(config), *server_args(worker_class, threads), workers=workers) as served:
        yield served


@contextlib.contextmanager
def native_server(folder: pathlib.Path, middlewares: int, workers: int,
                  worker_class: str = "sync", threads: int = 1, ready_timeout: float = 60.0):
    """gunicorn serving bench/native_app.py (``middlewares`` native Python middlewares)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / f"native-{port}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MWHOST_BENCH_NATIVE": str(middlewares),
           "MWHOST_BENCH_DATA": str(folder / "data")}
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
               "--worker-class", worker_class, "--threads", str(threads), "bench.native_app:app"]
    with supervised(command, log, port, env, workers, ready_timeout, cwd=ROOT) as served:
        yield served


def check_headers(served: Served, count: int) -> None:
    """The server really does the job ``count`` times: each request header reached the app
    (the echo shows it) and each response header is on the response."""
    import json

    status, headers, body = served.request("GET", "/bench/items?limit=10")
    assert status == 200, (status, body[:200])
    echoed = {name for name, _ in json.loads(body)["headers"]}
    for i in range(count):
        assert headers.get(f"x-resp-{i}") == "1", (i, headers)
        assert f"x-req-{i}" in echoed, (i, echoed)


def rss_kib(pid: int) -> int:
    """Resident set size of process ``pid`` in KiB (0 once it is gone)."""
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def open_files_ending(pid: int, suffix: str) -> int:
    """How many of ``pid``'s open file descriptors point at files named ``*suffix``."""
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                count += os.readlink(f"/proc/{pid}/fd/{fd}").endswith(suffix)
    return count


class LogFollower:
    """Reads a server log incrementally: the worker lines "pid N now serves generation G"."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.offset = 0
        self.served: dict[int, dict[int, float]] = {}  # generation -> {pid: epoch seconds}

    def poll(self) -> None:
        from tests.server.test_swap import swap_times

        with open(self.path, "rb") as log:
            log.seek(self.offset)
            chunk = log.read()
        end = chunk.rfind(b"\n") + 1  # only whole lines
        self.offset += end
        text = chunk[:end].decode(errors="replace")
        for generation in {int(g) for g in _GENERATION.findall(text)}:
            self.served.setdefault(generation, {}).update(swap_times(text, generation))

    def wait_all(self, generation: int, workers: int, timeout: float) -> dict[int, float] | None:
        """pid -> time each worker started serving ``generation``, once all ``workers`` do."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            times = self.served.get(generation, {})
            if len(times) >= workers:
                return times
            if time.monotonic() > deadline:
                return None
            time.sleep(0.005)
