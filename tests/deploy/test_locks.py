"""The hashed lock files: they cover pyproject.toml, and each is closed.

Closed means pip, resolving the lock with its full resolver (extras and markers included)
against a folder of exactly the locked files and no index, installs exactly the lock's pins:
nothing is taken from what the index offers today, so an install gives the same result on
any day. deploy/test.sh installs the test lock that way; this resolves every lock so.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT

RUNTIME_LOCK, TEST_LOCK, BUILD_LOCK = (
    "requirements.lock",
    "requirements-test.lock",
    "deploy/build-tools.lock",
)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


def pins(lock: str) -> dict[str, str]:
    return {
        canonicalize_name(m[1]): m[2]
        for line in (ROOT / lock).read_text().splitlines()
        if (m := PIN.match(line))
    }


def test_the_locks_cover_pyproject_and_agree() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = project["project"]["dependencies"]
    test = project["project"]["optional-dependencies"]["test"]
    build = project["build-system"]["requires"]
    wanted = {
        RUNTIME_LOCK: [*runtime, *build],
        TEST_LOCK: [*runtime, *test, *build],
        BUILD_LOCK: build,
    }
    problems = []
    for lock, requirements in wanted.items():
        pinned = pins(lock)
        for text in requirements:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            pin = pinned.get(canonicalize_name(requirement.name))
            if pin is None:
                problems.append(f"{lock} lacks {requirement} (pyproject.toml)")
            elif not requirement.specifier.contains(Version(pin), prereleases=True):
                problems.append(f"{lock} pins {requirement.name}=={pin}, outside {requirement}")
    # One .venv gets the build tools then the test lock; command 1's gets the runtime lock.
    every = {lock: pins(lock) for lock in wanted}
    for name in sorted(set().union(*every.values())):
        versions = {lock: pinned[name] for lock, pinned in every.items() if name in pinned}
        if len(set(versions.values())) > 1:
            problems.append(f"{name} pinned differently: {versions}")
    assert not problems, "run `bash deploy/lock.sh` and commit the locks:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files of every lock: deploy/test.sh's .wheelhouse, else downloaded here."""
    given = os.environ.get("CIRT_HUB_WHEELHOUSE")
    folder = Path(given) if given else tmp_path_factory.mktemp("wheelhouse")
    for lock in (TEST_LOCK, RUNTIME_LOCK, BUILD_LOCK):
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
                *("--require-hashes", "--no-build-isolation", "-r", str(ROOT / lock)),
                *("-d", str(folder)),
            ],
            check=True,
            timeout=600,
        )
    return folder


@pytest.mark.timeout(600)
@pytest.mark.parametrize("lock", [RUNTIME_LOCK, TEST_LOCK, BUILD_LOCK])
def test_each_lock_resolves_offline_to_exactly_its_pins(
    lock: str, wheelhouse: Path, tmp_path: Path
) -> None:
    allowed = set(HASH.findall((ROOT / lock).read_text()))
    exact = tmp_path / "files"
    exact.mkdir()
    for file in wheelhouse.iterdir():
        if hashlib.sha256(file.read_bytes()).hexdigest() in allowed:
            (exact / file.name).symlink_to(file)
    report = tmp_path / "report.json"
    resolved = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"),
            *("--no-index", "--find-links", str(exact), "--require-hashes"),
            *("--no-build-isolation", "--quiet", "--report", str(report)),
            *("-r", str(ROOT / lock)),
        ],
        # PIP_FIND_LINKS from the environment would add files that are not the lock's.
        env={k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resolved.returncode == 0, f"{lock} is not closed:\n{resolved.stderr}"
    chosen = {
        canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert chosen == pins(lock)
