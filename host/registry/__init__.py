"""Where module versions come from: the content-addressed store and the compile cache."""

from .cache import CompileCache
from .examples import EXAMPLES, demo_settings, example_module
from .manifest import KEEP_VERSIONS, Manifest, ManifestError, ManifestStore, StageEntry
from .seed import config_entries, reseeded
from .store import ModuleStore, read_module_file

__all__ = ["EXAMPLES", "KEEP_VERSIONS", "CompileCache", "Manifest", "ManifestError", "ManifestStore",
           "ModuleStore", "StageEntry", "demo_settings", "example_module", "read_module_file",
           "config_entries", "reseeded"]
