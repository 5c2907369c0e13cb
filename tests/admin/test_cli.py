"""The CLI client against real gunicorn: keygen, sign, upload, list, rollback, reorder, remove,
readable output, and the server's problem on failure with a non-zero exit."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.admin.support import tagger
from tests.server.gunicorn_process import ADMIN_SECRET, admin_token, mwhost_command, serve

pytestmark = pytest.mark.slow


def mwhost(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(mwhost_command(*args), capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, cwd=cwd)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """A host that trusts the key `mwhost keygen` made, and the client environment for it."""
    tmp_path = tmp_path_factory.mktemp("cli")
    made = mwhost("keygen", "--out", str(tmp_path / "publisher"))
    assert made.returncode == 0 and "publisher.key" in made.stdout, made.stderr
    (tmp_path / "mwhost.toml").write_text('[admin]\ntrusted_keys = ["publisher.pub"]\n')
    with serve(tmp_path, "--config", str(tmp_path / "mwhost.toml"), workers=2) as served:
        yield tmp_path, {"MWHOST_URL": served.url, "MWHOST_TOKEN": admin_token(sub="cli-test")}


def module(folder, name: str, wasm: bytes, key=None):
    path = folder / f"{name}.wasm"
    path.write_bytes(wasm)
    if key is not None:
        signed = mwhost("sign", str(path), "--key", str(key))
        assert signed.returncode == 0 and f"{path}.sig" in signed.stdout, signed.stderr
    return path


def test_upload_list_rollback_reorder_and_remove(host):
    folder, env = host
    key = folder / "publisher.key"
    v1 = module(folder, "greeter", tagger("greeting", "hello"), key)
    result = mwhost("upload", str(v1), "--on-error", "fail_open", "--timeout-ms", "50", env=env)
    assert result.returncode == 0, result.stderr
    assert "greeter:" in result.stdout and "active at position 0" in result.stdout
    assert "4 probe requests passed; signed by key" in result.stdout

    (folder / "v2").mkdir()
    v2 = module(folder / "v2", "greeter", tagger("greeting", "hi"), key)
    result = mwhost("upload", str(v2), "--config", "{}", env=env)
    assert result.returncode == 0, result.stderr

    listing = mwhost("list", env=env)
    assert listing.returncode == 0
    assert "greeter" in listing.stdout and "fail_open" in listing.stdout and "50 ms" in listing.stdout
    versions = mwhost("list", "greeter", env=env)
    assert versions.returncode == 0 and "2 version(s)" in versions.stdout

    rolled = mwhost("rollback", "greeter", env=env)
    assert rolled.returncode == 0 and "greeter: rolled back from" in rolled.stdout, rolled.stderr

    other = module(folder, "other", tagger("other", "1"), key)
    assert mwhost("upload", str(other), env=env).returncode == 0
    reordered = mwhost("reorder", "other", "greeter", env=env)
    assert reordered.returncode == 0 and "order: other, greeter" in reordered.stdout, reordered.stderr

    removed = mwhost("remove", "greeter", env=env)
    assert removed.returncode == 0 and "greeter: removed" in removed.stdout
    assert "greeter" not in mwhost("list", env=env).stdout.split("KEPT", 1)[1]


def test_a_refused_call_prints_the_servers_problem_and_exits_non_zero(host):
    folder, env = host
    unsigned = module(folder, "unsigned", tagger("u", "1"))
    result = mwhost("upload", str(unsigned), env=env)
    assert result.returncode != 0 and result.stdout == ""
    assert "403 Forbidden: this server accepts signed modules only" in result.stderr

    garbage = folder / "garbage.wasm"
    garbage.write_bytes(b"not a module")
    mwhost("sign", str(garbage), "--key", str(folder / "publisher.key"))
    result = mwhost("upload", str(garbage), env=env)
    assert result.returncode != 0 and "400 Bad Request: the module is not a WebAssembly binary" in result.stderr

    result = mwhost("rollback", "nobody", env=env)
    assert result.returncode != 0 and "404 Not Found" in result.stderr

    result = mwhost("list", env={**env, "MWHOST_TOKEN": "not-a-token"})
    assert result.returncode != 0 and "401 Unauthorized" in result.stderr

    result = mwhost("list", env={"MWHOST_URL": env["MWHOST_URL"], "MWHOST_TOKEN": ""})
    assert result.returncode != 0 and "no admin token" in result.stderr


def test_token_makes_a_token_the_server_accepts(host):
    folder, env = host
    made = mwhost("token", "--sub", "ops", "--hours", "1",
                  env={"MWHOST_ADMIN_JWT_SECRET": ADMIN_SECRET})
    assert made.returncode == 0, made.stderr
    result = mwhost("list", env={**env, "MWHOST_TOKEN": made.stdout.strip()})
    assert result.returncode == 0 and result.stdout.startswith("generation ")
