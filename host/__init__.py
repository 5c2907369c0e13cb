"""mwhost: HTTP middleware as WebAssembly modules in a Falcon app under gunicorn.

The public API, re-exported from the layers (see ARCHITECTURE in docs/architecture.md).
"""

__version__ = "0.1.0"

from .errors import (
    AbiDecodeError,
    AbiError,
    ConfigError,
    GuestError,
    GuestLoadError,
    GuestTimeout,
    GuestTrap,
    HostError,
    ModuleRefused,
    RegistryError,
    StageLoadError,
)
from .settings import Settings, StageSettings, load_settings
from .web import WasmMiddleware, create_app

__all__ = [
    "AbiDecodeError",
    "AbiError",
    "ConfigError",
    "GuestError",
    "GuestLoadError",
    "GuestTimeout",
    "GuestTrap",
    "HostError",
    "ModuleRefused",
    "RegistryError",
    "Settings",
    "StageLoadError",
    "StageSettings",
    "WasmMiddleware",
    "create_app",
    "load_settings",
]
