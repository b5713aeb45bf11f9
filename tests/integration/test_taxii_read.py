"""The TAXII 2.1 read side driven by OASIS's taxii2-client over MITRE ATT&CK for ICS, twice
versioned (3,652 object versions), on both buses: every endpoint, every filter, paging."""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from typing import Any

import aiohttp
import orjson
import pytest
from taxii2client.v21 import Collection, as_pages

from hub.api.keys import BUS, FOLLOWER
from hub.bus import Message
from tests.hubs import RunningHub
from tests.stixdata import TLP2, oasis_errors_of_all, shared_objects

READER, SUBMITTER, FEED = "ke-cirt-read", "ke-cirt-submit", "member-ke-cirt"
CHUNK = 1000


def attack_in_two_versions() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """ATT&CK for ICS as published, and a later version of every object."""
    first = shared_objects("mitre-attack/ics-attack-18.1.json")
    later = []
    for obj in first:
        if "modified" not in obj:
            continue  # marking-definitions have no versions
        newer = copy.deepcopy(obj)
        newer["modified"] = "2026-11-20T00:00:00.000Z"
        later.append(newer)
    return first, later


def collection(hub: RunningHub, username: str, alias: str = FEED) -> Collection:
    return Collection(hub.collection_url(alias), user=username, password=hub.password(username))


async def submit_all(hub: RunningHub, objects: list[dict[str, Any]]) -> None:
    inbox = collection(hub, SUBMITTER, "inbox")
    for start in range(0, len(objects), CHUNK):
        status = await asyncio.to_thread(
            inbox.add_objects,
            {"objects": objects[start : start + CHUNK]},
            poll_interval=0.05,
            timeout=300,
        )
        assert status.status == "complete" and status.failure_count == 0, status.failures[:3]


def walk(feed: Collection, per_request: int, **filters: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for page in as_pages(feed.get_objects, per_request=per_request, **filters):
        seen += page.get("objects", [])
    return seen


def without_provenance(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    extensions = {
        k: v
        for k, v in out.pop("extensions", {}).items()
        if k != "extension-definition--d48c7d39-99e9-432b-b5db-b86b19be051f"
    }
    if extensions:
        out["extensions"] = extensions
    return out


@pytest.mark.timeout(600)
async def test_every_read_endpoint_through_taxii2_client(hub: RunningHub) -> None:
    first, later = attack_in_two_versions()
    await submit_all(hub, first)
    await submit_all(hub, later)
    feed = collection(hub, READER)
    total_versions = len(first) + len(later)
    assert total_versions >= 3000

    started = time.monotonic()
    latest = await asyncio.to_thread(walk, feed, 100)
    walk_seconds = time.monotonic() - started
    assert len(latest) == len({o["id"] for o in latest}) == len(first)
    by_id = {o["id"]: o for o in latest}
    for obj in later:
        assert by_id[obj["id"]]["modified"] == obj["modified"]
    everything = await asyncio.to_thread(walk, feed, 100, version="all")
    keys = [(o["id"], o.get("modified")) for o in everything]
    assert len(keys) == len(set(keys)) == total_versions
    print(f"taxii2-client walk of {len(latest)} objects in pages of 100: {walk_seconds:.2f} s")

    # Every filter, each against what the walk saw.
    patterns = await asyncio.to_thread(walk, feed, 500, type="attack-pattern")
    assert {o["id"] for o in patterns} == {
        i for i, o in by_id.items() if o["type"] == "attack-pattern"
    }
    some = sorted(by_id)[:5]
    picked = await asyncio.to_thread(feed.get_objects, id=",".join(some))
    assert sorted(o["id"] for o in picked["objects"]) == some
    oldest = await asyncio.to_thread(walk, feed, 500, version="first")
    assert {o["modified"] for o in oldest if o["id"] in {x["id"] for x in later}} != {
        "2026-11-20T00:00:00.000Z"
    }
    exact = await asyncio.to_thread(walk, feed, 1000, version="2026-11-20T00:00:00Z")
    assert len(exact) == len(later)
    assert len(await asyncio.to_thread(walk, feed, 1000, spec_version="2.1")) == len(first)
    assert await asyncio.to_thread(feed.get_objects, spec_version="2.0") in (
        {},
        {"more": False, "objects": []},
    )
    tenth_added = await _date_added_last(feed, 10)
    since = await asyncio.to_thread(walk, feed, 1000, added_after=tenth_added)
    assert len(since) == len(first) - 10

    # One object, its versions, the manifest.
    target = later[0]["id"]
    one = await asyncio.to_thread(feed.get_object, target)
    assert [o["modified"] for o in one["objects"]] == ["2026-11-20T00:00:00.000Z"]
    versions = await asyncio.to_thread(feed.object_versions, target)
    assert len(versions["versions"]) == 2 and versions["versions"] == sorted(versions["versions"])

    def walk_manifest() -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for chunk in as_pages(feed.get_manifest, per_request=250):
            entries += chunk.get("objects", [])
        return entries

    manifest = await asyncio.to_thread(walk_manifest)

    assert {m["id"] for m in manifest} == set(by_id)
    assert all(m["media_type"] == "application/stix+json;version=2.1" for m in manifest)

    # Delivered as sent (plus the hub's signature), and valid for OASIS's validator.
    # ATT&CK carries MITRE's statement marking but no TLP: ke-cirt's default (AMBER) is added.
    sent = dict(later[0])
    sent["object_marking_refs"] = [*sent.get("object_marking_refs", []), TLP2["amber"]]
    assert without_provenance(by_id[target]) == sent
    errors = [e for e in await asyncio.to_thread(oasis_errors_of_all, latest) if e]
    assert not errors, errors[:3]


async def _date_added_last(feed: Collection, limit: int) -> str:
    """The X-TAXII-Date-Added-Last header of the first page of `limit` objects."""
    response = await asyncio.to_thread(
        feed._conn.session.get,
        feed.objects_url,
        params={"limit": limit},
        headers={"Accept": "application/taxii+json;version=2.1"},
    )
    response.raise_for_status()
    return response.headers["X-TAXII-Date-Added-Last"]


async def test_paging_thousands_routed_in_one_instant_while_more_arrive(hub: RunningHub) -> None:
    """5,000 feed records stamped with one routing time, paged over HTTP 100 at a time while
    1,000 more (same instant) arrive; then polled with `added_after` as a client resumes:
    every object seen exactly once. Records go straight onto the feed topic, as the
    pipeline writes them, so that thousands truly share one `date_added` on the bus."""
    bus, follower = hub.app[BUS], hub.app[FOLLOWER]
    topic = hub.settings.topics.feed(FEED)
    stamp = b"2026-11-29T12:00:00.000000Z"

    def records(start: int, count: int) -> list[Message]:
        out = []
        for n in range(start, start + count):
            obj = {
                "type": "indicator",
                "spec_version": "2.1",
                "id": f"indicator--{uuid.UUID(int=n, version=4)}",
                "created": "2026-11-29T12:00:00.000Z",
                "modified": "2026-11-29T12:00:00.000Z",
                "pattern": f"[ipv4-addr:value = '10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}']",
                "pattern_type": "stix",
                "valid_from": "2026-11-29T12:00:00Z",
                "object_marking_refs": [TLP2["amber"]],
            }
            headers = (("submitter", b"ke-cirt"), ("date-added", stamp))
            out.append(Message(topic, orjson.dumps(obj), obj["id"].encode(), headers))
        return out

    expected = [m.key.decode() for m in records(0, 6000) if m.key]
    assert await follower.wait_for(await bus.publish(records(0, 5000)), timeout=60)
    url = hub.collection_url(FEED) + "objects/"
    headers = {
        "Accept": "application/taxii+json;version=2.1",
        "Authorization": aiohttp.encode_basic_auth(READER, hub.password(READER)),
    }

    async def arrive() -> None:
        for start in range(5000, 6000, 100):
            await bus.publish(records(start, 100))
            await asyncio.sleep(0.05)

    seen: list[str] = []
    async with aiohttp.ClientSession(headers=headers) as session:

        async def page(params: dict[str, str]) -> tuple[dict[str, Any], str | None]:
            async with session.get(url, params=params) as response:
                assert response.status == 200, await response.text()
                return await response.json(content_type=None), response.headers.get(
                    "X-TAXII-Date-Added-Last"
                )

        arriving = asyncio.create_task(arrive())
        params, last_added = {"limit": "100"}, None
        while True:
            envelope, added = await page(params)
            seen += [o["id"] for o in envelope.get("objects", [])]
            last_added = added or last_added
            if not envelope.get("more"):
                break
            params = {"limit": "100", "next": envelope["next"]}
        await arriving
        await asyncio.sleep(1.0)  # the view takes in the last records
        # Resume as a polling client does: what was added after the last one seen.
        params = {"limit": "100", "added_after": last_added or ""}
        while True:
            envelope, added = await page(params)
            seen += [o["id"] for o in envelope.get("objects", [])]
            if not envelope.get("more"):
                break
            params = {"limit": "100", "next": envelope["next"]}
    assert len(seen) == len(set(seen)), "an object was seen twice"
    assert sorted(seen) == sorted(expected), f"{len(set(expected) - set(seen))} never seen"
