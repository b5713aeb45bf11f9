"""deploy/kafka/kafka.sh fetch: the broker's jars are the reviewed ones, byte for byte
(deploy/kafka/jars-<version>.sha256), whatever the local Maven repository holds."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import KAFKA_SCRIPT

pytestmark = pytest.mark.kafka  # needs the fetched broker's Maven repository


VERSION = re.search(r"CIRT_HUB_KAFKA_VERSION:-([^}]+)", KAFKA_SCRIPT.read_text())[1]  # type: ignore[index]


def cache_root() -> Path:
    found = os.environ.get("CIRT_HUB_CACHE_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "cirt-hub"
    )
    return Path(found)


def fetch(cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CIRT_HUB_CACHE_DIR": str(cache)}
    env.pop("CIRT_HUB_KAFKA_VERSION", None)
    return subprocess.run(
        ["bash", str(KAFKA_SCRIPT), "fetch"], env=env, capture_output=True, text=True, timeout=300
    )


def test_a_jar_altered_in_the_local_maven_repository_stops_the_fetch_naming_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    repo = cache_root() / "kafka" / "m2"
    assert repo.is_dir(), f"the suite's broker was fetched with its Maven repository at {repo}"
    shutil.copytree(repo, tmp_path / "kafka" / "m2")
    # The copy fetches as the original did (from the local repository: no download).
    assert fetch(tmp_path).returncode == 0
    shutil.rmtree(tmp_path / "kafka" / VERSION)
    (jar,) = (tmp_path / "kafka" / "m2").rglob("re2j-*.jar")
    with jar.open("ab") as altered:
        altered.write(b"\0")
    done = fetch(tmp_path)
    assert done.returncode != 0
    assert f"SHA-256 of {jar.name} does not match" in done.stderr, done.stderr
    assert not (tmp_path / "kafka" / VERSION / "libs").exists()
