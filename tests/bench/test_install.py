"""The benchmark measures the hub as README's first command installs it (bench.install)."""

from __future__ import annotations

import sys
from pathlib import Path

from bench import install
from tests.conftest import ROOT


def readme_command_one() -> list[str]:
    """README's first command, as its steps (the line after the first code fence)."""
    text = (ROOT / "README.md").read_text()
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    line = next(x for x in block.splitlines() if x.startswith("python3 -m venv"))
    return [step.strip() for step in line.split("&&")]


def test_the_bench_installs_the_hub_with_the_readmes_first_command() -> None:
    steps = readme_command_one()
    assert [s.format(venv=".venv") for s in install.STEPS] == steps[:-1]
    assert steps[-1] == ".venv/bin/cirt-hub serve"


def test_the_bench_reports_the_validation_path_of_the_hubs_install() -> None:
    found = install.describe(Path(sys.executable))
    # The test venv: not README's install, and it has the test-only validator.
    assert found["readme_install"] is False
    assert found["stix2_validator_installed"] is True
    assert "compiled schemas shipped with the hub" in str(found["validation_path"])
