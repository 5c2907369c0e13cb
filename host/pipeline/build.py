"""Build pipelines: from settings (every module loaded and checked first) or from a manifest."""

from __future__ import annotations

from ..errors import HostError, StageLoadError
from ..registry import CompileCache, Manifest, ModuleStore, read_module_file
from ..settings import StageSettings
from .pipeline import Pipeline
from .stage import Stage, stage_key


def build_pipeline(stages: tuple[StageSettings, ...], cache: CompileCache,
                   generation: int = 0) -> Pipeline:
    """Load every stage or none: the first failure raises ``StageLoadError`` naming it."""
    return _build([(settings, None) for settings in stages], cache, generation, None, None)


def build_from_manifest(manifest: Manifest, store: ModuleStore, cache: CompileCache,
                        previous: Pipeline | None = None) -> Pipeline:
    """The pipeline a manifest describes. Stages identical to one in ``previous`` (same
    module version and settings) are reused as they are, warm instances included."""
    wanted = [(entry, entry.sha256) for entry in manifest.stages]
    return _build(wanted, cache, manifest.generation, store, previous)


def _build(wanted: list[tuple[StageSettings, str | None]], cache: CompileCache, generation: int,
           store: ModuleStore | None, previous: Pipeline | None) -> Pipeline:
    reusable = {stage.key: stage for stage in previous.stages} if previous else {}
    loaded: list[Stage] = []
    try:
        for settings, sha256 in wanted:
            same = reusable.get(stage_key(settings, sha256)) if sha256 else None
            if same is not None:
                loaded.append(same)
                continue
            try:
                wasm = store.get(sha256) if store and sha256 else read_module_file(settings.module)
                loaded.append(Stage.load(settings, wasm, cache, sha256))
            except HostError as err:
                where = settings.module or f"version {sha256[:12]}"
                raise StageLoadError(f"stage {settings.name!r} ({where}): {err}") from err
    except BaseException:
        for stage in loaded:
            if stage.key not in reusable:
                stage.close()
        raise
    return Pipeline(tuple(loaded), generation)
