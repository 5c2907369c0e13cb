"""The wasm runtime: engine, linker, modules, instances and the fast call path.

The only layer that imports wasmtime.
"""

from .engine import TICK_MS, Runtime, default_runtime
from .instance import GuestInstance
from .limits import Limits
from .module import GuestModule, check_abi, wat_to_wasm

__all__ = ["GuestInstance", "GuestModule", "Limits", "Runtime", "TICK_MS", "check_abi", "default_runtime", "wat_to_wasm"]
