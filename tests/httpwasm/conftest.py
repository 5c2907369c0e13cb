"""A gunicorn host with one http-wasm stage (the Go TCK guest) in front of the TCK backend."""

from __future__ import annotations

import os
import pathlib
import sys
import textwrap

import pytest

from tests.server.gunicorn_process import SECRET_ENV, free_port, supervised

ROOT = pathlib.Path(__file__).resolve().parents[2]
TCK_GUEST = ROOT / "build" / "test-guests" / "httpwasm_tck.wasm"

APP = textwrap.dedent('''
    import mwhost
    from tests.httpwasm.backend import backend_app

    app = mwhost.create_app(None, backend_app())
''')


def host_config(folder: pathlib.Path, module: pathlib.Path, extra: str = "") -> pathlib.Path:
    config = folder / "mwhost.toml"
    config.write_text(textwrap.dedent(f'''
        [[middleware]]
        name = "tck"
        module = "{module}"
        timeout_ms = 1000
        {extra}
        [middleware.config]
        greeting = "hello"
        limit = 3
    '''))
    return config


@pytest.fixture(scope="module")
def tck_host(tmp_path_factory):
    """``gunicorn -c python:mwhost.gunicorn_conf`` with the TCK guest as its only stage."""
    if not TCK_GUEST.exists():
        pytest.fail(f"{TCK_GUEST} is missing: run scripts/build_guests.sh")
    folder = tmp_path_factory.mktemp("tck")
    (folder / "tckapp.py").write_text(APP)
    config = host_config(folder, TCK_GUEST)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in (SECRET_ENV, "MWHOST_DATA_DIR")}
    env.update(MWHOST_CONFIG=str(config), PYTHONPATH=f"{ROOT}{os.pathsep}{folder}")
    command = [sys.executable, "-m", "gunicorn", "-c", "python:mwhost.gunicorn_conf",
               "--bind", f"127.0.0.1:{port}", "--workers", "2", "tckapp:app"]
    with supervised(command, folder / "gunicorn.log", port, env, workers=2, cwd=folder) as served:
        yield served
