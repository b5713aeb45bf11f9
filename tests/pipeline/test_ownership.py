"""Who owns an object id: the sender of the first decision on it in the `decisions` topic's
one order, so two pipeline nodes that both routed a first publication agree afterwards; the
hub for every alert it published. And the ownership stage's rules, over a small table of
owners: the owner and first publications pass, observables and the standard TLP definitions
are anyone's, a member's own identity is its own, everything else is refused as `not-owner`
without naming the owner."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from hub.bus import Bus, Message, Position, TopicPartition, TopicSpec
from hub.bus.url import open_bus
from hub.collections import ALERTS
from hub.federation import load_federation
from hub.model import Item, Submission
from hub.pipeline.emit import emit
from hub.pipeline.history import HUB, DeliveryHistory
from hub.pipeline.ownership import Ownership
from hub.signing.provenance import EXTENSION_ID
from hub.topics import Topics
from tests.conftest import ROOT
from tests.stixdata import TLP1_WHITE, TLP2, indicator

FEDERATION = load_federation(ROOT / "examples" / "federation.yaml")
NG = FEDERATION.member("ng-cert")
OBJECT = "indicator--0b6f3a43-6a4f-4c1b-9a7e-2f1d5c3b4a21"
ADDRESS = "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"


def submission(member: str, *objects: dict[str, Any]) -> Submission:
    items = tuple(Item(n, obj) for n, obj in enumerate(objects))
    sender = FEDERATION.member(member)
    return Submission(
        f"s-{member}", member, f"{member}-submit", "2026-11-29T08:00:00Z", "r", items, sender=sender
    )


async def readable(bus: Bus, published: list[Position]) -> None:
    """Until read_committed readers can see `published`. Kafka answers a transaction's commit
    once it is decided and writes the commit markers into the partitions just after, so a
    reader that asks for the ends at once may stop short of it (seen on a loaded machine)."""
    deadline = time.monotonic() + 30
    while True:
        ends = await bus.end_offsets(sorted({p.topic for p in published}))
        if all(ends.get(TopicPartition(p.topic, p.partition), 0) > p.offset for p in published):
            return
        assert time.monotonic() < deadline, f"not readable after 30 s: {published}, ends {ends}"
        await asyncio.sleep(0.05)


def decisions(routed: Submission, topics: Topics) -> list[Message]:
    return [m for m in emit(routed, topics, "2026-11-29T08:00:01Z") if m.topic == topics.decisions]


async def test_two_nodes_racing_on_a_first_publication_agree_on_one_owner(
    bus_url: str, tmp_path: Path, unique: str
) -> None:
    topics = Topics(f"o{unique}.")
    bus = open_bus(bus_url, tmp_path)
    await bus.start()
    started: list[DeliveryHistory] = []  # each stopped at the end, whatever happens
    try:
        await bus.ensure_topics([TopicSpec(topics.decisions, 1), TopicSpec(topics.feed(ALERTS), 2)])
        nodes = [DeliveryHistory(bus, topics.decisions, (topics.feed(ALERTS),)) for _ in "ab"]
        late = DeliveryHistory(bus, topics.decisions, (topics.feed(ALERTS),))
        started += [*nodes, late]
        for node in nodes:
            await node.catch_up()
        first = {"id": OBJECT, "type": "indicator"}
        by_gh, by_ng = submission("gh-cert", first), submission("ng-cert", first)
        # Each node routes one member's first publication of the id in its own batch...
        nodes[0].record(by_gh)
        nodes[1].record(by_ng)
        assert [n.owner(OBJECT) for n in nodes] == ["gh-cert", "ng-cert"]
        # ... and ng-cert's node commits first: the topic's order decides, for both.
        published = await bus.publish(decisions(by_ng, topics) + decisions(by_gh, topics))
        # An alert the hub published is the hub's.
        alert = b"grouping--6aeab96f-15d1-5008-adf4-91173ba24433"
        published += await bus.publish([Message(topics.feed(ALERTS), orjson.dumps({}), key=alert)])
        await readable(bus, published)
        for node in nodes:
            await node.catch_up()
        assert [n.owner(OBJECT) for n in nodes] == ["ng-cert", "ng-cert"]
        assert [n.owner(alert.decode()) for n in nodes] == [HUB, HUB]
        # A node started later reads the same from the topic.
        await late.catch_up()
        assert (late.owner(OBJECT), late.owner(alert.decode())) == ("ng-cert", HUB)
    finally:
        for node in started:
            await node.stop()
        await bus.stop()


class Owners(dict[str, str]):
    """A table of owners, as the delivery history would hold them."""

    def owner(self, object_id: str) -> str | None:
        return self.get(object_id)


OWNERS = Owners({OBJECT: "gh-cert", ADDRESS: "gh-cert", NG.identity: "gh-cert"})
STAGE = Ownership(FEDERATION, OWNERS)
SCO = {"type": "ipv4-addr", "spec_version": "2.1", "id": ADDRESS, "value": "198.51.100.3"}
TLP_WHITE = {
    "type": "marking-definition",
    "spec_version": "2.1",
    "id": TLP1_WHITE,
    "created": "2017-01-20T00:00:00.000Z",
    "definition_type": "tlp",
    "definition": {"tlp": "white"},
}


def version_of(object_id: str, **changes: Any) -> dict[str, Any]:
    return {**indicator(NG.identity, "[ipv4-addr:value = '203.0.113.9']", TLP2["green"]),
            "id": object_id, **changes}  # fmt: skip


@pytest.mark.parametrize(
    ("sender", "obj", "words"),
    [
        ("gh-cert", version_of(OBJECT, revoked=True), None),  # the owner
        ("ng-cert", version_of("indicator--7d0b9f52-8c1e-4f0a-b7c3-1e2d3f4a5b6c"), None),
        ("ng-cert", SCO, None),  # the same address, reported by another member
        ("ng-cert", TLP_WHITE, None),  # provenance holds it to the standard text
        ("ng-cert", {"type": "identity", "id": NG.identity}, None),  # its own identity
        ("ng-cert", version_of(OBJECT), "first published through the hub by another member"),
        ("ng-cert", version_of(OBJECT, revoked=True), "another member"),
        ("ng-cert", {**SCO, "revoked": True}, "another member"),
        ("ng-cert", {"type": "extension-definition", "id": EXTENSION_ID}, "the hub publishes"),
        ("gh-cert", {"type": "identity", "id": FEDERATION.hub.identity}, "the hub publishes"),
    ],
    ids=[
        "owner",
        "first publication",
        "observable",
        "tlp definition",
        "own identity",
        "new version",
        "revocation",
        "revoked observable",
        "extension-definition",
        "hub identity",
    ],
)
def test_the_stage_refuses_versions_of_what_another_owns(
    sender: str, obj: dict[str, Any], words: str | None
) -> None:
    [item] = STAGE(submission(sender, obj)).items
    if words is None:
        assert item.refusal is None, item.refusal
        return
    assert item.refusal is not None and item.refusal.reason == "not-owner"
    assert words in item.refusal.message, item.refusal.message
    assert "gh-cert" not in item.refusal.message  # the owner is never named
