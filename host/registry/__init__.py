"""Where module versions come from: the content-addressed store and the compile cache."""

from .audit import AuditLog
from .cache import CompileCache
from .examples import EXAMPLES, demo_settings, example_module
from .manifest import KEEP_VERSIONS, Manifest, ManifestError, ManifestStore, StageEntry
from .seed import reseeded
from .store import ModuleStore, read_module_file

__all__ = ["EXAMPLES", "KEEP_VERSIONS", "AuditLog", "CompileCache", "Manifest", "ManifestError", "ManifestStore",
           "ModuleStore", "StageEntry", "demo_settings", "example_module", "read_module_file",
           "reseeded"]
