"""`cirt-hub serve` as a user runs it: no config, the built-in demo, a real round trip."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from taxii2client.v21 import Server

from tests.conftest import free_port
from tests.stixdata import TLP2, incident_report

CLI = [sys.executable, "-m", "hub"]
# README command 1 runs the installed console script; the round trip below does too.
CONSOLE_SCRIPT = Path(sys.executable).with_name("cirt-hub")


def wait_until_serving(url: str, proc: subprocess.Popen, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        assert proc.poll() is None, f"cirt-hub serve exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {deadline} s")


def demo_accounts(data_dir: Path) -> dict[str, dict]:
    """The demo's accounts by username, as `cirt-hub demo accounts --json` prints them."""
    out = subprocess.run(
        [*CLI, "demo", "accounts", "--data-dir", str(data_dir), "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    return {a["username"]: a for a in json.loads(out.stdout)}


@pytest.fixture
def served(tmp_path: Path):
    port = free_port()
    data_dir = tmp_path / "data"
    assert CONSOLE_SCRIPT.exists(), f"{CONSOLE_SCRIPT} is not installed (pip install -e .)"
    proc = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "serve", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/readyz", proc)
        yield port, data_dir, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()


def test_demo_hub_round_trip_and_clean_stop(served) -> None:
    port, data_dir, proc = served
    accounts = demo_accounts(data_dir)
    submitter, reader = accounts["sn-cert-submit"], accounts["ng-cert-read"]
    assert submitter["cirt"] == "sn-cert" and submitter["roles"] == ["submit"]
    assert any(a["roles"] == ["operate"] for a in accounts.values())

    def root(account: dict) -> object:
        server = Server(
            f"http://127.0.0.1:{port}/taxii2/",
            user=account["username"],
            password=account["password"],
        )
        return server.default

    inbox = next(c for c in root(submitter).collections if c.alias == "inbox")
    identity = "identity--00d8f8a4-6a4b-4b59-9bd1-5c0a5d6c1f10"
    report = incident_report(identity, "CERT-SN", TLP2["green"])
    status = inbox.add_objects({"objects": report}, poll_interval=0.05, timeout=30)
    assert status.status == "complete" and status.success_count == 4

    # A client's request id follows its report from the API through the bus to the pipeline.
    traced = incident_report(identity, "CERT-SN", TLP2["green"])
    credentials = f"{submitter['username']}:{submitter['password']}".encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/taxii2/hub/collections/inbox/objects/",
        data=json.dumps({"objects": traced}).encode(),
        headers={
            "Content-Type": "application/taxii+json;version=2.1",
            "Accept": "application/taxii+json;version=2.1",
            "Authorization": "Basic " + base64.b64encode(credentials).decode(),
            "X-Request-ID": "trace-report-0001",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
    feed = next(c for c in root(reader).collections if c.alias == "region-west-africa")
    got = feed.get_objects()["objects"]
    assert {o["id"] for o in report} <= {o["id"] for o in got}

    # What the hub keeps on disk (content, statuses, secrets) is readable by its owner only.
    for path in [data_dir, *data_dir.iterdir()]:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is open to others"

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    printed = proc.stdout.read()
    assert f"http://127.0.0.1:{port}/taxii2/" in printed
    assert submitter["password"] in printed  # the demo prints its generated secrets
    assert "WARNING: INSECURE DEV KEYS" in printed  # the demo's signing key is unencrypted
    logs = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    assert logs and all({"time", "level", "logger", "message"} <= set(e) for e in logs)
    trace = [e for e in logs if e.get("request_id") == "trace-report-0001"]
    said = {(e["logger"], e["message"]) for e in trace}
    assert ("hub.api.intake", "submission accepted") in said, trace
    assert ("hub.pipeline.worker", "submission routed") in said, trace
    routed = next(e for e in trace if e["message"] == "submission routed")
    assert routed["member"] == "sn-cert" and routed["accepted"] == 4
    # Logs name members, ids and counts: never a secret, never what a report says.
    everything = "\n".join(json.dumps(e) for e in logs)
    assert submitter["password"] not in everything
    assert "203.0.113.45" not in everything and "tax portal" not in everything


def test_sigint_stops_the_hub_cleanly(served) -> None:
    _, _, proc = served
    proc.send_signal(signal.SIGINT)  # Ctrl-C in the terminal that ran command 1
    assert proc.wait(timeout=20) == 0
    assert "Traceback" not in proc.stdout.read()


def test_bad_federation_file_stops_startup_naming_file_line_and_field(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "federation.yaml"
    bad = tmp_path / "federation.yaml"
    bad.write_text(example.read_text().replace("country: KE", "country: Kenya"))
    result = subprocess.run(
        [*CLI, "serve", "--config", str(bad), "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    line = next(
        i + 1 for i, text in enumerate(bad.read_text().splitlines()) if "country: Kenya" in text
    )
    assert f"{bad}:{line}: members[3].country:" in result.stderr
    assert "'Kenya' does not match" in result.stderr


@pytest.mark.parametrize(
    ("option", "field"),
    [
        (["--public-url", "http://hub.example.org"], "public_url: 'http://hub.example.org'"),
        (["--header-timeout", "0"], "header_timeout: must be more than 0"),
        (["--max-connections-per-address", "-1"], "max_connections_per_address:"),
    ],
)
def test_serve_settings_that_cannot_work_stop_startup_naming_them(
    tmp_path: Path, option: list[str], field: str
) -> None:
    result = subprocess.run(
        [*CLI, "serve", "--data-dir", str(tmp_path / "d"), *option],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and field in result.stderr, result.stderr


def test_token_new_prints_a_secret_and_only_its_hash(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "token", "new", "--username", "ops", "--roles", "operate"],
        check=True,
        capture_output=True,
        text=True,
    )
    secret = result.stdout.split("not stored): ")[1].split()[0]
    yaml_part = result.stdout.split("federation file lines:")[1]
    assert secret not in yaml_part
    assert 'secret_hash: "scrypt$' in yaml_part
    from hub.credentials import verify_secret

    stored = yaml_part.split('secret_hash: "')[1].split('"')[0]
    assert verify_secret(secret, stored)
    assert not verify_secret(secret + "x", stored)
