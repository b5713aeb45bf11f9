"""`cirt-hub pull --format` as a cron job runs it, against a real hub: the file holds the
export (Suricata's parser takes the rules), and a refused or failed pull leaves the file
that was there untouched, so a firewall never loads half a list."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from hub.export.formats import COMPLETE
from tests.api.test_exports import lines, suricata_check
from tests.conftest import free_port
from tests.hubs import member_identity, running_hub, submit
from tests.stixdata import TLP2, indicator

CLI = (sys.executable, "-m", "hub")
pytestmark = pytest.mark.timeout(300)


async def run_cli(*args: str, password: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        env={**os.environ, "CIRT_HUB_PASSWORD": password},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, err.decode()


async def test_pull_writes_exports_whole_or_not_at_all(tmp_path: Path, demo_secrets: Path) -> None:
    rules, ips = tmp_path / "cirt-hub.rules", tmp_path / "blocklist.txt"
    async with running_hub("embedded", tmp_path / "hub", demo_secrets) as hub:
        ng = member_identity(hub, "ng-cert")
        await submit(
            hub,
            "ng-cert-submit",
            [
                indicator(ng, "[ipv4-addr:value = '203.0.113.45']", TLP2["green"]),
                indicator(ng, "[domain-name:value = 'c2.example.net']", TLP2["green"]),
                indicator(ng, "[url:value = 'http://c2.example.net/gate.php?id=1']", TLP2["amber"]),
                # What a rule must not take for its own syntax goes in as hex.
                indicator(ng, "[url:value = 'http://c2.example.net/a;b|c\"d(e)']", TLP2["green"]),
            ],
        )
        login = ("--url", hub.base_url, "--user", "gh-cert-read")
        password = hub.password("gh-cert-read")
        status, err = await run_cli(
            "pull",
            "region-west-africa",
            *login,
            "--out",
            str(rules),
            "--format",
            "suricata",
            password=password,
        )
        assert status == 0, err
        written = rules.read_text()
        assert written.splitlines()[-1].startswith(COMPLETE)
        # An IP rule; DNS and TLS SNI for the domain; HTTP for the URL.
        assert len(lines(written)) == 4
        assert 'content:"/a|3B|b|7C|c|22|d(e)"' in written
        suricata_check(written, tmp_path)
        status, err = await run_cli(
            "pull",
            "region-west-africa",
            *login,
            "--out",
            str(ips),
            "--format",
            "txt",
            "--kind",
            "ipv4",
            "--kind",
            "ipv6",
            "--tlp",
            "green",
            password=password,
        )
        assert status == 0, err
        assert lines(ips.read_text()) == ["203.0.113.45"]
        assert "1 values from 1 objects" in err

        # A refusal (a level that does not exist) changes nothing, and says why.
        status, err = await run_cli(
            "pull",
            "region-west-africa",
            *login,
            "--out",
            str(ips),
            "--format",
            "txt",
            "--kind",
            "ipv4",
            "--tlp",
            "purple",
            password=password,
        )
        assert status == 1 and "tlp='purple'" in err, err
        assert lines(ips.read_text()) == ["203.0.113.45"]

    # Nor does a hub that cannot be reached.
    gone = ("--url", f"http://127.0.0.1:{free_port()}", "--user", "gh-cert-read")
    status, err = await run_cli(
        "pull",
        "region-west-africa",
        *gone,
        "--out",
        str(rules),
        "--format",
        "suricata",
        "--retry-for",
        "1",
        password=password,
    )
    assert status == 3, err
    assert rules.read_text() == written
    assert not list(tmp_path.glob(".*.part"))
