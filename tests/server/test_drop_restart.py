"""The drop folder under gunicorn across a restart: it never reverts an admin decision."""

from __future__ import annotations

import os

import pytest

from mwhost.registry import AuditLog
from tests.server.gunicorn_process import serve
from tests.server.test_swap import Operator, tagger, wait_for, write_config

pytestmark = pytest.mark.slow


def drop_file(folder, name: str, wasm: bytes) -> None:
    """The recipe docs/operations.md gives: write beside, then rename into place."""
    (folder / f".{name}.wasm.tmp").write_bytes(wasm)
    os.rename(folder / f".{name}.wasm.tmp", folder / f"{name}.wasm")


def test_a_restart_keeps_an_admin_upload_over_a_dropped_stage_and_an_admin_removal(tmp_path):
    """Stage a (dropped) replaced through the admin API and stage b (dropped) removed through
    it stay so after a restart scans the folder again; every drop write is audited."""
    config = write_config(tmp_path, [])
    drop = tmp_path / "drop"
    args = ("--config", config, "--drop-dir", str(drop))
    operator = Operator(tmp_path / "data")
    with serve(tmp_path, *args) as served:
        drop_file(drop, "a", tagger("a", "drop"))
        drop_file(drop, "b", tagger("b", "drop"))
        assert wait_for(lambda: {e.name for e in operator.manifests.read().stages} == {"a", "b"}, timeout=15), \
            served.output()
        headers = {**served.admin_headers(), "Content-Type": "application/wasm"}
        assert served.request("PUT", "/_admin/middlewares/a", headers, tagger("a", "admin"))[0] == 201
        assert served.request("DELETE", "/_admin/middlewares/b", served.admin_headers())[0] == 200
        generation = operator.generation()
    with serve(tmp_path, *args) as served:
        status, body = served.get_json("/")
        assert status == 200 and body["ctx"] == {"a": "admin"}, served.output()
        assert operator.generation() == generation
        assert [(e.name, e.origin) for e in operator.manifests.read().stages] == [("a", "admin")]
    drops = [r for r in AuditLog(tmp_path / "data" / "audit.log").read() if r["who"] == "drop-folder"]
    assert sorted(r["action"] for r in drops) == ["drop a.wasm", "drop b.wasm"]
    assert all(r["result"] == "ok" and len(r["sha256"]) == 64 for r in drops)
