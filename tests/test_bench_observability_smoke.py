"""The observability benchmark runs (tiny counts); no timing is asserted."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_observability_cost_benchmark_runs_in_smoke_mode():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "observability_cost.py"), "--smoke"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "metrics on, tracing off" in result.stdout
