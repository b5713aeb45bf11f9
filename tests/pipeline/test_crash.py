"""Crash test, on both buses: SIGKILL the pipeline process while it routes, several times;
after a restart every object is in each entitled collection exactly once, with exactly one
decision each in an unbroken audit chain."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from hub.audit.chain import verify
from hub.audit.log import audit_records
from hub.bus import read_to
from hub.bus.url import open_bus
from tests.hubs import RunningHub, running_hub
from tests.stixdata import TLP2, indicator

# A crash test: it runs with the fault suite, deploy/test.sh's second step.
pytestmark = pytest.mark.faults

SUBMISSIONS, PER_SUBMISSION = 160, 4  # several batches of 64 intake records


def objects(identity: str, count: int, marking: str) -> list[dict[str, Any]]:
    return [
        indicator(identity, f"[ipv4-addr:value = '198.51.100.{i}']", marking, f"scanner {i}")
        for i in range(count)
    ]


def entitled(sender: str, level: str) -> list[str]:
    """Where the demo federation's rules route an object: GREEN to West Africa's feed (and
    the sender's own); gh-cert's AMBER to ng-cert and sn-cert by name."""
    if level == "green":
        return ["region-west-africa", f"member-{sender}"]
    return [f"member-{sender}", "member-ng-cert", "member-sn-cert"]


async def post_all(hub: RunningHub) -> dict[str, tuple[str, str]]:
    """Submit as every West African member, GREEN, and some of gh-cert's AMBER;
    object id → (sender, level)."""
    sent: dict[str, tuple[str, str]] = {}
    members = ["ng-cert", "gh-cert", "sn-cert"]
    async with aiohttp.ClientSession() as http:
        for n in range(SUBMISSIONS):
            member = members[n % 3]
            level = "amber" if member == "gh-cert" and n % 2 else "green"
            identity = hub.settings.federation.member(member).identity
            batch = objects(identity, PER_SUBMISSION, TLP2[level])
            username = f"{member}-submit"
            auth = aiohttp.encode_basic_auth(username, hub.password(username))
            headers = {
                "Authorization": auth,
                "Content-Type": "application/taxii+json;version=2.1",
                "Accept": "application/taxii+json;version=2.1",
            }
            async with http.post(
                hub.collection_url("inbox") + "objects/",
                data=orjson.dumps({"objects": batch}),
                headers=headers,
            ) as response:
                assert response.status == 202
            sent |= {o["id"]: (member, level) for o in batch}
    return sent


async def feed_counts(hub: RunningHub, aliases: list[str]) -> Counter[tuple[str, str]]:
    """(collection, object id) → how many records the feed topics hold, read from the bus."""
    settings = hub.settings
    bus = open_bus(settings.bus_url, settings.data_dir)
    await bus.start()
    try:
        topics = {settings.topics.feed(a): a for a in aliases}
        ends = await bus.end_offsets(list(topics))
        reader = bus.reader(list(topics), {tp: 0 for tp in ends})
        await reader.start()
        try:
            records = await read_to(reader, ends)
        finally:
            await reader.stop()
        return Counter((topics[r.topic], r.key.decode()) for r in records if r.key)
    finally:
        await bus.stop()


async def audit_chain(hub: RunningHub, decisions: int, deadline: float) -> list[dict[str, Any]]:
    """The audit chain, once it holds `decisions` records (before `deadline`)."""
    settings = hub.settings
    bus = open_bus(settings.bus_url, settings.data_dir)
    await bus.start()
    try:
        while len(chain := await audit_records(bus, settings.topics.audit)) < decisions:
            assert time.monotonic() < deadline, "decisions missing from the audit chain"
            await asyncio.sleep(0.5)
    finally:
        await bus.stop()
    return chain


def pipeline_process(hub: RunningHub, data_dir: Path) -> subprocess.Popen[bytes]:
    """A pipeline node in its own process; its log lines go to DATA_DIR/pipeline.log."""
    settings = hub.settings
    with open(data_dir / "pipeline.log", "ab") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hub",
                "serve",
                "--role",
                "pipeline",
                "--bus",
                settings.bus_url,
                "--data-dir",
                str(data_dir),
                "--topic-prefix",
                settings.topic_prefix,
                "--port",
                "0",
                "--partitions",
                str(settings.partitions),
                "--log-format",
                "text",
            ],
            stdout=log,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


async def test_sigkill_mid_batch_then_restart_delivers_each_object_exactly_once(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    data_dir = tmp_path / "shared"  # the API node in this process, the pipeline in another
    async with running_hub(
        bus_url, data_dir, demo_secrets, topic_prefix=f"c{unique}.", role="api"
    ) as hub:
        sent = await post_all(hub)
        aliases = ["region-west-africa", "member-ng-cert", "member-gh-cert", "member-sn-cert"]
        expected = Counter(
            {
                (alias, i): 1
                for i, (member, level) in sent.items()
                for alias in entitled(member, level)
            }
        )
        total = sum(expected.values())
        kills, partial = 0, []
        for _ in range(3):
            before = sum((await feed_counts(hub, aliases)).values())
            proc = pipeline_process(hub, data_dir)
            deadline = time.monotonic() + 60
            # Let it route some of the backlog, then kill it without warning.
            while sum((await feed_counts(hub, aliases)).values()) <= before:
                assert proc.poll() is None, "the pipeline process exited by itself"
                assert time.monotonic() < deadline, "the pipeline routed nothing"
                await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            routed = sum((await feed_counts(hub, aliases)).values())
            partial.append(routed)
            if routed >= total:
                break
        proc = pipeline_process(hub, data_dir)
        try:
            deadline = time.monotonic() + 120
            while sum((await feed_counts(hub, aliases)).values()) < total:
                assert time.monotonic() < deadline, "the restarted pipeline did not finish"
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)  # anything routed twice would show up by now
            counts = await feed_counts(hub, aliases)
            assert counts == expected
            chain = await audit_chain(hub, len(sent), deadline)
            assert verify(chain) == (len(sent), None)
            assert sorted(r["object_id"] for r in chain) == sorted(sent)
            # Killed while work was left: the backlog was only partly routed at the kill.
            assert kills >= 1 and partial[0] < total, partial
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
