"""The architecture holds: imports point one way, and only the runtime layer imports wasmtime."""

from __future__ import annotations

import ast
import pathlib

import pytest

import mwhost

PACKAGE = pathlib.Path(mwhost.__file__).resolve().parent
# a layer may import the layers listed before it (and the leaves), never one after it
ORDER = ["abi", "runtime", "registry", "fleet", "pipeline", "watch", "admin", "web"]
LEAVES = {"errors", "settings", "metrics", "tracing", "logs"}
# testing.py ships falcon.testing-based helpers for users, like falcon's own testing package
FRAMEWORK_OWNERS = {"wasmtime": {"runtime"}, "falcon": {"web", "admin", "testing"}, "redis": {"fleet"}}


def _imports(path: pathlib.Path) -> set[str]:
    """Absolute module names imported by ``path`` (relative imports resolved inside host)."""
    tree = ast.parse(path.read_text())
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ((node.module,) if node.module else ()))
            else:
                module = node.module or ""
            names.add(module)
    return names


def _layer(path: pathlib.Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


LAYER_FILES = [p for p in PACKAGE.rglob("*.py") if _layer(p) in ORDER]


@pytest.mark.parametrize("path", LAYER_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layers_import_only_downwards(path):
    layer = _layer(path)
    allowed = set(ORDER[: ORDER.index(layer) + 1]) | LEAVES
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] in ("host", "mwhost") and len(parts) > 1:
            assert parts[1] in allowed, f"{path.name} ({layer}) imports {name}"


@pytest.mark.parametrize("path", list(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_frameworks_are_imported_only_by_their_layers(path):
    for name in _imports(path):
        owners = FRAMEWORK_OWNERS.get(name.split(".")[0])
        if owners is not None:
            assert _layer(path) in owners, f"{path.relative_to(PACKAGE)} imports {name}"


def test_leaves_import_no_layer():
    """errors, settings and metrics are leaves: a layer may import them, they import no layer."""
    for leaf in ("errors", "settings", "metrics"):
        for name in _imports(PACKAGE / f"{leaf}.py"):
            parts = name.split(".")
            if parts[0] in ("host", "mwhost") and len(parts) > 1:
                assert parts[1] in LEAVES, f"{leaf} imports {name}"
