"""Issue 14 in-process: what a guest logged reaches the refusal, a removed stage comes back at
its place, the CLI and banner say what happened, probes answer without a token, and serve's
settings are checked and absolute."""

from __future__ import annotations

import argparse
import pathlib

import pytest

from mwhost.admin import announce, prepare_admin
from mwhost.cli import _serve_settings, main
from mwhost.client import format_rollback
from mwhost.errors import HostError
from mwhost.server import check_bind, control_socket_options
from mwhost.runtime import Runtime
from mwhost.settings import Settings, load_settings
from mwhost.watch import LivePipeline
from tests.admin.support import WASM, admin_client, bearer, tagger
from tests.wat import CONTINUE_AT_16, guest

pytestmark = pytest.mark.usefixtures("root_logging_restored")

LOG_IMPORT = '(import "mw" "log" (func $log (param i32 i32 i32)))'
REFUSAL = 'unknown config key "servedby" (expected: served_by)'


def _logging_guest(words: str, *, init: bool) -> bytes:
    """A guest that logs ``words`` through mw.log, then refuses its config (``init``) or traps
    on every request."""
    data = CONTINUE_AT_16 + ' (data (i32.const 1024) "' + words.replace('"', '\\"') + '")'
    logs = f"(call $log (i32.const 3) (i32.const 1024) (i32.const {len(words)}))"
    if init:
        return guest(imports=LOG_IMPORT, data=data, init=f"{logs} (i32.const 1)")
    return guest(f"{logs} (unreachable)", imports=LOG_IMPORT, data=data)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    return admin_client(tmp_path_factory.mktemp("first-hour"), ("first", tagger("first", "1"), {}),
                        ("second", tagger("second", "1"), {}), ("third", tagger("third", "1"), {}))


def _upload(client, name: str, wasm: bytes):
    return client.simulate_put(f"/_admin/middlewares/{name}", body=wasm,
                               headers={**bearer(), "Content-Type": WASM})


def test_an_init_refusal_carries_what_the_guest_logged(client):
    """A guest that logs why it refuses its config has that line in the 422 problem's detail."""
    response = _upload(client, "picky", _logging_guest(REFUSAL, init=True))
    assert response.status_code == 422 and response.json["check"] == "init"
    assert f"the guest logged: log: {REFUSAL}" in response.json["detail"]


def test_a_failed_probe_carries_what_the_guest_logged(client):
    """A guest that logs then traps on a probe request has its line in the detail and in guest_log."""
    response = _upload(client, "crashy", _logging_guest("about to fail", init=False))
    assert response.status_code == 422 and response.json["check"] == "probe"
    assert "the guest logged: log: about to fail" in response.json["detail"]
    assert response.json["guest_log"] == ["log: about to fail"]


def test_validate_prints_what_the_guest_logged(tmp_path, capsys):
    """``mwhost validate``'s error line carries the guest's own reason for refusing its config."""
    module = tmp_path / "picky.wasm"
    module.write_bytes(_logging_guest(REFUSAL, init=True))
    assert main(["validate", str(module), "--config", '{"servedby": "x"}']) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("mwhost: error: ") and f"the guest logged: log: {REFUSAL}" in last


def test_a_removed_stage_comes_back_at_its_place(client):
    """remove then rollback puts the stage back where it was, and the CLI says it came back."""
    removed = client.simulate_delete("/_admin/middlewares/second", headers=bearer())
    assert removed.status_code == 200
    back = client.simulate_post("/_admin/middlewares/second/rollback", headers=bearer())
    assert back.status_code == 200, back.json
    order = [stage["name"] for stage in client.simulate_get("/_admin/pipeline", headers=bearer()).json["stages"]]
    assert order.index("second") == order.index("first") + 1 == order.index("third") - 1
    assert format_rollback(back.json).startswith(f"second: back in the pipeline at {back.json['sha256'][:12]}")
    assert " - " not in format_rollback(back.json)


@pytest.mark.parametrize("path, body", [("/_admin/health/live", {"status": "ok"}),
                                        ("/_admin/health/ready", None)])
def test_probes_answer_without_a_token_with_a_minimal_body(client, path, body):
    """Liveness and readiness answer an orchestrator without a token, and name no stage or version."""
    response = client.simulate_get(path)
    assert response.status_code == 200
    if body is not None:
        assert response.json == body
    else:
        assert set(response.json) == {"ready", "generation", "manifest_generation"}
    assert "first" not in response.text


def test_the_banner_says_a_secret_was_made_then_gives_the_token(tmp_path):
    """The banner for a generated secret reads as two sentences and ends with the export line."""
    startup = prepare_admin(Settings(data_dir=tmp_path), environ={})
    lines = announce(startup, "127.0.0.1:8000").splitlines()
    assert lines[0].startswith("mwhost: no admin secret is configured") and lines[0].endswith(
        "so this run made a random one.")
    assert lines[1].startswith("mwhost: admin token for this run (scope mwhost:admin")
    assert f"export MWHOST_URL=http://127.0.0.1:8000 MWHOST_TOKEN={startup.token}" in lines[3]


def test_each_data_dir_has_its_own_gunicorn_control_socket(tmp_path):
    """Two hosts with two data dirs never share gunicorn's control socket."""
    one = control_socket_options(Settings(data_dir=tmp_path / "one"))
    two = control_socket_options(Settings(data_dir=tmp_path / "two"))
    assert one["control_socket"] == str(tmp_path / "one" / "gunicorn.ctl") != two["control_socket"]


def test_a_data_dir_too_deep_for_a_socket_turns_the_control_socket_off(tmp_path):
    """A path a unix socket cannot have turns the control socket off rather than failing at start."""
    assert control_socket_options(Settings(data_dir=tmp_path / ("d" * 120))) == {"control_socket_disable": True}


@pytest.mark.parametrize("bind", ["127.0.0.1:8000", "0.0.0.0:80", "[::1]:8000", "localhost:65535"])
def test_explicit_binds_are_accepted(bind):
    """HOST:PORT with any explicit host, IPv6 in brackets, parses."""
    assert check_bind(bind)[1] == int(bind.rsplit(":", 1)[1])


@pytest.mark.parametrize("bind", [":8000", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "[nope]:80", ""])
def test_binds_that_are_not_host_port_are_refused(bind):
    """A bind without a host, without a port, or with a port outside 1..65535 is a HostError."""
    with pytest.raises(HostError):
        check_bind(bind)


def test_serve_uses_absolute_folders_with_a_relative_config(tmp_path, monkeypatch):
    """With ``--config`` and relative paths, the data and drop folders (and so every log line) are absolute."""
    monkeypatch.chdir(tmp_path)
    pathlib.Path("mwhost.toml").write_text('[server]\ndata_dir = "data"\ndrop_dir = "drop"\n')
    args = argparse.Namespace(config="mwhost.toml", bind=None, workers=None, worker_class=None, threads=None,
                              log_format=None, data_dir=None, drop_dir=None)
    settings = _serve_settings(args)
    assert settings.data_dir == tmp_path / "data" and settings.drop_folder == tmp_path / "drop"
    args.data_dir, args.drop_dir = "other", "in"
    settings = _serve_settings(args)
    assert settings.data_dir == tmp_path / "other" and settings.drop_folder == tmp_path / "in"


def test_a_missing_module_names_the_stage_and_the_config(tmp_path):
    """A config whose module file is missing is refused with the config file and the stage named."""
    config = tmp_path / "mwhost.toml"
    config.write_text('[[middleware]]\nname = "auth"\nmodule = "auth.wasm"\n')
    with pytest.raises(HostError) as refused:
        LivePipeline.from_settings(load_settings(config), Runtime())
    message = str(refused.value)
    assert str(config) in message and "'auth'" in message and "auth.wasm" in message
