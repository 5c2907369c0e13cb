"""The fleet propagation benchmark runs (3 uploads) and reports p50/p99."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_fleet_propagation_benchmark_runs_in_smoke_mode():
    """``bench/fleet_propagation.py --smoke`` starts 3 hosts on a private Redis and prints its p99s."""
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "fleet_propagation.py"), "--smoke"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "from the fleet write" in result.stdout and result.stdout.count("p99 **") == 2
