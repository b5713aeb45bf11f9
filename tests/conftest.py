"""Shared fixtures: the real Apache Kafka broker (session-wide) and bus URLs per test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = ROOT / "deploy" / "kafka" / "kafka.sh"


def _testdata() -> Path:
    """../shared/testdata/stix: real third-party STIX content. Missing data fails the run."""
    candidates = [
        Path(os.environ["CIRT_HUB_TESTDATA"]) if os.environ.get("CIRT_HUB_TESTDATA") else None,
        ROOT.parent / "shared" / "testdata" / "stix",
        Path("/work/shared/testdata/stix"),
    ]
    for candidate in candidates:
        if candidate is not None and (candidate / "README.md").is_file():
            return candidate
    raise pytest.UsageError(
        "the shared STIX test data was not found (looked in ../shared/testdata/stix and "
        "/work/shared/testdata/stix); set CIRT_HUB_TESTDATA to its folder"
    )


TESTDATA = _testdata()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The test command gives the same verdict for the same commit on any day: property tests draw
# the same examples every run unless `--hypothesis-profile=explore` asks for fresh ones.
settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False)


def pytest_configure(config: pytest.Config) -> None:
    """Repeatable property tests unless a profile is named; cheaper scrypt in this process.

    The suite makes hundreds of signing keys and account
    hashes (~100 ms each at the production cost). Same code and stored format; the cost is
    written into each hash and sealed key, so hubs started as subprocesses open them too."""
    from hub import credentials
    from hub.signing import keyring

    if config.getoption("hypothesis_profile", None) is None:
        settings.load_profile("repeatable")

    credentials.SCRYPT_N = 2**10
    keyring._SCRYPT_N = 2**10


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real broker: the one named by CIRT_HUB_TEST_KAFKA, or one started for this session."""
    given = os.environ.get("CIRT_HUB_TEST_KAFKA")
    if given:
        yield given
        return
    run_dir = tmp_path_factory.mktemp("kafka")
    for attempt in range(3):
        # Free ports can be taken by someone else before the broker binds them: try again.
        port, controller = free_port(), free_port()
        started = subprocess.run(
            [
                *("bash", str(KAFKA_SCRIPT), "start", "--port", str(port)),
                *("--controller-port", str(controller), "--dir", str(run_dir)),
            ],
            stdout=sys.stderr,
        )
        if started.returncode == 0:
            break
        if attempt == 2:
            raise RuntimeError("the Kafka broker did not start (see kafka.sh's output above)")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(
            ["bash", str(KAFKA_SCRIPT), "stop", "--dir", str(run_dir)],
            check=False,
            stdout=sys.stderr,
        )


@pytest.fixture(params=["embedded", "kafka"])
def bus_url(request: pytest.FixtureRequest) -> str:
    """Each bus test runs on both buses: the embedded log and the real Kafka broker."""
    if request.param == "kafka":
        request.applymarker(pytest.mark.kafka)
        return "kafka://" + request.getfixturevalue("kafka_bootstrap")
    return "embedded"


@pytest.fixture
def unique() -> str:
    """A per-test suffix so tests sharing one broker never see each other's topics."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def demo_secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo account secrets made once per session (scrypt is slow on purpose)."""
    from hub.demo import DEMO_ACCOUNTS_FILE, demo_federation

    data_dir = tmp_path_factory.mktemp("demo")
    demo_federation(data_dir)
    return data_dir / DEMO_ACCOUNTS_FILE


@pytest.fixture
async def hub(bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str):
    """A whole hub node (API, view, pipeline) on a free loopback port, on each bus."""
    from tests.hubs import running_hub

    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}."
    ) as running:
        yield running


_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is not a passing one: any skip fails the run (Kafka tests included)."""
    if _skipped and exitstatus == 0:
        print(f"\n{len(_skipped)} test(s) skipped, which this suite counts as failures:")
        for nodeid in _skipped:
            print(f"  {nodeid}")
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How much the leak-freedom property explored, and what the fault tests counted."""
    faults = sys.modules.get("tests.faults.support")
    for line in getattr(faults, "REPORT", []):
        terminalreporter.write_line(f"fault test, {line}")
    module = sys.modules.get("tests.policy.test_leak_freedom")
    for bus, (federations, objects, checks) in getattr(module, "EXPLORED", {}).items():
        terminalreporter.write_line(
            f"leak-freedom on {bus}: {federations} random federations, {objects} objects, "
            f"{checks} (reader account, object) pairs checked against the oracle"
        )
    module = sys.modules.get("tests.policy.test_account_leaks")
    for bus, (federations, versions, checks) in getattr(module, "EXPLORED", {}).items():
        terminalreporter.write_line(
            f"account-level leaks on {bus}: {federations} random federations, {versions} "
            f"object versions, {checks} answers to reader accounts checked against the oracle"
        )
