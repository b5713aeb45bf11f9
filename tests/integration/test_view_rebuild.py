"""The materialized view is only a view: deleted, it is rebuilt from the topics and gives
the same TAXII answers; a second API node builds its own from the same topics and serves
the same data. On both buses, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import stix2
from taxii2client.v21 import Collection, Status, as_pages

from tests.hubs import RunningHub, member_identity, running_hub, submit
from tests.stixdata import TLP2, incident_report, shared_objects

READER, FEED = "gh-cert-read", "region-west-africa"


def comparable(found: dict[str, Any]) -> dict[str, Any]:
    """Answers as two views must agree on them: the same objects and versions, order aside.
    Each view numbers what it applies in its own order (Kafka partitions interleave
    differently) and its `date_added` is when that view added the object (TAXII 2.1: "the
    date and time this object was added"), kept strictly increasing per view, so it differs
    between views as the interleaving does."""

    def key(o: dict[str, Any]) -> tuple[str, str]:
        return (o["id"], o.get("modified") or o.get("version") or "")

    out = {}
    for name, value in found.items():
        if name in ("objects", "all versions", "manifest"):
            value = sorted(value, key=key)
        if name == "manifest":
            value = [{k: v for k, v in m.items() if k != "date_added"} for m in value]
        out[name] = value
    return out


def differences(got: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Where two nodes' comparable answers differ, endpoint by endpoint (empty if nowhere)."""
    a, b = comparable(got), comparable(expected)
    out = []
    for name in b:
        if a[name] != b[name]:
            if isinstance(b[name], list) and len(a[name]) == len(b[name]):
                first = next(
                    i for i, (x, y) in enumerate(zip(a[name], b[name], strict=True)) if x != y
                )
                out.append(f"{name}[{first}]: {a[name][first]} != {b[name][first]}")
            else:
                out.append(f"{name}: {len(a[name])} entries, expected {len(b[name])}")
    return out


async def answers(hub: RunningHub) -> dict[str, Any]:
    """What a reader gets from every read endpoint, cursors aside (they name the view)."""
    feed = Collection(hub.collection_url(FEED), user=READER, password=hub.password(READER))

    def read() -> dict[str, Any]:
        objects = [o for p in as_pages(feed.get_objects, per_request=50) for o in p["objects"]]
        every = [
            o
            for p in as_pages(feed.get_objects, per_request=50, version="all")
            for o in p["objects"]
        ]
        manifest = [o for p in as_pages(feed.get_manifest, per_request=50) for o in p["objects"]]
        if not objects:  # a view still rebuilding may hold nothing yet
            return {"objects": [], "all versions": every, "manifest": manifest}
        target = min(o["id"] for o in objects)
        return {
            "objects": objects,
            "all versions": every,
            "manifest": manifest,
            "one": feed.get_object(target)["objects"],
            "versions": feed.object_versions(target)["versions"],
        }

    return await asyncio.to_thread(read)


async def fill(hub: RunningHub) -> str:
    """A GREEN incident report, 200 ATT&CK objects and a later version of the incident from
    ng-cert; the first submission's status id."""
    identity = member_identity(hub, "ng-cert")
    report = incident_report(identity, "ngCERT", TLP2["green"])
    attack = [
        dict(o, object_marking_refs=[*o.get("object_marking_refs", []), TLP2["green"]])
        for o in shared_objects("mitre-attack/ics-attack-18.1.json")
        if o["type"] in {"attack-pattern", "course-of-action", "malware", "intrusion-set"}
        or o["type"] == "campaign"
    ][:200]
    later = json.loads(stix2.parse(report[1]).new_version(description="Contained.").serialize())
    status = await submit(hub, "ng-cert-submit", report + attack)
    assert status.success_count == len(report) + len(attack)
    again = await submit(hub, "ng-cert-submit", [later])
    assert again.success_count == 1, again.failures
    return status.id


async def caught_up(hub: RunningHub, expected: dict[str, Any]) -> dict[str, Any]:
    """The node's answers once its view holds as many versions as `expected` (or 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        got = await answers(hub)
        if len(got["all versions"]) >= len(expected["all versions"]):
            # Read again: a walk that overlapped the view's catching up may show an object
            # in two versions (each was the latest when its page was read).
            return await answers(hub)
        assert time.monotonic() < deadline, "the view never caught up with the topics"
        await asyncio.sleep(0.5)


async def test_a_deleted_view_is_rebuilt_from_the_topics_with_the_same_answers(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    data_dir, prefix = tmp_path / "data", f"t{unique}."
    async with running_hub(bus_url, data_dir, demo_secrets, topic_prefix=prefix) as hub:
        await fill(hub)
        before = await answers(hub)
        view_file = data_dir / f"view-{hub.settings.node_id}.sqlite3"
    assert view_file.exists()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{view_file}{suffix}").unlink(missing_ok=True)
    async with running_hub(bus_url, data_dir, demo_secrets, topic_prefix=prefix) as hub:
        after = await caught_up(hub, before)
    assert len(before["objects"]) == 204 and len(before["all versions"]) == 205
    assert not differences(after, before)


async def test_a_second_api_node_serves_the_same_data_from_its_own_view(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    data_dir, prefix = tmp_path / "data", f"t{unique}."  # embedded: one log, two views
    async with running_hub(
        bus_url, data_dir, demo_secrets, topic_prefix=prefix, node_id="node-a"
    ) as first:
        status_id = await fill(first)
        expected = await answers(first)
        async with running_hub(
            bus_url, data_dir, demo_secrets, topic_prefix=prefix, role="api", node_id="node-b"
        ) as second:
            got = await caught_up(second, expected)
            status = await asyncio.to_thread(
                Status,
                f"{second.api_root}status/{status_id}/",
                user="ng-cert-submit",
                password=second.password("ng-cert-submit"),
            )
    assert not differences(got, expected)
    assert status.status == "complete" and status.success_count == 204
