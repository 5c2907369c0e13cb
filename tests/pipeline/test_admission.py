"""One admission path: every entry point runs the same checks, in isolation."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from mwhost.errors import AdminBadRequest, ModuleRejected
from mwhost.metrics import METRICS
from mwhost.pipeline import admit
from mwhost.registry import StageEntry
from mwhost.runtime import Limits, default_runtime
from mwhost.settings import POLICY_KEYS, STAGE_KEYS, StageSettings
from tests.server.test_swap import tagger
from tests.wat import guest


def test_the_stage_description_is_the_settings_table():
    """StageSettings has exactly the keys of STAGE_KEYS, the manifest entry adds only the
    version and its origin, and the runtime's defaults are the table's."""
    fields = [f.name for f in dataclasses.fields(StageSettings)]
    assert fields == list(STAGE_KEYS)
    entry_fields = [f.name for f in dataclasses.fields(StageEntry)]
    assert entry_fields == [*STAGE_KEYS, "sha256", "origin"]
    defaults = Limits()
    assert (defaults.timeout_ms, defaults.max_memory_mb, defaults.fuel) == tuple(
        STAGE_KEYS[key].default for key in ("timeout_ms", "max_memory_mb", "fuel"))
    assert defaults.max_output_bytes == STAGE_KEYS["max_output_kb"].default * 1024
    assert defaults.max_log_bytes == STAGE_KEYS["max_log_kb"].default * 1024
    assert POLICY_KEYS == tuple(k for k in STAGE_KEYS if k not in ("name", "module"))


def test_probe_requests_are_not_counted_as_traffic():
    """Admission calls the guest (probes) but no production meter sees them."""
    METRICS.flush()
    before = {s.name: s.value for s in _samples("admitted_quietly")}
    admitted = admit(StageSettings(name="admitted_quietly"), tagger("k", "v"), default_runtime())
    METRICS.flush()
    assert admitted.probes >= 4
    assert {s.name: s.value for s in _samples("admitted_quietly")} == before == {}


def _samples(stage: str) -> list:
    from prometheus_client import REGISTRY

    return [s for metric in REGISTRY.collect() for s in metric.samples if s.labels.get("stage") == stage]


@pytest.mark.parametrize("wasm, error, check", [
    (b"(module)", AdminBadRequest, "binary"),
    (b"\0asm\x01\0\0\0\x99", AdminBadRequest, "compile"),
    (guest(exports=("mw_abi_version", "mw_alloc")), ModuleRejected, "abi"),
    (guest(init="(i32.const 1)"), ModuleRejected, "init"),
    (guest("(unreachable)"), ModuleRejected, "probe"),
])
def test_each_check_refuses_with_its_name(wasm, error, check):
    """Each admission check answers with its own ``check`` name."""
    with pytest.raises(error) as caught:
        admit(StageSettings(name="refused"), wasm, default_runtime())
    assert caught.value.members["check"] == check


def test_validate_runs_admission_and_says_so(tmp_path):
    """``mwhost validate`` passes a good module with its probe count and refuses one that fails
    the probes, exiting non-zero with one line."""
    good, bad = tmp_path / "good.wasm", tmp_path / "bad.wasm"
    good.write_bytes(tagger("k", "v"))
    bad.write_bytes(guest("(unreachable)"))
    ok = subprocess.run([sys.executable, "-m", "mwhost.cli", "validate", str(good), "--config", json.dumps({})],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "probe requests" in ok.stdout, ok.stderr
    refused = subprocess.run([sys.executable, "-m", "mwhost.cli", "validate", str(bad)],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "golden request" in refused.stderr and "Traceback" not in refused.stderr
