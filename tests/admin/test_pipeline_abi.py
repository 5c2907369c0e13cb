"""GET /_admin/pipeline's ``abi`` of a stage this worker does not serve is read once per module."""

from __future__ import annotations

import dataclasses

from mwhost import testing
from mwhost.admin import service
from mwhost.admin.service import AdminService
from mwhost.runtime import Runtime
from mwhost.watch import LivePipeline
from tests.admin.support import GOOD
from tests.httpwasm.wat_guests import hw_guest


def _live(tmp_path) -> LivePipeline:
    return LivePipeline.from_settings(testing.pipeline_settings(tmp_path, ("s", GOOD, {})), Runtime())


def test_the_abi_of_a_module_not_served_here_is_loaded_once_per_sha256(tmp_path, monkeypatch):
    """An entry this worker does not serve (another worker's newer upload) has its module
    loaded for its ABI on the first read only; later reads answer from the cache."""
    monkeypatch.setattr(service, "_ABI_BY_SHA256", {})
    live = _live(tmp_path)
    loads = []
    load = live.cache.load
    monkeypatch.setattr(live.cache, "load", lambda *args: loads.append(args[2]) or load(*args))
    entry = dataclasses.replace(live.manifests.read().stages[0], sha256=live.store.put(hw_guest()))
    admin = AdminService(live, None, None)
    assert [admin._abi(entry) for _ in range(3)] == ["http-wasm"] * 3
    assert loads == [entry.sha256]
    served = live.manifests.read().stages[0]
    assert admin._abi(served) == "v1" and loads == [entry.sha256]  # a served stage loads nothing
    missing = dataclasses.replace(entry, sha256="0" * 64)
    assert admin._abi(missing) is None and "0" * 64 not in service._ABI_BY_SHA256  # may arrive later
    live.close()


def test_the_abi_cache_is_bounded_and_forgets_the_oldest(monkeypatch):
    """Past ABI_CACHE_SIZE modules the oldest sha256 is dropped."""
    monkeypatch.setattr(service, "_ABI_BY_SHA256", {})
    for i in range(service.ABI_CACHE_SIZE + 1):
        service._remember_abi(f"{i:064x}", "v1")
    assert len(service._ABI_BY_SHA256) == service.ABI_CACHE_SIZE
    assert f"{0:064x}" not in service._ABI_BY_SHA256 and f"{1:064x}" in service._ABI_BY_SHA256
