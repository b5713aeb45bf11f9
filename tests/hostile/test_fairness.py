"""Fairness between members in the pipeline (issue 19): one member's heavy submissions do not
hold back another member's small one for more than a bounded time, and each member's own
submissions still come out in the order it sent them.

End to end, on both buses: a hostile member posts several submissions of the largest size
the hub takes, each of indicators with long STIX patterns (at the comparison limit) and
granular markings on many labels; another member then posts one small indicator.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from hub.api.keys import BUS
from hub.bus import read_to
from hub.federation import Federation
from tests.hubs import RunningHub, collection, member_identity, read_all, running_hub, submit
from tests.stixdata import TLP2, indicator

BODY = 1024 * 1024  # the test hub's max_content_length: each heavy submission is this large
HEAVY_SUBMISSIONS = 6
# Seconds from the small submission's POST to its object being readable, while the heavy
# ones are in the pipeline ahead of it (30 s or more of one core between them here):
# under 1 s is what it takes; before, it waited for every one of them.
BOUND = 8.0
HOSTILE, OTHER = "rw-csirt", "ng-cert"
COMPARISONS = 500  # in each heavy pattern; the hub's limit is 512 (max_pattern_comparisons)


def with_body_limit(federation: Federation) -> Federation:
    limits = replace(federation.hub.limits, max_content_length=BODY)
    return replace(federation, hub=replace(federation.hub, limits=limits))


@pytest.fixture
async def fair_hub(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> AsyncIterator[RunningHub]:
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"f{unique}.",
        adjust=with_body_limit,
    ) as hub:
        yield hub


def heavy_indicator(identity: str, n: int) -> dict[str, Any]:
    """An indicator of COMPARISONS address comparisons, and 200 labels each under its own
    granular selector: what costs the hub most per byte."""
    comparisons = COMPARISONS
    # AND and OR mixed differently in each: no two patterns share a structure, so none is
    # read from the validation cache (hub.stix.patterns), as a hostile member would make them.
    joins = [" AND " if random.random() < 0.5 else " OR " for _ in range(comparisons)]
    pattern = "".join(
        f"{joins[i] if i else ''}ipv4-addr:value = '10.{n % 250}.{i // 250}.{i % 250}'"
        for i in range(comparisons)
    )
    return {
        **indicator(identity, f"[{pattern}]", TLP2["green"], f"heavy {n}"),
        "labels": [f"label-{i}" for i in range(200)],
        "granular_markings": [
            {"marking_ref": TLP2["amber"], "selectors": [f"labels.[{i}]" for i in range(200)]}
        ],
    }


def heavy_submission(identity: str) -> list[dict[str, Any]]:
    """As many heavy indicators as fit in a body of BODY bytes (as taxii2-client writes it)."""
    objects: list[dict[str, Any]] = []
    size = len(json.dumps({"objects": []}))
    while True:
        candidate = heavy_indicator(identity, len(objects))
        size += len(json.dumps(candidate)) + 2
        if size > BODY - 1024:
            return objects
        objects.append(candidate)


async def readable_within(
    hub: RunningHub, alias: str, reader: str, obj_id: str, limit: float = 120
) -> float:
    """Seconds until `reader` finds `obj_id` in `alias` (polled); inf after `limit` seconds."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if await read_all(hub, alias, reader, id=obj_id):
            return time.monotonic() - start
        await asyncio.sleep(0.1)
    return float("inf")


async def assert_in_order(hub: RunningHub, sent: list[list[str]]) -> None:
    """Each submission's objects were routed after those of the one sent before it: in the
    order of the decisions topic (one partition; what the audit chain links), since a feed
    of several partitions (Kafka) has no one order for a reader to see."""
    bus = hub.app[BUS]
    ends = await bus.end_offsets([hub.settings.topics.decisions])
    reader = bus.reader([hub.settings.topics.decisions], {tp: 0 for tp in ends})
    await reader.start()
    try:
        decided = [orjson.loads(r.value)["object_id"] for r in await read_to(reader, ends)]
    finally:
        await reader.stop()
    where = {object_id: n for n, object_id in enumerate(decided)}
    assert all(i in where for ids in sent for i in ids), "an object was not routed"
    for before, after in itertools.pairwise(sent):
        assert max(where[i] for i in before) < min(where[i] for i in after), (
            "a submission was routed before the one its member sent before it"
        )


@pytest.mark.timeout(400)
async def test_heavy_submissions_do_not_hold_back_another_members_small_one(
    fair_hub: RunningHub,
) -> None:
    hub = fair_hub
    hostile = member_identity(hub, HOSTILE)
    theirs = collection(hub, "inbox", f"{HOSTILE}-submit")
    sent: list[list[str]] = []
    for _ in range(HEAVY_SUBMISSIONS):
        objects = heavy_submission(hostile)
        await asyncio.to_thread(theirs.add_objects, {"objects": objects}, wait_for_completion=False)
        sent.append([o["id"] for o in objects])

    small = indicator(member_identity(hub, OTHER), "[ipv4-addr:value = '198.51.100.23']")
    inbox = collection(hub, "inbox", f"{OTHER}-submit")
    posted = time.monotonic()
    await asyncio.to_thread(inbox.add_objects, {"objects": [small]}, wait_for_completion=False)
    waited = time.monotonic() - posted
    waited += await readable_within(hub, "region-west-africa", "gh-cert-read", small["id"])
    assert waited < BOUND, f"{OTHER}'s indicator took {waited:.1f} s to be readable"

    # Every heavy object went through, each submission after the one sent before it.
    last = sent[-1][-1]
    # The heavy ones get the bound this asserts (the poll gave up at 120 s before): they are
    # slow on a loaded machine, and what is checked here is that they all go through.
    assert await readable_within(hub, "region-east-africa", "ke-cirt-read", last, 300) < 300
    await assert_in_order(hub, sent)


async def test_a_members_own_submissions_come_out_in_order(fair_hub: RunningHub) -> None:
    hub = fair_hub
    identity = member_identity(hub, OTHER)
    inbox = collection(hub, "inbox", f"{OTHER}-submit")
    ids = []
    for n in range(6):
        objects = [
            indicator(identity, f"[ipv4-addr:value = '198.51.100.{n}']", name=f"{n}.{k}")
            for k in range(1 + 30 * (n % 2))  # small and larger ones, alternately
        ]
        await asyncio.to_thread(inbox.add_objects, {"objects": objects}, wait_for_completion=False)
        ids.append([o["id"] for o in objects])
    assert await readable_within(hub, "region-west-africa", "gh-cert-read", ids[-1][0]) < 60
    await assert_in_order(hub, ids)


@pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)
async def test_submissions_go_to_the_members_own_queue_or_shared_during_an_upgrade(
    bus_url: str, tmp_path: Path, demo_secrets: Path
) -> None:
    """A TAXII submission is written to its member's intake topic; with --shared-intake (API
    nodes upgraded while pipeline nodes of an earlier release run, which would refuse hub
    records on member topics) to `<prefix>intake`, as before. Either is processed."""
    for shared in (False, True):
        data_dir = tmp_path / f"shared-{shared}"
        async with running_hub(bus_url, data_dir, demo_secrets, shared_intake=shared) as hub:
            small = indicator(member_identity(hub, OTHER), "[ipv4-addr:value = '198.51.100.7']")
            assert (await submit(hub, f"{OTHER}-submit", [small])).success_count == 1
            topics = hub.settings.topics
            written = await hub.app[BUS].end_offsets([topics.intake, topics.member_intake(OTHER)])
            per_topic = {tp.topic: end for tp, end in written.items()}
            wanted = topics.intake if shared else topics.member_intake(OTHER)
            assert {t for t, end in per_topic.items() if end} == {wanted}
