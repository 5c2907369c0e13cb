"""mwhost.toml: valid files load; every invalid one names the file, the table and the key."""

from __future__ import annotations

import pathlib

import pytest

from mwhost import ConfigError, load_settings


def write(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    path = tmp_path / "mwhost.toml"
    path.write_text(text)
    return path


def test_a_full_config_loads_with_paths_relative_to_the_file(tmp_path):
    path = write(tmp_path, """
[server]
bind = "127.0.0.1:9000"
workers = 3
data_dir = "state"

[[middleware]]
name = "auth"
module = "guests/auth.wasm"
on_error = "fail_open"
timeout_ms = 25
max_memory_mb = 16
[middleware.config]
secret = "s3"
nested = { a = [1, 2] }

[[middleware]]
name = "headers"
module = "/abs/headers.wasm"
""")
    settings = load_settings(path)
    assert settings.bind == "127.0.0.1:9000" and settings.workers == 3
    assert settings.data_dir == tmp_path / "state"
    auth, headers = settings.middleware
    assert auth.module == tmp_path / "guests" / "auth.wasm"
    assert auth.fail_open and auth.timeout_ms == 25 and auth.max_memory_mb == 16
    assert auth.config == {"secret": "s3", "nested": {"a": [1, 2]}}
    assert headers.module == pathlib.Path("/abs/headers.wasm")
    assert headers.on_error == "fail_closed" and headers.timeout_ms == 100 and headers.config == {}


@pytest.mark.parametrize("body, message", [
    ('[[middleware]]\nmodule = "a.wasm"', r"\[\[middleware\]\] #1: missing required key 'name'"),
    ('[[middleware]]\nname = "a"', r"\[\[middleware\]\] #1 \('a'\): missing required key 'module'"),
    ('[[middleware]]\nname = "a"\nmodule = "a.wasm"\ntimeout_ms = -5',
     r"#1 \('a'\): key 'timeout_ms' must be greater than 0, got -5"),
    ('[[middleware]]\nname = "a"\nmodule = "a.wasm"\ntimeout_ms = 45000',
     r"key 'timeout_ms' must be at most 10000 \(a call must end well within the 30 s worker timeout\), got 45000"),
    ('[[middleware]]\nname = "a"\nmodule = "a.wasm"\nfuel = 1000000000000000000000000000000',
     r"key 'fuel' must be at most"),
    ('[[middleware]]\nname = "a"\nmodule = "a.wasm"\ntimeout_ms = "fast"', r"key 'timeout_ms' must be int, got str"),
    ('[[middleware]]\nname = "a"\nmodule = "a.wasm"\ntimeout_ms = true', r"key 'timeout_ms' must be int, got bool"),
    ('[[middleware]]\nname = "a"\nmodule = "a.wasm"\non_error = "explode"',
     r"key 'on_error' must be one of fail_closed, fail_open"),
    ('[[middleware]]\nname = "a"\nmodule = "a.wasm"\ntimeout = 5', r"#1 \('a'\): unknown key 'timeout'"),
    ('[[middleware]]\nname = "a"\nmodule = "a.wasm"\nconfig = "x"', r"key 'config' must be dict"),
    ('[[middleware]]\nname = "a b"\nmodule = "a.wasm"', r"key 'name' must be letters"),
    ('[[middleware]]\nname = "a"\nmodule = "a.wasm"\n[[middleware]]\nname = "a"\nmodule = "b.wasm"',
     r"two \[\[middleware\]\] tables are named 'a'"),
    ('[server]\nworkers = 0', r"\[server\]: key 'workers' must be greater than 0"),
    ('[server]\nport = 1', r"\[server\]: unknown key 'port'"),
    ('middlewares = []', r"unknown key 'middlewares'"),
    ('middleware = "x"', r"'middleware' must be an array of tables"),
    ('[[middleware]\nname=', r"not valid TOML"),
])
def test_invalid_configs_name_file_table_and_key(tmp_path, body, message):
    path = write(tmp_path, body)
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(path)
    assert str(caught.value).startswith(str(path))


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_settings(tmp_path / "absent.toml")


def test_the_configuration_docs_are_generated_from_the_declaration():
    """docs/configuration.md matches scripts/gen_config_docs.py (run it after changing a key)."""
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts" / "gen_config_docs.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (ROOT / "docs" / "configuration.md").read_text() == gen.render()


def test_a_config_table_nested_too_deep_is_refused_naming_the_key(tmp_path):
    """The config shape check (depth, size, msgpack types) applies to the config file too."""
    nested = "[middleware.config]\n" + "a = " + "[" * 40 + "]" * 40
    path = write(tmp_path, '[[middleware]]\nname = "a"\nmodule = "a.wasm"\n' + nested)
    with pytest.raises(ConfigError, match="key 'config' the table is nested deeper than 32 levels"):
        load_settings(path)
