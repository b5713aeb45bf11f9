"""The audit trail: every routing decision chained, explained to its sender, and tamper-evident."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson

from hub.audit.chain import verify
from hub.audit.log import audit_records
from hub.bus.url import EMBEDDED_FILE, open_bus
from tests.hubs import RunningHub, member_identity, running_hub, submit
from tests.stixdata import TLP2, incident_report

CLI = [sys.executable, "-m", "hub"]


def basic(hub: RunningHub, username: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(username, hub.password(username))}


async def chained(hub: RunningHub, count: int) -> list[dict]:
    """The audit records once at least `count` are on the bus."""
    settings = hub.settings
    bus = open_bus(settings.bus_url, settings.data_dir)
    await bus.start()
    try:
        deadline = time.monotonic() + 30
        while len(records := await audit_records(bus, settings.topics.audit)) < count:
            assert time.monotonic() < deadline, f"only {len(records)} audit records"
            await asyncio.sleep(0.3)
        return records
    finally:
        await bus.stop()


async def test_each_routing_decision_is_chained_and_explained_to_its_sender_only(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    sharing = {
        "ng-cert": {"recipients": {"amber": ["member:ke-cirt", "member:sn-cert"]}},
        "sn-cert": {"receive": {"types": ["malware"]}},  # sn-cert's own business
    }
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}.", sharing=sharing
    ) as hub:
        green = incident_report(member_identity(hub, "ng-cert"), "ngCERT", TLP2["green"])
        amber = incident_report(member_identity(hub, "ng-cert"), "ngCERT", TLP2["amber"])[1:]
        assert (await submit(hub, "ng-cert-submit", green)).success_count == 4
        assert (await submit(hub, "ng-cert-submit", amber)).success_count == 3
        records = await chained(hub, 7)
        assert verify(records) == (7, None)
        assert [r["seq"] for r in records] == list(range(1, 8))
        assert [r["object_id"] for r in records] == [o["id"] for o in green + amber]
        policy = hub.settings.federation.policy_version
        assert {r["policy_version"] for r in records} == {policy}
        incident = records[5]
        verdicts = {v["member"]: v for v in incident["verdicts"]}
        assert (
            verdicts["ke-cirt"]["allowed"]
            and verdicts["ke-cirt"]["rule"] == "sharing.recipients.amber"
        )
        assert not verdicts["gh-cert"]["allowed"]
        assert "does not include gh-cert" in verdicts["gh-cert"]["reason"]
        assert {d["collection"] for d in incident["deliveries"]} == {
            "member-ng-cert",
            "member-ke-cirt",
        }

        url = f"{hub.base_url}/api/v1/explain/{amber[0]['id']}"
        async with aiohttp.ClientSession() as http:
            for username, expected in (("ng-cert-read", 200), ("ke-cirt-read", 404)):
                async with http.get(url, headers=basic(hub, username)) as response:
                    assert response.status == expected, username
                    body = await response.json(content_type=None)
                    if expected == 200:
                        # The records are the chain's, but the sender does not learn what
                        # another member's own filter says.
                        (decision,) = body["decisions"]
                        assert "does not want" in str(records[4])
                        assert "does not want" not in str(decision)
                        masked = {
                            "member": "sn-cert",
                            "allowed": False,
                            "rule": "sharing.receive",
                            "reason": "the recipient's own filter",
                        }
                        assert masked in decision["verdicts"]
                        assert {k: v for k, v in decision.items() if k != "verdicts"} == {
                            k: v for k, v in records[4].items() if k != "verdicts"
                        }
            bad = f"{hub.base_url}/api/v1/explain/not-an-id"
            async with http.get(bad, headers=basic(hub, "ng-cert-read")) as response:
                assert response.status == 400
                assert (
                    "not a STIX identifier"
                    in (await response.json(content_type=None))["description"]
                )


def cli_verify(data_dir: Path, prefix: str, *more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "audit", "verify", "--data-dir", str(data_dir), "--topic-prefix", prefix, *more],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_audit_verify_names_an_edited_a_removed_and_a_swapped_record(
    tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    prefix, data_dir = f"a{unique}.", tmp_path / "data"
    async with running_hub("embedded", data_dir, demo_secrets, topic_prefix=prefix) as hub:
        for member in ("gh-cert", "sn-cert"):
            report = incident_report(member_identity(hub, member), member, TLP2["green"])
            assert (await submit(hub, f"{member}-submit", report)).success_count == 4
        await chained(hub, 8)
    ok = cli_verify(data_dir, prefix)
    assert ok.returncode == 0 and "audit chain ok: 8 records" in ok.stdout, ok.stdout + ok.stderr
    head = ok.stdout.split("head: ")[1].strip()
    assert cli_verify(data_dir, prefix, "--head", head).returncode == 0

    export = subprocess.run(  # noqa: ASYNC221 (the hub is stopped; nothing else to do)
        [
            *CLI,
            "audit",
            "export",
            "--member",
            "sn-cert",
            "--data-dir",
            str(data_dir),
            "--topic-prefix",
            prefix,
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    exported = [orjson.loads(line) for line in export.stdout.splitlines()]
    assert [r["seq"] for r in exported] == [5, 6, 7, 8]
    assert {r["sender"] for r in exported} == {"sn-cert"}

    log = sqlite3.connect(data_dir / EMBEDDED_FILE)
    topic = f"{prefix}audit"
    rows = log.execute(
        "SELECT offset, value FROM records WHERE topic = ? ORDER BY offset", (topic,)
    ).fetchall()

    def tampered(change: str, *args: object) -> str:
        with log:
            log.execute(change, args)
        try:
            result = cli_verify(data_dir, prefix)
            assert result.returncode == 1, result.stdout
            return result.stdout
        finally:
            with log:  # put the log back as it was
                log.execute("DELETE FROM records WHERE topic = ?", (topic,))
                log.executemany(
                    "INSERT INTO records (topic, partition, offset, value, ts)"
                    " VALUES (?, 0, ?, ?, 0)",
                    [(topic, off, value) for off, value in rows],
                )

    edited = orjson.loads(rows[2][1]) | {"verdicts": []}  # someone hides who was denied
    out = tampered(
        "UPDATE records SET value = ? WHERE topic = ? AND offset = ?",
        orjson.dumps(edited),
        topic,
        rows[2][0],
    )
    assert "BROKEN at record 3 of 8: record seq 3 was edited" in out
    out = tampered("DELETE FROM records WHERE topic = ? AND offset = ?", topic, rows[4][0])
    assert "record seq 5 was removed" in out
    swap = (
        "UPDATE records SET value = CASE offset WHEN ? THEN ? ELSE ? END"
        " WHERE topic = ? AND offset IN (?, ?)"
    )
    out = tampered(swap, rows[5][0], rows[6][1], rows[5][1], topic, rows[5][0], rows[6][0])
    assert "BROKEN at record 6 of 8: record seq 7 is out of order" in out
    # Cutting the last records leaves a chain that holds together: the noted head shows it.
    last_two = (topic, rows[6][0], rows[7][0])
    cut = "DELETE FROM records WHERE topic = ? AND offset IN (?, ?)"
    with log:
        log.execute(cut, last_two)
    try:
        assert cli_verify(data_dir, prefix).returncode == 0  # alone, it cannot tell
        truncated = cli_verify(data_dir, prefix, "--head", head)
        assert truncated.returncode == 1
        assert "ends at seq 6, before the noted head seq 8" in truncated.stdout
    finally:
        with log:
            log.execute("DELETE FROM records WHERE topic = ?", (topic,))
            log.executemany(
                "INSERT INTO records (topic, partition, offset, value, ts) VALUES (?, 0, ?, ?, 0)",
                [(topic, off, value) for off, value in rows],
            )
    assert cli_verify(data_dir, prefix).returncode == 0  # restored
    log.close()
