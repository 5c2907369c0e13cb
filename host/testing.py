"""Helpers for testing middleware modules and apps that embed the host (like falcon.testing).

    from mwhost import testing
    settings = testing.pipeline_settings(tmp_path, ("deny", testing.wat_guest(RESPOND_WAT), {}))
    client = testing.client(settings)
    assert client.simulate_get("/").status_code == 403
"""

from __future__ import annotations

import pathlib
from typing import Any, Iterable, Mapping

import falcon
import falcon.testing

from .runtime import wat_to_wasm
from .settings import Settings, StageSettings
from .web import create_app

#: ABI v1 reference guests shipped with the repo (abi/wat), when running from a checkout
REFERENCE_WAT = pathlib.Path(__file__).resolve().parent.parent / "abi" / "wat"


def wat_guest(source: str) -> bytes:
    """A guest module from WebAssembly text: inline WAT, no toolchain needed."""
    return wat_to_wasm(source)


def reference_guest(name: str) -> bytes:
    """One of abi/wat's reference guests (noop, respond, set_header, echo, trap, loop) as wasm."""
    return wat_guest((REFERENCE_WAT / f"{name}.wat").read_text())


StageSpec = tuple  # (name, wasm bytes or a path, {settings...})


def pipeline_settings(folder: pathlib.Path, *stages: StageSpec,
                      data_dir: pathlib.Path | None = None) -> Settings:
    """Settings for a pipeline of ``(name, module, options)`` stages, modules written to ``folder``.

    ``module`` is wasm bytes or a path; ``options`` holds StageSettings fields
    (``config``, ``on_error``, ``timeout_ms``, ``max_memory_mb``). ``data_dir`` (default
    ``folder/data``) holds the compile cache: share one across tests to compile each module once.
    """
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    built = []
    for name, module, options in stages:
        if isinstance(module, (bytes, bytearray)):
            path = folder / f"{name}.wasm"
            path.write_bytes(module)
        else:
            path = pathlib.Path(module)
        built.append(StageSettings(name=name, module=path, **dict(options)))
    return Settings(middleware=tuple(built), data_dir=data_dir or folder / "data", source="<testing>")


def client(settings: Settings, app: falcon.App | None = None) -> falcon.testing.TestClient:
    """A falcon TestClient for the host app built from ``settings`` (or ``app`` with the host added)."""
    return falcon.testing.TestClient(create_app(settings, app))


def environ(path: str = "/", method: str = "GET", query: str = "",
            headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
            **kwargs: Any) -> dict:
    """A WSGI environ as a server would build it (falcon.testing.create_environ)."""
    return falcon.testing.create_environ(path=path, method=method, query_string=query,
                                         headers=headers, **kwargs)
