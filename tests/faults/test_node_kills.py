"""The single-process hub on the embedded bus, killed (SIGKILL) at random moments while
members post, and stopped with SIGTERM: everything that got a 202 is there afterwards,
once; nothing the hub refused is."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from hub.demo import demo_federation
from tests.conftest import free_port
from tests.faults.support import (
    HubProcess,
    Tally,
    account_passwords,
    collection_ids,
    post_forever,
    report,
    settle,
)

POSTERS = ("ng-cert", "gh-cert")


async def start_posting(node: HubProcess, secrets: Path, tally: Tally, stop: asyncio.Event):
    federation, _ = demo_federation(secrets.parent)
    passwords = account_passwords(secrets)
    return [
        asyncio.create_task(
            post_forever(
                node.base_url,
                f"{member}-submit",
                passwords[f"{member}-submit"],
                federation.member(member).identity,
                tally,
                stop,
                per_request=3,
                pause=0.05,
            )
        )
        for member in POSTERS
        for _ in range(2)
    ]


async def region_ids(node: HubProcess, secrets: Path):
    password = account_passwords(secrets)["sn-cert-read"]
    return await collection_ids(node.base_url, "region-west-africa", "sn-cert-read", password)


@pytest.mark.timeout(600)
async def test_embedded_hub_killed_at_random_keeps_every_202(
    tmp_path: Path, demo_secrets: Path
) -> None:
    rng = random.Random(20261129)
    node = HubProcess(tmp_path / "hub", free_port())
    node.start(demo_secrets)
    await node.ready()
    tally, stop = Tally(), asyncio.Event()
    clients = await start_posting(node, demo_secrets, tally, stop)
    kills = 0
    for _ in range(5):
        await asyncio.sleep(rng.uniform(0.3, 2.0))
        node.kill()
        kills += 1
        node.start(demo_secrets)
        await node.ready()
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*clients)
    try:
        found = await settle(lambda: region_ids(node, demo_secrets), set(tally.accepted))
    finally:
        node.terminate()
    lost, duplicates, stray = report("embedded hub SIGKILL", tally, found, kills=kills)
    assert len(tally.accepted) > 100 and kills == 5
    assert (lost, duplicates, stray) == (0, 0, 0)


async def test_sigterm_drains_and_exits_in_time_keeping_every_202(
    tmp_path: Path, demo_secrets: Path
) -> None:
    node = HubProcess(tmp_path / "hub", free_port(), extra=("--drain-timeout", "5"))
    node.start(demo_secrets)
    await node.ready()
    tally, stop = Tally(), asyncio.Event()
    clients = await start_posting(node, demo_secrets, tally, stop)
    await asyncio.sleep(2.0)
    code, took = await asyncio.to_thread(node.terminate, 30.0)
    stop.set()
    await asyncio.gather(*clients)
    assert code == 0, node.output()
    # Requests in flight, then the units in hand, each get up to the drain time.
    assert took < 2 * 5 + 3, took
    assert "stopping (finishing in-flight work)" in node.output()
    node.start(demo_secrets)
    await node.ready()
    try:
        found = await settle(lambda: region_ids(node, demo_secrets), set(tally.accepted))
    finally:
        node.terminate()
    lost, duplicates, stray = report("embedded hub SIGTERM", tally, found, drain_s=round(took, 1))
    assert len(tally.accepted) > 50
    assert (lost, duplicates, stray) == (0, 0, 0)
