"""Joining a fleet: ``[fleet]`` in mwhost.toml, ``--fleet-url``, ``$MWHOST_FLEET_URL``, checked first."""

from __future__ import annotations

import os
import subprocess

import pytest

from mwhost.errors import ConfigError
from mwhost.fleet.urls import redis_refusal
from mwhost.settings import FleetSettings, settings_from_dict
from tests.server.gunicorn_process import free_port, mwhost_command


def test_the_fleet_table_is_read_and_defaults_to_no_fleet():
    """``[fleet] url`` and ``name`` are read; without the table the host is on its own."""
    assert not settings_from_dict({}).fleet.enabled
    fleet = settings_from_dict({"fleet": {"url": "rediss://:s3cret@cache.internal:6380/2", "name": "edge"}}).fleet
    assert fleet == FleetSettings(url="rediss://:s3cret@cache.internal:6380/2", name="edge")
    assert "s3cret" not in fleet.redacted_url()


@pytest.mark.parametrize("table, complaint", [
    ({"url": "http://127.0.0.1:6379"}, "must start with redis://"),
    ({"url": "redis://127.0.0.1:port/0"}, "port"),
    ({"url": "redis://127.0.0.1:6379/zero"}, "database"),
    ({"url": "redis://:6379/0"}, "no host"),
    ({"url": "redis://127.0.0.1:6379/0", "name": "no spaces"}, "name"),
    ({"url": "redis://127.0.0.1:6379/0", "nodes": 3}, "unknown key"),
])
def test_a_bad_fleet_table_is_refused_naming_the_key(table, complaint):
    """Every wrong [fleet] key is a ConfigError that names the table and says what is wrong."""
    with pytest.raises(ConfigError, match=r"\[fleet\]") as raised:
        settings_from_dict({"fleet": table}, source="mwhost.toml")
    assert complaint in str(raised.value)


def _serve(tmp_path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(mwhost_command("serve", "--bind", f"127.0.0.1:{free_port()}",
                                         "--data-dir", str(tmp_path / "data"), *args),
                          capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def test_a_bad_fleet_url_flag_is_one_line_and_exit_2_before_anything_starts(tmp_path):
    """``mwhost serve --fleet-url`` with a URL that is not redis:// exits 2 with one line, and
    no data dir is created."""
    result = _serve(tmp_path, "--fleet-url", "http://127.0.0.1:1/0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "mwhost: error: --fleet-url must start with redis:// or rediss:// (e.g. redis://127.0.0.1:6379/0)"]
    assert not (tmp_path / "data" / "manifest.json").exists()


def test_a_bad_fleet_url_in_the_environment_names_the_variable(tmp_path):
    """``$MWHOST_FLEET_URL`` is checked the same way, and the message names the variable."""
    result = _serve(tmp_path, env={"MWHOST_FLEET_URL": "redis://127.0.0.1:notaport/0"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("mwhost: error: $MWHOST_FLEET_URL has a port")


def test_a_fleet_url_that_redis_py_refuses_is_one_line_and_exit_2(tmp_path):
    """``--fleet-url 'redis://127.0.0.1:1/0?db=x'`` has the right shape but redis-py refuses its
    query: one line naming the flag and exit 2, never a traceback, and no data dir written."""
    result = _serve(tmp_path, "--fleet-url", "redis://127.0.0.1:1/0?db=x")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "mwhost: error: --fleet-url is refused by redis-py: Invalid value for 'db' in connection URL."]
    assert not (tmp_path / "data" / "manifest.json").exists()


@pytest.mark.parametrize("url, complaint", [
    ("redis://127.0.0.1:6379/0?db=x", "is refused by redis-py: Invalid value for 'db' in connection URL."),
    ("redis://127.0.0.1:6379/0?socket_timeout=soon", "is refused by redis-py: Invalid value for 'socket_timeout'"),
    ("redis://127.0.0.1:6379/0?nodes=3", "has an option redis-py does not know: 'nodes'"),
    ("rediss://:pw@127.0.0.1:6380/2?ssl_cert_reqs=none", None),
])
def test_redis_py_reads_the_fleet_url_as_serve_will(url, complaint):
    """The URL check of ``mwhost serve`` asks redis-py itself (no connection opened)."""
    found = redis_refusal(url)
    assert found == complaint if complaint is None else found.startswith(complaint)


def test_a_config_fleet_url_that_redis_py_refuses_is_one_line_and_exit_2(tmp_path):
    """The config's ``[fleet] url`` gets the same redis-py check: one line, exit 2."""
    config = tmp_path / "mwhost.toml"
    config.write_text('[fleet]\nurl = "redis://127.0.0.1:1/0?nodes=3"\n')
    result = _serve(tmp_path, "--config", str(config), env={"MWHOST_FLEET_URL": ""})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "mwhost: error: [fleet] url has an option redis-py does not know: 'nodes'"]
