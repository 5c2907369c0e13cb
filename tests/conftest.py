"""Shared fixtures: the golden vectors, reference guests and built example modules."""

from __future__ import annotations

import json
import pathlib

import pytest

from host import testing
from host.registry import EXAMPLES

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
