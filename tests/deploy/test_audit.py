"""The supply-chain audit (`bash deploy/audit.sh`) against recorded PyPI JSON API answers.

A local HTTP server answers the paths of PyPI's JSON API from tests/deploy/pypi/ (real
documents trimmed to what the audit reads): requests 2.30.0's own version document lists
PYSEC-2023-74; idna and cryptography answer only per project, as this workplace's proxy does.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port

RECORDED = Path(__file__).parent / "pypi"


@dataclass
class RecordedPyPI:
    url: str
    # path -> how many 503s to answer before the recorded document (a flaky proxy)
    failures: dict[str, int] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def pypi() -> Iterator[RecordedPyPI]:
    recorded = RecordedPyPI("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.removeprefix("/pypi/").strip("/")
            recorded.requests.append(path)
            if recorded.failures.get(path, 0) > 0:
                recorded.failures[path] -= 1
                self.send_error(503)
                return
            document = RECORDED / path
            if ".." in path or not document.is_file():
                self.send_error(404)
                return
            body = document.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorded.url = f"http://127.0.0.1:{server.server_address[1]}/pypi"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorded
    finally:
        server.shutdown()
        server.server_close()


def run_audit(
    tmp_path: Path, url: str, pins: list[str], ignores: str = ""
) -> subprocess.CompletedProcess[str]:
    lock = tmp_path / "requirements.lock"
    lock.write_text("".join(f"{pin} \\\n    --hash=sha256:{'0' * 64}\n" for pin in pins))
    ignore_file = tmp_path / "audit-ignore.txt"
    ignore_file.write_text(ignores)
    return subprocess.run(
        [
            *("bash", str(ROOT / "deploy" / "audit.sh"), "--lock", str(lock)),
            *("--ignore-file", str(ignore_file), "--json-api", url, "--timeout", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_pin_below_the_latest_release_without_data_is_listed_not_failed(
    tmp_path: Path, pypi: RecordedPyPI
) -> None:
    done = run_audit(tmp_path, pypi.url, ["idna==3.20", "cryptography==51.0.1"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "not audited: idna==3.20: below its latest release 3.21; the service has no"
        " per-version data" in done.stdout
    )
    assert "audited 1 of 2 pinned versions" in done.stdout
    assert "0 known vulnerabilities" in done.stdout
    # The exact version's document was asked for first.
    assert "idna/3.20/json" in pypi.requests and "idna/json" in pypi.requests


def test_a_known_vulnerability_fails_and_names_the_advisory(
    tmp_path: Path, pypi: RecordedPyPI
) -> None:
    done = run_audit(tmp_path, pypi.url, ["requests==2.30.0", "idna==3.20"])
    assert done.returncode == 1, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("VULNERABLE"))
    assert line.startswith("VULNERABLE requests==2.30.0 (")
    assert "PYSEC-2023-74 (CVE-2023-32681, GHSA-j8r2-6x86-q33q); fixed in: 2.31.0" in line
    assert "Proxy-Authorization" in done.stdout  # the advisory's first line, for the reader
    assert "not audited: idna==3.20" in done.stdout


def test_a_reviewed_advisory_is_reported_as_ignored(tmp_path: Path, pypi: RecordedPyPI) -> None:
    reviewed = "CVE-2023-32681  # requests 2.30.0: no proxies are configured (test)\n"
    done = run_audit(tmp_path, pypi.url, ["requests==2.30.0"], reviewed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ignored, reviewed in deploy/audit-ignore.txt: requests==2.30.0 PYSEC-2023-74" in (
        done.stdout
    )


def test_an_ignore_entry_without_a_reason_stops_the_audit(
    tmp_path: Path, pypi: RecordedPyPI
) -> None:
    done = run_audit(tmp_path, pypi.url, ["requests==2.30.0"], "# header\nCVE-2023-32681\n")
    assert done.returncode == 2
    assert "audit-ignore.txt:2: `CVE-2023-32681` has no reason after '#'" in done.stdout


def test_a_flaky_service_is_asked_again(tmp_path: Path, pypi: RecordedPyPI) -> None:
    pypi.failures["requests/2.30.0/json"] = 2
    done = run_audit(tmp_path, pypi.url, ["requests==2.30.0"])
    assert done.returncode == 1, done.stdout + done.stderr
    assert pypi.requests.count("requests/2.30.0/json") == 3


def test_no_answer_at_all_is_an_audit_not_done(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/pypi"
    done = run_audit(tmp_path, nobody, ["idna==3.20", "cryptography==51.0.1"])
    assert done.returncode == 2, done.stdout + done.stderr
    assert "AUDIT NOT DONE: no pinned version could be audited" in done.stdout
    assert "not audited: idna==3.20: " in done.stdout
