"""Wrong invocations of every ``mwhost`` command: exit code 2, one line on stderr that says
what to fix, nothing on stdout, never a traceback (issue 14)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from mwhost.cli import main
from tests.conftest import ROOT
from tests.server.gunicorn_process import free_port

pytestmark = pytest.mark.usefixtures("root_logging_restored")

#: (case id, argv); the files named do not exist unless a fixture makes them (see ``_in``)
WRONG = [
    ("no-command", []),
    ("unknown-command", ["frobnicate"]),
    ("unknown-flag", ["list", "--frobnicate"]),
    ("serve-bind-without-host", ["serve", "--bind", ":8202"]),
    ("serve-bind-port-too-big", ["serve", "--bind", "127.0.0.1:99999"]),
    ("serve-bind-port-zero", ["serve", "--bind", "127.0.0.1:0"]),
    ("serve-bind-port-not-a-number", ["serve", "--bind", "127.0.0.1:http"]),
    ("serve-bind-no-port", ["serve", "--bind", "127.0.0.1"]),
    ("serve-bind-nonsense", ["serve", "--bind", "nonsense"]),
    ("serve-bind-unknown-host", ["serve", "--bind", "no-such-host.invalid:8000"]),
    ("serve-bind-bad-ipv6", ["serve", "--bind", "[zz::1]:8000"]),
    ("serve-workers-zero", ["serve", "--workers", "0"]),
    ("serve-workers-negative", ["serve", "--workers", "-3"]),
    ("serve-workers-not-a-number", ["serve", "--workers", "two"]),
    ("serve-threads-zero", ["serve", "--threads", "0"]),
    ("serve-threads-too-many", ["serve", "--threads", "65"]),
    ("serve-worker-class", ["serve", "--worker-class", "eventlet"]),
    ("serve-log-format", ["serve", "--log-format", "xml"]),
    ("serve-missing-config", ["serve", "--config", "missing.toml"]),
    ("validate-no-file", ["validate"]),
    ("validate-missing-file", ["validate", "missing.wasm"]),
    ("validate-config-list", ["validate", "missing.wasm", "--config", "[1]"]),
    ("validate-config-number", ["validate", "missing.wasm", "--config", "5"]),
    ("validate-config-not-json", ["validate", "missing.wasm", "--config", "{name: 1}"]),
    ("validate-config-missing-file", ["validate", "missing.wasm", "--config", "@missing.json"]),
    ("validate-text-file", ["validate", "text.wasm"]),
    ("upload-no-module", ["upload"]),
    ("upload-missing-module", ["upload", "missing.wasm"]),
    ("upload-position-not-a-number", ["upload", "text.wasm", "--position", "first"]),
    ("upload-config-not-json", ["upload", "text.wasm", "--config", "{"]),
    ("upload-missing-sample", ["upload", "text.wasm", "--sample", "missing.json"]),
    ("upload-missing-signature", ["upload", "text.wasm", "--signature", "missing.sig"]),
    ("list-no-token", ["list"]),
    ("list-unreachable", ["list", "--token", "t", "--url", "http://127.0.0.1:{port}"]),
    ("rollback-no-name", ["rollback"]),
    ("rollback-to-without-name", ["rollback", "--to", "abcdef0"]),
    ("remove-no-name", ["remove"]),
    ("remove-unreachable", ["remove", "auth", "--token", "t", "--url", "http://127.0.0.1:{port}"]),
    ("reorder-no-names", ["reorder"]),
    ("rollout-no-action", ["rollout"]),
    ("rollout-unknown-action", ["rollout", "launch"]),
    ("rollout-start-no-module", ["rollout", "start", "auth"]),
    ("rollout-start-shadow-with-steps", ["rollout", "start", "auth", "text.wasm", "--shadow", "--steps", "1,100"]),
    ("rollout-start-canary-with-percent", ["rollout", "start", "auth", "text.wasm", "--percent", "10"]),
    ("rollout-start-step-not-a-number", ["rollout", "start", "auth", "text.wasm", "--step-s", "soon"]),
    ("rollout-status-no-name", ["rollout", "status"]),
    ("rollout-promote-no-name", ["rollout", "promote"]),
    ("keygen-no-out", ["keygen"]),
    ("keygen-out-in-missing-folder", ["keygen", "--out", "missing/publisher"]),
    ("sign-no-key", ["sign", "text.wasm"]),
    ("sign-missing-key", ["sign", "text.wasm", "--key", "missing.key"]),
    ("sign-missing-module", ["sign", "missing.wasm", "--key", "missing.key"]),
    ("sign-out-in-missing-folder", ["sign", "text.wasm", "--key", "made.key", "--out", "missing/text.sig"]),
    ("token-no-key", ["token"]),
    ("token-hours-not-a-number", ["token", "--hours", "long"]),
    ("token-missing-key", ["token", "--key", "missing.key"]),
    ("token-missing-config", ["token", "--config", "missing.toml"]),
]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A working folder with a text file named like a module and a key pair (made.key), and no
    admin credentials set."""
    (tmp_path / "text.wasm").write_text("(module)\n")
    assert main(["keygen", "--out", str(tmp_path / "made")]) == 0
    monkeypatch.chdir(tmp_path)
    for name in ("MWHOST_TOKEN", "MWHOST_URL", "MWHOST_ADMIN_JWT_SECRET", "MWHOST_FLEET_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


@pytest.mark.parametrize("argv", [argv for _, argv in WRONG], ids=[case for case, _ in WRONG])
def test_a_wrong_invocation_exits_2_with_one_line(folder, capsys, argv):
    """The wrong invocation exits 2 with exactly one ``mwhost...: error:`` line on stderr and nothing else."""
    port = free_port()
    code = _run([arg.replace("{port}", str(port)) for arg in argv])
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("mwhost") and ": error: " in err, err
    assert "Traceback" not in err


def test_serve_on_a_port_in_use_says_so_once_before_any_token(folder):
    """``serve`` on a busy port exits 2 at once with one line, without printing a token or retrying."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        bind = f"127.0.0.1:{busy.getsockname()[1]}"
        result = subprocess.run([sys.executable, "-m", "mwhost.cli", "serve", "--bind", bind], cwd=folder,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                                timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"mwhost: error: cannot listen on {bind}: the port is in use\n"
    assert result.stdout == ""


def test_a_bind_without_host_names_both_explicit_choices(folder, capsys):
    """``--bind :PORT`` never means all interfaces silently: the error offers 127.0.0.1 and 0.0.0.0."""
    assert _run(["serve", "--bind", ":8202"]) == 2
    err = capsys.readouterr().err
    assert "127.0.0.1:8202" in err and "0.0.0.0:8202" in err


@pytest.mark.parametrize("value, kind", [("[1]", "list"), ("5", "int"), ('"text"', "str")])
def test_validate_config_must_be_an_object_like_upload_says(folder, capsys, value, kind):
    """``validate --config`` that is JSON but not an object says so as upload does, naming the type."""
    assert _run(["validate", "text.wasm", "--config", value]) == 2
    assert capsys.readouterr().err == f"mwhost: error: --config must be a table (a JSON object), got {kind}\n"
