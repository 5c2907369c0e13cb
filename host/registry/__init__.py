"""Where module versions come from: the content-addressed store and the compile cache."""

from .cache import CompileCache
from .examples import EXAMPLES, demo_settings, example_module
from .store import ModuleStore, read_module_file

__all__ = ["EXAMPLES", "CompileCache", "ModuleStore", "demo_settings", "example_module", "read_module_file"]
