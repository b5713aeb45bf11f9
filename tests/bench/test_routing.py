"""`python -m bench.routing` runs, finds both routers deciding alike on the bench workload,
and prints both figures (a small workload: it measures nothing worth reading)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_routing_bench_compares_both_routers() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.routing", "--objects", "300", "--passes", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "same results from both routers" in done.stdout
    assert "before: tests/policy/reference_routing.py" in done.stdout
    assert "after / before:" in done.stdout
