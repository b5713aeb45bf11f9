"""The hub the benchmark measures is installed the way a user installs it: README's first
command (the runtime lock, checked by hash, and the hub itself), in a venv of its own.

    python -m bench.install [DIR]        # default bench/.hub-venv; prints its python

The test venv also holds what the tests need (stix2-validator among them): a hub run from
it could take a path that a user's install does not have. The benchmark's own process (load,
readers, ceilings, medallion) stays in the venv that runs it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "bench" / ".hub-venv"
# README's command 1 without its last step (`cirt-hub serve`): tests/bench/test_install.py
# checks the README still says exactly this.
STEPS = (
    "python3 -m venv {venv}",
    "{venv}/bin/pip install --no-deps --require-hashes -r requirements.lock",
    "{venv}/bin/pip install --no-deps --no-build-isolation -e .",
)


def install(venv: Path = DEFAULT) -> Path:
    """Make `venv` with README's install steps unless it already has the hub; its python."""
    python = venv / "bin" / "python"
    if python.exists() and (venv / "bin" / "cirt-hub").exists():
        return python
    for n, step in enumerate(STEPS, start=1):
        command = step.format(venv=venv)
        print(f"bench.install: [{n}/{len(STEPS)}] {command}", file=sys.stderr, flush=True)
        subprocess.run(shlex.split(command), cwd=ROOT, check=True, stdout=sys.stderr)
    return python


def describe(python: Path) -> dict[str, object]:
    """What the hub runs on: its interpreter, whether the test-only validator is there, and
    the validation path (the shipped schemas; the hub refuses to start without them)."""
    probe = (
        "import importlib.util, json, sys\n"
        "from hub.stix.schemas import check_shipped\n"
        "print(json.dumps({'schemas': check_shipped(), 'prefix': sys.prefix,\n"
        "  'stix2_validator_installed': importlib.util.find_spec('stix2validator') is not None}))"
    )
    done = subprocess.run(
        [str(python), "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the hub at {python} cannot validate: {done.stderr.strip()[-2000:]}")
    found = json.loads(done.stdout)
    return {
        "python": str(python),
        # Venvs share the base interpreter's binary: the prefix tells the installs apart.
        "readme_install": Path(found["prefix"]).resolve() != Path(sys.prefix).resolve(),
        "validation_path": f"compiled schemas shipped with the hub ({found['schemas']} schemas)",
        "stix2_validator_installed": found["stix2_validator_installed"],
    }


def main() -> None:
    venv = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else DEFAULT
    print(install(venv))


if __name__ == "__main__":
    main()
