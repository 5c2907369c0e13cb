"""Shared fixtures: the golden vectors, reference guests and built example modules."""

from __future__ import annotations

import json
import logging
import pathlib

import pytest

from mwhost import testing
from mwhost.registry import EXAMPLES

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT / "abi" / "vectors"


def vector_index() -> list[dict]:
    return json.loads((VECTORS / "index.json").read_text())


def vector_bytes(name: str) -> bytes:
    return (VECTORS / f"{name}.msgpack").read_bytes()


def example_path(name: str) -> pathlib.Path:
    """A built example guest; missing means scripts/setup.sh was not run (a failure, not a skip)."""
    path = EXAMPLES / f"{name}.wasm"
    assert path.exists(), f"{path} is missing: run scripts/setup.sh (the README's test command does)"
    return path


@pytest.fixture
def reference_guest():
    return testing.reference_guest


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> pathlib.Path:
    """One compile cache for the session: Go modules take seconds to compile, once."""
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture
def example_client(tmp_path, shared_cache):
    """``example_client(name, config, app=None, module=None, **options)``: a falcon TestClient
    for a one-stage pipeline of example ``name`` (or ``module``), compiled once per session."""
    def make(name: str, config: dict | None = None, app=None, module=None, **options):
        stage = (name, module or example_path(name), {"config": config or {}, **options})
        folder = tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}"
        data_dir = folder / "data"
        data_dir.mkdir(parents=True)
        (data_dir / "cache").symlink_to(shared_cache, target_is_directory=True)
        return testing.client(testing.pipeline_settings(folder, stage, data_dir=data_dir), app)
    return make


@pytest.fixture
def root_logging_restored():
    """For tests that run ``mwhost``'s ``main`` in-process: it configures root logging as the
    command does; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
