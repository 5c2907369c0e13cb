"""Hosts of a fleet for the tests: real ``mwhost serve --fleet-url`` processes (gunicorn, N
workers each), each with its own data dir, sharing one private redis-server."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import time

from tests.server.gunicorn_process import ADMIN_SECRET, SECRET_ENV, Served, free_port, mwhost_command, supervised
from tests.wat import const_guest

#: how long a test waits for every worker of every host to serve a generation
CONVERGE_TIMEOUT_S = 20.0
_SERVES = re.compile(r"\[(\d+)\] INFO mwhost.watch: pid \d+ now serves generation (\d+)")


def tagger(version: str) -> bytes:
    """A stage that puts ``v = version`` into ctx (the demo echo shows ctx)."""
    return const_guest({"action": "continue", "ctx": {"v": version}})


def write_config(folder: pathlib.Path, fleet_url: str | None = None) -> pathlib.Path:
    """The same one-stage config on every host (same digest: seeded once for the fleet),
    with a ``[fleet]`` table when ``fleet_url`` is given."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tag.wasm").write_bytes(tagger("config"))
    fleet = f'[fleet]\nurl = "{fleet_url}"\n\n' if fleet_url else ""
    (folder / "mwhost.toml").write_text(fleet + '[[middleware]]\nname = "tag"\nmodule = "tag.wasm"\n')
    return folder / "mwhost.toml"


@contextlib.contextmanager
def fleet_host(folder: pathlib.Path, fleet_url: str, workers: int = 2, port: int | None = None,
               joined_by: str = "flag"):
    """``mwhost serve`` of one host in ``folder`` (its config and data dir) joined to the fleet
    by ``joined_by``: the ``--fleet-url`` flag, the ``env`` variable or the ``config``'s table."""
    config = write_config(folder, fleet_url if joined_by == "config" else None)
    port = port or free_port()
    env = {**{k: v for k, v in os.environ.items() if k not in (SECRET_ENV, "MWHOST_FLEET_URL")},
           SECRET_ENV: ADMIN_SECRET, **({"MWHOST_FLEET_URL": fleet_url} if joined_by == "env" else {})}
    command = mwhost_command("serve", "--config", str(config), "--bind", f"127.0.0.1:{port}",
                             "--workers", str(workers), "--data-dir", str(folder / "data"),
                             *(["--fleet-url", fleet_url] if joined_by == "flag" else []))
    with supervised(command, folder / f"serve-{port}-{time.monotonic_ns()}.log", port, env, workers,
                    admin_secret=ADMIN_SECRET) as served:
        yield served


def upload(served: Served, name: str, wasm: bytes) -> tuple[int, dict]:
    headers = {**served.admin_headers(), "Content-Type": "application/wasm"}
    status, _, body = served.request("PUT", f"/_admin/middlewares/{name}", headers, wasm)
    return status, json.loads(body)


def serving(served: Served) -> dict[int, int]:
    """pid -> the last generation each worker said it serves (its log lines)."""
    latest: dict[int, int] = {}
    for pid, generation in _SERVES.findall(served.output()):
        latest[int(pid)] = int(generation)
    return latest


def wait_converged(hosts: list[Served], generation: int, timeout: float = CONVERGE_TIMEOUT_S) -> float:
    """Wait until every live worker of every host serves ``generation``; seconds it took."""
    start = time.monotonic()
    deadline = start + timeout
    while time.monotonic() < deadline:
        if all(_host_serves(served, generation) for served in hosts):
            return time.monotonic() - start
        time.sleep(0.02)
    state = {served.port: {pid: serving(served).get(pid) for pid in served.worker_pids()} for served in hosts}
    raise AssertionError(f"not every worker serves generation {generation} after {timeout} s: {state}")


def _host_serves(served: Served, generation: int) -> bool:
    pids = served.worker_pids()
    latest = serving(served)
    return bool(pids) and all(latest.get(pid) == generation for pid in pids)


def wait_for(condition, timeout: float, what: str):
    """Poll ``condition`` (bounded) until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
