"""The embedded default: the example pipeline served from a local data folder.

``mwhost serve`` with no ``--config`` (and ``create_app()`` with no config) uses it. The
example modules ship inside the package (``host/examples/``, built by ``scripts/setup.sh``)
and are copied into the data folder's content-addressed store on first use.
"""

from __future__ import annotations

import pathlib

from ..errors import ConfigError
from ..settings import Settings, StageSettings
from .store import ModuleStore

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

# (stage name, example module, config, required); in pipeline order. security_headers is
# first so that its response phase also covers answers that later stages give themselves
# (block_paths' 403): the response phase runs only for stages before a short-circuit.
DEMO_PIPELINE = (
    ("security_headers", "security_headers", {}, True),
    ("request_id", "request_id", {}, False),
    ("block_paths", "block_paths", {"prefixes": ["/admin", "/internal"]}, True),
    ("add_header", "add_header", {
        "request_headers": {"x-mwhost-demo": "1"},
        "response_headers": {"x-mwhost": "wasm"},
    }, True),
)


def example_module(name: str) -> pathlib.Path:
    """The packaged build of example ``name``; a ConfigError says how to build it if missing."""
    path = EXAMPLES / f"{name}.wasm"
    if not path.exists():
        raise ConfigError(f"the example module {path} is missing: run scripts/setup.sh to build the guests")
    return path


def demo_settings(data_dir: pathlib.Path) -> Settings:
    """Settings for the demo pipeline, its modules copied into ``data_dir``'s module store.

    Optional stages (the Go one) are left out when their module was not built.
    """
    store = ModuleStore(data_dir / "modules")
    stages = []
    for name, module, config, required in DEMO_PIPELINE:
        if not required and not (EXAMPLES / f"{module}.wasm").exists():
            continue
        sha256 = store.put(example_module(module).read_bytes())
        stages.append(StageSettings(name=name, module=store.path(sha256), config=config))
    return Settings(middleware=tuple(stages), data_dir=data_dir, source="<embedded default>")
