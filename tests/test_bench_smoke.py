"""The benchmark code runs (tiny counts) so it cannot rot; it asserts behaviour, not timings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, example_path

SECTIONS = ("stage_cost", "throughput", "swap_load", "memory_swaps", "cold_start")


@pytest.mark.slow
def test_the_suite_runs_every_section_in_smoke_mode(tmp_path):
    """``bench/run_all.py --smoke`` writes JSON with every section, the report and the five plots."""
    for name in ("add_header", "add_header_go", "request_id"):
        example_path(name)
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "run_all.py"), "--smoke", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-4000:]
    results = json.loads((tmp_path / "results" / "suite.json").read_text())
    assert results["errors"] == {}
    for section in SECTIONS:
        assert section in results, section
        assert (tmp_path / "plots" / f"{section}.png").stat().st_size > 1000, section
    assert set(results["stage_cost"]["results"]) >= {
        "none", "python", "wat_noop", "rust", "go", "rust_public", "extism", "call_fast", "call_public", "call_extism"}
    assert {p["worker_class"] for p in results["throughput"]["points"].values()} == {"sync", "gthread"}
    assert {p["kind"] for p in results["throughput"]["points"].values()} == {"rust", "python"}
    assert results["swap_load"]["swaps"] == 3 and results["swap_load"]["requests"] > 0
    assert len(results["memory_swaps"]["samples"]) >= 2
    assert set(results["cold_start"]["activation_ms"]) == {"Rust add_header", "Go add_header_go"}
    report = (tmp_path / "REPORT.md").read_text()
    for heading in ("## Targets", "## 1. Per-stage cost", "## 2. Through gunicorn", "## 3. Swap under load",
                    "## 4. Memory over", "## 5. Cold start"):
        assert heading in report, heading
    assert "Smoke run" in report and "run_all.py --smoke" in report


def test_wrk_output_is_parsed():
    """requests/s, percentiles in any unit and error counts come out of ``wrk --latency`` text."""
    from bench.throughput import parse_wrk

    parsed = parse_wrk("""Running 1s test @ http://127.0.0.1:1/
  Latency Distribution
     50%  642.00us
     75%    1.24ms
     90%    3.77ms
     99%    1.02s
  2391 requests in 1.00s, 1.27MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   2391.14
""")
    assert parsed["rps"] == 2391.14 and parsed["requests"] == 2391
    assert parsed["p50_ms"] == pytest.approx(0.642) and parsed["p99_ms"] == pytest.approx(1020)
    assert parsed["socket_errors"] == 3 and parsed["non_2xx"] == 4


def test_limits_cost_benchmark_runs_in_smoke_mode():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "limits_cost.py"), "--smoke"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "fuel on / off" in result.stdout


@pytest.mark.slow
def test_soak_and_propagation_benchmarks_run_in_smoke_mode():
    for script, expected in (("soak_swaps.py", "RSS growth"), ("propagation.py", "p99")):
        result = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--smoke"],
                                capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout


def test_rollout_cost_benchmark_runs_in_smoke_mode():
    """``bench/rollout_cost.py --smoke`` runs every scenario and reports the routing cost."""
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "rollout_cost.py"), "--smoke"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "routing added per request per stage under rollout" in result.stdout
