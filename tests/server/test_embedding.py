"""An own Falcon app under plain ``gunicorn -c python:mwhost.gunicorn_conf``: what ``mwhost serve`` sets up."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import example_path
from tests.server.gunicorn_process import SECRET_ENV, free_port, supervised
from tests.server.test_drop_restart import drop_file
from tests.server.test_swap import wait_for

pytestmark = pytest.mark.slow

#: the user's app module, as docs/embedding.md shows it
MYAPP = textwrap.dedent('''
    import falcon

    import mwhost


    class Items:
        def on_get(self, req, resp):
            resp.media = {"items": ["a", "b"], "ctx": req.context.mwhost.ctx}


    app = falcon.App()
    app.add_route("/items", Items())
    app = mwhost.create_app(None, app)
''')


def gunicorn_command(port: int, *flags: str) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-c", "python:mwhost.gunicorn_conf",
            "--bind", f"127.0.0.1:{port}", "--workers", "2", *flags, "myapp:app"]


def user_env(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (SECRET_ENV, "MWHOST_CONFIG", "MWHOST_DATA_DIR")}
    return {**env, "MWHOST_DATA_DIR": str(tmp_path / "d"), **extra}


def test_plain_gunicorn_with_the_config_module_gets_pipeline_token_metrics_drop_folder_and_hooks(tmp_path):
    """The own app runs the demo pipeline; the generated token works; /metrics counts both
    workers' calls; a dropped module becomes a stage; the control socket sits in the data
    dir; stopping gunicorn stops the drop folder's process."""
    example_path("block_paths")
    (tmp_path / "myapp.py").write_text(MYAPP)
    port = free_port()
    with supervised(gunicorn_command(port), tmp_path / "gunicorn.log", port, user_env(tmp_path), workers=2,
                    cwd=tmp_path) as served:
        status, headers, body = served.request("GET", "/items")
        assert status == 200 and json.loads(body)["items"] == ["a", "b"]
        assert headers["x-mwhost"] == "wasm" and headers["x-content-type-options"] == "nosniff"
        assert served.request("GET", "/admin/users")[0] == 403

        auth = {"Authorization": f"Bearer {served.printed_token()}"}  # generated: none configured
        status, pipeline = served.get_json("/_admin/pipeline", auth)
        assert status == 200 and len(pipeline["stages"]) == 4

        for _ in range(20):
            served.request("GET", "/items")
        metrics = wait_for(lambda: _calls(served.request("GET", "/metrics", auth)[2]) >= 20, timeout=10)
        assert metrics, "/metrics did not count the stage calls"

        drop_folder = tmp_path / "d" / "drop"
        (drop_folder / "private.toml").write_text('position = 0\n[config]\nprefixes = ["/private"]\n')
        drop_file(drop_folder, "private", example_path("block_paths").read_bytes())
        assert wait_for(lambda: served.request("GET", "/private/x")[0] == 403, timeout=30), served.output()

        control_socket = tmp_path / "d" / "gunicorn.ctl"
        assert control_socket.exists() or len(str(control_socket)) > 100
        output = served.output()
        drop_pid = int(re.search(r"watching the drop folder \S+ \(pid (\d+)\)", output).group(1))
        assert f"data in {tmp_path / 'd'}" in output  # mwhost's own log lines, absolute paths
    served.process.wait(timeout=20)
    assert not os.path.exists(f"/proc/{drop_pid}") or _zombie(drop_pid)


def _calls(metrics_text: bytes) -> float:
    """The total of mwhost_stage_calls_total over every stage, phase and worker."""
    total = 0.0
    for line in metrics_text.decode().splitlines():
        if line.startswith("mwhost_stage_calls_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_bad_pipeline_stops_plain_gunicorn_with_a_one_line_reason(tmp_path):
    """A stage that cannot load stops gunicorn before it binds, naming the stage, no traceback."""
    (tmp_path / "myapp.py").write_text(MYAPP)
    (tmp_path / "broken.wasm").write_bytes(b"not wasm")
    (tmp_path / "mwhost.toml").write_text('[[middleware]]\nname = "broken"\nmodule = "broken.wasm"\n')
    env = user_env(tmp_path, MWHOST_CONFIG=str(tmp_path / "mwhost.toml"), MWHOST_ADMIN_JWT_SECRET="x" * 40)
    result = subprocess.run(gunicorn_command(free_port()), cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "mwhost: error:" in result.stderr and "'broken'" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
