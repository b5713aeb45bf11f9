"""Shared fixtures: the real Apache Kafka broker (session-wide) and bus URLs per test."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def _start_broker(run_dir: Path) -> str:
    """deploy/kafka/kafka.sh start in `run_dir`, on free ports; its bootstrap address."""
    for _attempt in range(3):
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
            return f"127.0.0.1:{port}"
    raise RuntimeError("the Kafka broker did not start (see kafka.sh's output above)")


def _stop_broker(run_dir: Path) -> None:
    """kafka.sh stop: the broker whose PID is in `run_dir` (and only that one)."""
    subprocess.run(
        ["bash", str(KAFKA_SCRIPT), "stop", "--dir", str(run_dir)], check=False, stdout=sys.stderr
    )


# With pytest-xdist (deploy/test.sh runs the suite on two workers) the workers share one
# broker: the first that needs it starts it in a folder the controller names; the controller
# stops it once every worker is done. A broker per worker would cost a JVM's start and heap each.
SHARED_KAFKA = "cirt_hub_kafka_dir"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist's controller: the folder where the workers' shared broker runs, if one is needed."""
    node.workerinput[SHARED_KAFKA] = str(_shared_kafka_dir(node.config))


def _shared_kafka_dir(config: pytest.Config) -> Path:
    return config._tmp_path_factory.getbasetemp() / "kafka-shared"  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def kafka_bootstrap(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real broker: the one named by CIRT_HUB_TEST_KAFKA, or one started for this run."""
    given = os.environ.get("CIRT_HUB_TEST_KAFKA")
    if given:
        yield given
        return
    shared = getattr(request.config, "workerinput", {}).get(SHARED_KAFKA)
    if shared is None:  # one process: this session starts and stops its broker
        run_dir = tmp_path_factory.mktemp("kafka")
        bootstrap = _start_broker(run_dir)
        try:
            yield bootstrap
        finally:
            _stop_broker(run_dir)
        return
    run_dir = Path(shared)
    run_dir.mkdir(parents=True, exist_ok=True)
    ready = run_dir / "ready"  # written once the broker answers (kafka.sh's own file is earlier)
    with open(run_dir / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not ready.exists():
            ready.write_text(_start_broker(run_dir))
    yield ready.read_text()


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
    """A skipped test is not a passing one: any skip fails the run (Kafka tests included).

    Under xdist the controller sees every worker's reports, so it counts the skips; a worker
    hands its summary counts to the controller, which stops the workers' shared broker."""
    config = session.config
    if hasattr(config, "workerinput"):
        config.workeroutput[SUMMARY] = _summary_counts()  # type: ignore[attr-defined]
    else:
        run_dir = _shared_kafka_dir(config)
        if (run_dir / "kafka.pid").exists():
            _stop_broker(run_dir)
    if _skipped and exitstatus == 0:
        print(f"\n{len(_skipped)} test(s) skipped, which this suite counts as failures:")
        for nodeid in _skipped:
            print(f"  {nodeid}")
        session.exitstatus = 1


SUMMARY = "cirt_hub_summary"
_from_workers: list[dict[str, Any]] = []


def _summary_counts() -> dict[str, Any]:
    """What this process's fault tests and leak properties counted (see the summary below)."""
    faults = sys.modules.get("tests.faults.support")
    leaks = sys.modules.get("tests.policy.test_leak_freedom")
    accounts = sys.modules.get("tests.policy.test_account_leaks")
    return {
        "faults": list(getattr(faults, "REPORT", [])),
        "leaks": dict(getattr(leaks, "EXPLORED", {})),
        "accounts": dict(getattr(accounts, "EXPLORED", {})),
    }


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist's controller: keep a finished worker's counts for the summary."""
    counts = getattr(node, "workeroutput", {}).get(SUMMARY)
    if counts:
        _from_workers.append(counts)


def _added(parts: list[dict[str, Any]], key: str) -> dict[str, list[int]]:
    totals: dict[str, list[int]] = {}
    for part in parts:
        for bus, counts in part[key].items():
            total = totals.setdefault(bus, [0] * len(counts))
            totals[bus] = [a + b for a, b in zip(total, counts, strict=True)]
    return totals


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How much the leak-freedom property explored, and what the fault tests counted."""
    parts = [_summary_counts(), *_from_workers]
    for part in parts:
        for line in part["faults"]:
            terminalreporter.write_line(f"fault test, {line}")
    for bus, (federations, objects, checks) in _added(parts, "leaks").items():
        terminalreporter.write_line(
            f"leak-freedom on {bus}: {federations} random federations, {objects} objects, "
            f"{checks} (reader account, object) pairs checked against the oracle"
        )
    for bus, (federations, versions, checks) in _added(parts, "accounts").items():
        terminalreporter.write_line(
            f"account-level leaks on {bus}: {federations} random federations, {versions} "
            f"object versions, {checks} answers to reader accounts checked against the oracle"
        )
