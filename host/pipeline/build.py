"""Build pipelines: from settings (every module loaded and checked first) or from a manifest."""

from __future__ import annotations

from ..errors import HostError, StageLoadError
from ..registry import CompileCache, Manifest, ModuleStore, StageEntry, read_module_file
from ..registry.rollout import Rollout
from ..runtime.module import ABI_HTTP_WASM
from ..settings import StageSettings
from .pipeline import Pipeline
from .httpwasm_stage import HttpWasmStage
from .rollout_stage import CanaryStage, count_key
from .shadow import ShadowStage
from .stage import Stage, stage_key


class _Fetched:
    """A compile cache stand-in handing Stage.load the module already loaded."""

    def __init__(self, module) -> None:
        self.module = module

    def load(self, wasm: bytes, fuel: bool = False, sha256: str | None = None):
        return self.module


def load_stage(settings: StageSettings, wasm: bytes, cache: CompileCache, sha256: str | None = None) -> Stage:
    """A Stage for an ABI v1 module or an HttpWasmStage for an http-wasm one (the module is
    compiled or fetched once either way)."""
    module = cache.load(wasm, fuel=settings.fuel > 0, sha256=sha256)
    if module.abi == ABI_HTTP_WASM:
        return HttpWasmStage.from_module(settings, module)
    return Stage.load(settings, wasm, _Fetched(module), sha256)


def build_pipeline(stages: tuple[StageSettings, ...], cache: CompileCache,
                   generation: int = 0) -> Pipeline:
    """Load every stage or none: the first failure raises ``StageLoadError`` naming it."""
    return _Builder(cache, None, None).build([(settings, None, None) for settings in stages], generation)


def build_from_manifest(manifest: Manifest, store: ModuleStore, cache: CompileCache,
                        previous: Pipeline | None = None, *, force_header: bool = True) -> Pipeline:
    """The pipeline a manifest describes, a stage under an active canary rollout as its
    baseline and candidate side by side (a ``CanaryStage``), one under a running shadow as a
    ``ShadowStage`` (the baseline serves, the candidate sees copies). Stages identical to one in ``previous`` (same module
    version and settings) are reused as they are, warm instances included."""
    wanted = [(entry, entry.sha256, manifest.active_rollout(entry.name)) for entry in manifest.stages]
    return _Builder(cache, store, previous, force_header).build(wanted, manifest.generation)


class _Builder:
    def __init__(self, cache: CompileCache, store: ModuleStore | None, previous: Pipeline | None,
                 force_header: bool = True) -> None:
        self.cache = cache
        self.store = store
        self.force_header = force_header
        self.reusable: dict[tuple, Stage] = {}
        for stage in previous.stages if previous else ():
            pair = isinstance(stage, (CanaryStage, ShadowStage))
            for part in (stage.baseline, stage.candidate) if pair else (stage,):
                if isinstance(part, Stage):  # NOTE: a stand-in (an unloadable pipeline) is never reused
                    self.reusable[part.key] = part
        self.loaded: list[Stage] = []

    def build(self, wanted: list[tuple[StageSettings, str | None, Rollout | None]], generation: int) -> Pipeline:
        try:
            stages = tuple(self._stage(settings, sha256, rollout) for settings, sha256, rollout in wanted)
        except BaseException:
            for stage in self.loaded:
                stage.close()
            raise
        return Pipeline(stages, generation)

    def _stage(self, settings: StageSettings, sha256: str | None, rollout: Rollout | None):
        baseline = self._load(settings, sha256)
        if rollout is None or (rollout.kind == "shadow" and rollout.state == "paused"):
            return baseline  # NOTE: a paused shadow makes no candidate calls
        candidate = self._load(StageEntry.from_json(dict(rollout.candidate)), rollout.candidate_sha256)
        step_key = count_key(rollout.id, rollout.step, rollout.step_started_at)
        if rollout.kind == "shadow":
            return ShadowStage(baseline, candidate, percent=rollout.candidate_percent, salt=rollout.id,
                               key=rollout.key, step_key=step_key)
        return CanaryStage(baseline, candidate, percent=rollout.candidate_percent, salt=rollout.id,
                           key=rollout.key, force=self.force_header,
                           step_key=step_key)

    def _load(self, settings: StageSettings, sha256: str | None) -> Stage:
        same = self.reusable.get(stage_key(settings, sha256)) if sha256 else None
        if same is not None:
            return same
        try:
            wasm = self.store.get(sha256) if self.store and sha256 else read_module_file(settings.module)
            stage = load_stage(settings, wasm, self.cache, sha256)
        except HostError as err:
            where = settings.module or f"version {sha256[:12]}"
            raise StageLoadError(f"stage {settings.name!r} ({where}): {err}") from err
        self.loaded.append(stage)
        return stage
