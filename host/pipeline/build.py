"""Build a pipeline from settings: every module loaded, checked and initialised first."""

from __future__ import annotations

from ..errors import HostError, StageLoadError
from ..registry import CompileCache, read_module_file
from ..settings import StageSettings
from .pipeline import Pipeline
from .stage import Stage


def build_pipeline(stages: tuple[StageSettings, ...], cache: CompileCache,
                   generation: int = 0) -> Pipeline:
    """Load every stage or none: the first failure raises ``StageLoadError`` naming it."""
    loaded: list[Stage] = []
    try:
        for settings in stages:
            try:
                loaded.append(Stage.load(settings, read_module_file(settings.module), cache))
            except HostError as err:
                raise StageLoadError(f"stage {settings.name!r} ({settings.module}): {err}") from err
    except BaseException:
        for stage in loaded:
            stage.close()
        raise
    return Pipeline(tuple(loaded), generation)
