"""bench/httpwasm_cost.py runs (tiny counts) so it cannot rot; it asserts behaviour, not timings."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, example_path


def test_the_httpwasm_cost_bench_runs_in_smoke_mode():
    """``bench/httpwasm_cost.py --smoke`` measures all five scenarios and prints the ratios."""
    example_path("add_header")
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "httpwasm_cost.py"), "--smoke"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-4000:]
    for scenario in ("v1_stage", "httpwasm_stage", "v1_app", "httpwasm_app", "rust_app"):
        assert f"`{scenario}`" in result.stdout
    assert "http-wasm / v1" in result.stdout
