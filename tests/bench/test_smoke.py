"""The benchmark's smoke run: `python -m bench --smoke` on both buses completes, and what it
writes parses. It measures nothing worth reading (seconds per part): figures come from the
full run, never from a test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.kafka


@pytest.mark.timeout(600)
def test_smoke_run_on_both_buses(kafka_bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--kafka", kafka_bootstrap, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())
    # The smoke run's hub is this venv's; the full run's is README's install (bench.install).
    assert results["hub_install"]["readme_install"] is False
    configurations = {(c["bus"], c["workers"]): c for c in results["configurations"]}
    assert set(configurations) == {("embedded", 1), ("kafka", 1)}
    for config in configurations.values():
        phases = [p["phase"] for p in config["phases"]]
        assert phases == ["max", "25%", "50%", "75%", "100%"]
        assert config["idle"]["percent_of_a_core"] >= 0, config["idle"]
        for phase in config["phases"]:
            assert phase["hub_cpu_us_per_object"] > 0 and phase["hub_rss_peak_mb"] > 10, phase
            # Every object a client saw accepted was read back on a live stream.
            assert phase["objects_accepted"] > 0, phase
            assert phase["objects_missing"] == 0, phase
            assert phase["readable_p99_ms"] >= phase["readable_p50_ms"] > 0, phase
        back = config["read_back"]
        assert back["matches_stream"], back
        assert back["objects"] >= sum(p["objects_accepted"] for p in config["phases"])
    ceilings = results["ceilings"]
    for name in ("sign", "verify", "canonicalize_sign", "json_parse", "validate", "ownership"):
        assert ceilings[name]["ops_per_s"] > 0, name
    for name in ("kafka_produce", "kafka_consume"):
        assert ceilings[name]["ops_per_s"] > 0, name
    medallion = results["medallion"]
    for side in ("cirt_hub", "medallion"):
        assert medallion[side]["objects"] == results["options"]["medallion_objects"], side
        assert medallion[side]["objects_per_s"] > 0, side
    png = (out / "throughput-latency.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    table = done.stdout
    assert "validation: compiled schemas shipped with the hub" in table
    assert "embedded, 1 worker(s)" in table and "kafka, 1 worker(s)" in table
    assert "cirt-hub / medallion" in table
