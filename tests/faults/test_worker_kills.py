"""The pipeline worker SIGKILLed at random moments, twelve times, while members stream
3,000 objects in, on both buses: afterwards every object is in each entitled collection
exactly once, with one decision each in an unbroken audit chain."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from pathlib import Path

import aiohttp
import orjson
import pytest

from hub.audit.chain import verify
from hub.bus.url import open_bus
from tests.faults.support import REPORT, TAXII, basic
from tests.hubs import RunningHub, running_hub
from tests.pipeline.test_crash import (
    audit_chain,
    entitled,
    feed_counts,
    objects,
    pipeline_process,
)
from tests.stixdata import TLP2

OBJECTS, PER_REQUEST, KILLS = 3_000, 25, 12
# Paced so the stream outlasts the twelve kills (a pipeline node takes a whole backlog in
# one unit on Kafka: without new work coming in, later kills would find nothing to break).
PAUSE = 0.45
ALIASES = ["region-west-africa", "member-ng-cert", "member-gh-cert", "member-sn-cert"]


async def stream_in(hub: RunningHub, sent: dict[str, tuple[str, str]]) -> None:
    """POST OBJECTS objects as the three West African members, GREEN and (gh-cert) AMBER."""
    members = ["ng-cert", "gh-cert", "sn-cert"]
    async with aiohttp.ClientSession() as http:
        for n in range(OBJECTS // PER_REQUEST):
            member = members[n % 3]
            level = "amber" if member == "gh-cert" and n % 2 else "green"
            batch = objects(
                hub.settings.federation.member(member).identity, PER_REQUEST, TLP2[level]
            )
            username = f"{member}-submit"
            headers = {
                "Authorization": basic(username, hub.password(username)),
                "Content-Type": TAXII,
                "Accept": TAXII,
            }
            while True:
                async with http.post(
                    hub.collection_url("inbox") + "objects/",
                    data=orjson.dumps({"objects": batch}),
                    headers=headers,
                ) as response:
                    if response.status == 202:
                        break
                    # Backpressure on a loaded machine: not stored, so send it again.
                    assert response.status in (429, 503), await response.text()
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            sent |= {o["id"]: (member, level) for o in batch}
            await asyncio.sleep(PAUSE)


@pytest.mark.timeout(600)
async def test_pipeline_killed_twelve_times_while_3000_objects_stream_in(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    rng = random.Random(11)
    data_dir = tmp_path / "shared"
    async with running_hub(
        bus_url, data_dir, demo_secrets, topic_prefix=f"w{unique}.", role="api"
    ) as hub:
        sent: dict[str, tuple[str, str]] = {}
        posting = asyncio.create_task(stream_in(hub, sent))
        routed_at_kill = []
        settings = hub.settings
        bus = open_bus(settings.bus_url, settings.data_dir)
        await bus.start()
        feeds = [settings.topics.feed(a) for a in ALIASES]

        async def feed_ends() -> int:
            # Grows with every routed record (and, on Kafka, each transaction's marker).
            return sum((await bus.end_offsets(feeds)).values())

        try:
            for _ in range(KILLS):
                before = await feed_ends()
                proc = pipeline_process(hub, data_dir)
                deadline = time.monotonic() + 60
                # Once this process has routed something, kill it at a random moment.
                while await feed_ends() <= before:
                    assert proc.poll() is None, "the pipeline process exited by itself"
                    if time.monotonic() > deadline:
                        intake = await bus.end_offsets(settings.topics.intakes(["x"]))
                        committed = await bus.committed(
                            f"{settings.topic_prefix}pipeline", settings.topics.intakes(["x"])
                        )
                        raise AssertionError(
                            f"the pipeline routed nothing; posted {len(sent)}, posting done "
                            f"{posting.done()}, intake {intake}, committed {committed}"
                        )
                    await asyncio.sleep(0.05)
                await asyncio.sleep(rng.uniform(0.0, 0.8))
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                routed_at_kill.append(await feed_ends())
        finally:
            await bus.stop()
        await posting
        expected = Counter(
            {
                (alias, i): 1
                for i, (member, level) in sent.items()
                for alias in entitled(member, level)
            }
        )
        total = sum(expected.values())
        proc = pipeline_process(hub, data_dir)
        try:
            deadline = time.monotonic() + 240
            while sum((await feed_counts(hub, ALIASES)).values()) < total:
                assert time.monotonic() < deadline, "the last pipeline did not finish"
                await asyncio.sleep(1.0)
            await asyncio.sleep(2)  # anything routed twice would show by now
            counts = await feed_counts(hub, ALIASES)
            chain = await audit_chain(hub, len(sent), deadline)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    lost = sum(1 for key in expected if key not in counts)
    REPORT.append(
        f"pipeline SIGKILL x{KILLS} ({bus_url.split(':')[0]}): accepted (202) {len(sent)}, "
        f"deliveries expected {total}, delivered {sum(counts.values())}, duplicates "
        f"{duplicates}, lost {lost}; routed at each kill {routed_at_kill}"
    )
    assert len(sent) == OBJECTS
    assert counts == expected
    assert verify(chain) == (len(sent), None)
    # The kills fell while the pipeline was routing, nearly all with work left after them.
    assert len(routed_at_kill) == KILLS, routed_at_kill
    assert sum(r < total for r in routed_at_kill) >= KILLS - 3, routed_at_kill
