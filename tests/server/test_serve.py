"""``mwhost serve`` as a real gunicorn subprocess: the demo pipeline, refusals, and guest failures."""

from __future__ import annotations

import json

import pytest

from mwhost import testing
from tests.conftest import example_path
from tests.server.gunicorn_process import run_to_exit, serve
from tests.wat import MARKER, const_guest, explodes, guest, marked_guest

pytestmark = pytest.mark.slow


def write_config(tmp_path, stages: list[tuple[str, bytes, str]]) -> str:
    """An mwhost.toml with one [[middleware]] table per (name, wasm, extra TOML lines)."""
    lines = []
    for name, wasm, extra in stages:
        (tmp_path / f"{name}.wasm").write_bytes(wasm)
        lines += ["[[middleware]]", f'name = "{name}"', f'module = "{name}.wasm"', extra, ""]
    path = tmp_path / "mwhost.toml"
    path.write_text("\n".join(lines))
    return str(path)


def test_the_embedded_default_serves_the_demo_pipeline_with_two_workers(tmp_path):
    for name in ("add_header", "block_paths", "security_headers"):
        example_path(name)
    with serve(tmp_path, workers=2) as served:
        assert len(served.worker_pids()) == 2
        for _ in range(10):
            status, headers, body = served.request("GET", "/hello?x=1", {"User-Agent": "curl/8"})
            assert status == 200
            echoed = json.loads(body)
            assert echoed["path"] == "/hello" and echoed["query"] == "x=1"
            assert ["x-mwhost-demo", "1"] in echoed["headers"]        # add_header, request side
            assert headers["x-mwhost"] == "wasm"                      # add_header, response side
            assert headers["x-content-type-options"] == "nosniff"     # security_headers
        status, headers, _ = served.request("GET", "/admin/users")
        assert status == 403                                          # block_paths
        assert headers["x-content-type-options"] == "nosniff"


def test_a_module_missing_an_export_stops_serve_with_a_message(tmp_path):
    config = write_config(tmp_path, [("broken", guest(exports=("mw_abi_version", "mw_alloc")), "")])
    result = run_to_exit(tmp_path, "--config", config)
    assert result.returncode != 0
    assert "stage 'broken'" in result.stderr and "'mw_on_request'" in result.stderr


def test_a_foreign_import_stops_serve_with_the_import_named(tmp_path):
    wasm = guest(imports='(import "env" "system" (func (param i32) (result i32)))')
    result = run_to_exit(tmp_path, "--config", write_config(tmp_path, [("sneaky", wasm, "")]))
    assert result.returncode != 0 and "'env.system'" in result.stderr


def test_a_wrong_abi_version_stops_serve(tmp_path):
    result = run_to_exit(tmp_path, "--config", write_config(tmp_path, [("v2", guest(version=2), "")]))
    assert result.returncode != 0 and "mw_abi_version returned 2" in result.stderr


def test_an_invalid_config_stops_serve_naming_the_key(tmp_path):
    config = write_config(tmp_path, [("a", guest(), "timeout_ms = 0")])
    result = run_to_exit(tmp_path, "--config", config)
    assert result.returncode != 0 and "key 'timeout_ms'" in result.stderr and "mwhost.toml" in result.stderr


def test_garbage_from_a_fail_closed_guest_fails_each_request_and_the_workers_live(tmp_path):
    config = write_config(tmp_path, [("closed", explodes(), 'on_error = "fail_closed"')])
    with serve(tmp_path, "--config", config) as served:
        workers = served.worker_pids()
        for _ in range(6):
            status, headers, body = served.request("GET", MARKER)
            assert status == 503
            assert headers["content-type"] == "application/problem+json"
            assert json.loads(body)["stage"] == "closed"
        assert served.worker_pids() == workers


def test_garbage_from_a_fail_open_guest_skips_it_and_later_stages_run(tmp_path):
    config = write_config(tmp_path, [
        ("skipped", explodes(), 'on_error = "fail_open"'),
        ("tagger", const_guest({"action": "continue", "ctx": {"after": "yes"}}), ""),
    ])
    with serve(tmp_path, "--config", config) as served:
        workers = served.worker_pids()
        for _ in range(6):
            status, echoed = served.get_json(MARKER)
            assert status == 200 and echoed["ctx"] == {"after": "yes"}
        assert served.worker_pids() == workers


def test_a_trapping_guest_is_replaced_and_the_workers_live(tmp_path):
    config = write_config(tmp_path, [("trap", marked_guest("(unreachable)"), 'on_error = "fail_open"')])
    with serve(tmp_path, "--config", config) as served:
        workers = served.worker_pids()
        for _ in range(6):
            status, _ = served.get_json(MARKER)
            assert status == 200
        assert served.worker_pids() == workers
        assert "stage trap failed in the request phase (trap" in served.output()


def test_every_go_example_serves_under_gunicorn(tmp_path):
    """request_id, cors, rate_limit and add_header_go (WASI reactors) in one pipeline, 2 workers."""
    lines = []
    for name, config in [
        ("request_id", ""),
        ("cors", '[middleware.config]\nallowed_origins = ["https://app.example"]\nmax_age = 60'),
        ("rate_limit", "[middleware.config]\nrate_per_s = 0.001\nburst = 1000\nkey_header = \"x-client\""),
        ("add_header_go", '[middleware.config]\nresponse_headers = { "x-go" = "yes" }'),
    ]:
        lines += ["[[middleware]]", f'name = "{name}"', f'module = "{example_path(name)}"', config, ""]
    config_path = tmp_path / "mwhost.toml"
    config_path.write_text("\n".join(lines))
    with serve(tmp_path, "--config", str(config_path)) as served:
        status, headers, body = served.request("GET", "/x", {"Origin": "https://app.example", "X-Client": "a"})
        assert status == 200
        assert len(headers["x-request-id"]) == 32
        assert json.loads(body)["ctx"]["request_id"] == headers["x-request-id"]
        assert headers["access-control-allow-origin"] == "https://app.example"
        assert headers["x-go"] == "yes"
        status, headers, _ = served.request("OPTIONS", "/x", {
            "Origin": "https://app.example", "Access-Control-Request-Method": "GET", "X-Client": "a"})
        assert status == 204 and headers["access-control-max-age"] == "60"
        # rate_limit: one bucket per worker instance, so a burst of 1000 over 2 workers is never hit
        statuses = {served.request("GET", "/", {"X-Client": "b"})[0] for _ in range(20)}
        assert statuses == {200}


def test_serve_refuses_a_thread_count_out_of_range_naming_the_flag(tmp_path):
    """``--threads`` outside 1..64 stops serve with a message naming the flag."""
    result = run_to_exit(tmp_path, "--threads", "0")
    assert result.returncode == 2 and "--threads must be greater than 0" in result.stderr
    result = run_to_exit(tmp_path, "--threads", "100")
    assert result.returncode == 2 and "--threads must be at most 64" in result.stderr


def _appears(path, timeout_s: float = 30.0) -> bool:
    """Wait (bounded) until ``path`` exists: gunicorn opens its control socket once the master runs."""
    import time

    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_two_hosts_on_one_machine_each_have_their_own_control_socket(tmp_path):
    """Two ``mwhost serve`` at once serve side by side, each with gunicorn's control socket in its
    own data dir, and name their drop folder by its absolute path."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with serve(tmp_path / "a", workers=1) as one, serve(tmp_path / "b", workers=1) as two:
        for served, folder in ((one, tmp_path / "a"), (two, tmp_path / "b")):
            assert _appears(folder / "data" / "gunicorn.ctl")
            assert served.request("GET", "/hello")[0] == 200
            assert f"watching the drop folder {folder / 'data' / 'drop'} " in served.log.read_text()
