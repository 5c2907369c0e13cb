"""Where module versions come from: the content-addressed store and the compile cache."""

from .cache import CompileCache
from .store import ModuleStore, read_module_file

__all__ = ["CompileCache", "ModuleStore", "read_module_file"]
