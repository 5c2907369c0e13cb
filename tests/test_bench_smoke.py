"""The benchmark code runs (tiny counts) so it cannot rot; it asserts behaviour, not timings."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, example_path


def test_stage_cost_benchmark_runs_in_smoke_mode():
    example_path("add_header")
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "stage_cost.py"), "--smoke"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    for scenario in ("none", "python", "wat_noop", "rust", "go", "rust_public"):
        assert f"| {scenario} |" in result.stdout


def test_instantiate_benchmark_runs_in_smoke_mode():
    example_path("add_header_go")
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "instantiate.py"), "--smoke"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "| add_header (Rust) |" in result.stdout and "| request_id (Go) |" in result.stdout


def test_soak_and_propagation_benchmarks_run_in_smoke_mode():
    for script, expected in (("soak_swaps.py", "RSS growth"), ("propagation.py", "p99")):
        result = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--smoke"],
                                capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout


def test_limits_cost_benchmark_runs_in_smoke_mode():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "limits_cost.py"), "--smoke"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "fuel on / off" in result.stdout
