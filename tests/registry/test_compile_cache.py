"""The compile cache: a module compiled once per machine, loaded once per process while in use."""

from __future__ import annotations

import gc

import pytest

from mwhost import testing
from mwhost.registry import CompileCache, example_module
from mwhost.runtime import GuestModule, default_runtime

NOOP = testing.reference_guest("noop")


@pytest.fixture
def cache(tmp_path):
    return CompileCache(default_runtime(), tmp_path / "cache")


def artifacts(cache: CompileCache) -> list:
    return sorted(cache.folder.glob("*.cwasm"))


def test_a_module_in_use_is_loaded_once(cache):
    """Stages running one module share its compiled code (one copy in memory), each with its
    own config and instances; the artifact is written once."""
    first = cache.load(NOOP)
    assert cache.load(NOOP) is first
    assert len(artifacts(cache)) == 1


def test_each_engine_flavour_has_its_own_module(cache):
    plain, metered = cache.load(NOOP), cache.load(NOOP, fuel=True)
    assert plain is not metered and (plain.fuel, metered.fuel) == (False, True)
    assert cache.load(NOOP, fuel=True) is metered
    assert len(artifacts(cache)) == 2


def test_a_module_no_one_holds_is_loaded_again_from_its_artifact(cache, monkeypatch):
    cache.load(NOOP)  # held by no one once the call returns
    gc.collect()
    assert not cache._live

    def no_compile(*args, **kwargs):
        raise AssertionError("compiled again instead of loading the artifact")

    monkeypatch.setattr(GuestModule, "from_bytes", no_compile)
    again = cache.load(NOOP)
    assert cache.load(NOOP) is again and len(artifacts(cache)) == 1


def test_a_damaged_artifact_is_compiled_again(cache, caplog):
    module = cache.load(NOOP)
    artifact = artifacts(cache)[0]
    sha256 = module.sha256
    del module
    gc.collect()
    artifact.write_bytes(b"not a compiled module")
    reloaded = cache.load(NOOP)
    assert reloaded.sha256 == sha256 and "recompiling" in caplog.text


def test_stages_of_one_module_share_it_and_keep_their_own_configs(tmp_path):
    """Two add_header stages of the same Rust module: one compiled module, each stage's own
    instances answering with its own config's headers."""
    wasm = example_module("add_header").read_bytes()
    stages = [(f"add{i}", wasm, {"config": {"request_headers": {f"x-req-{i}": str(i)},
                                            "response_headers": {f"x-resp-{i}": str(i)}}})
              for i in range(2)]
    client = testing.client(testing.pipeline_settings(tmp_path, *stages))
    middleware = next(m for m in client.app._unprepared_middleware if hasattr(m, "holder"))
    first, second = middleware.holder.current.stages
    assert first.module is second.module
    result = client.simulate_get("/")
    assert result.headers["x-resp-0"] == "0" and result.headers["x-resp-1"] == "1"
    assert ["x-req-0", "0"] in result.json["headers"] and ["x-req-1", "1"] in result.json["headers"]
