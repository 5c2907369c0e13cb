"""A process that could load nothing recovers by itself once the data dir is whole again."""

from __future__ import annotations

from mwhost import testing
from mwhost.runtime import default_runtime
from mwhost.watch import LivePipeline
from tests.server.test_swap import tagger


def test_a_worker_serving_503_loads_the_generation_once_its_module_is_back(tmp_path):
    """Module file gone: a non-strict boot answers 503 (stage 'pipeline'); with the file back,
    the next reload serves the manifest's generation and the worker is ready again."""
    settings = testing.pipeline_settings(tmp_path, ("tag", tagger("v", "1"), {}))
    first = LivePipeline.from_settings(settings, default_runtime())
    entry = first.manifests.read().stage("tag")
    module = first.store.path(entry.sha256)
    wasm = module.read_bytes()
    module.unlink()
    booted = LivePipeline.from_settings(settings, default_runtime(), strict=False)
    assert booted.generation == 0 and booted.problem is not None
    assert [stage.name for stage in booted.holder.current.stages] == ["pipeline"]
    first.store.put(wasm)
    assert booted.reload() is True
    assert booted.generation == first.generation and booted.problem is None
    assert [stage.name for stage in booted.holder.current.stages] == ["tag"]
