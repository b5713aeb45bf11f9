"""The live stream (Server-Sent Events) against the real server on both buses: resumable
with no gap and no duplicate while objects keep arriving, only what the reader may see,
and a reader that stops reading is disconnected cleanly and can resume."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from taxii2client.v21 import as_pages

from hub.api.keys import VIEW
from hub.api.stream import STREAMS
from hub.store.view import ObjectQuery, Page
from tests.hubs import RunningHub, collection, running_hub, submit
from tests.stixdata import TLP2

SENDER, READER, FEED = "ke-cirt-submit", "rw-csirt-read", "region-east-africa"
TAXII = "application/taxii+json;version=2.1"
SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")


def addresses(start: int, count: int) -> list[dict[str, Any]]:
    """`count` TLP:GREEN IPv4 observables, a cheap object to send by the thousand."""
    base = int(ipaddress.IPv4Address("10.0.0.0")) + start
    return [
        {
            "type": "ipv4-addr",
            "spec_version": "2.1",
            "id": f"ipv4-addr--{_uuid5(str(ipaddress.IPv4Address(base + i)))}",
            "value": str(ipaddress.IPv4Address(base + i)),
            "object_marking_refs": [TLP2["green"]],
        }
        for i in range(count)
    ]


def _uuid5(value: str) -> uuid.UUID:
    """The id stix2 would compute: UUIDv5 in the STIX SCO namespace over the value."""
    return uuid.uuid5(SCO_NAMESPACE, f'{{"value":"{value}"}}')


@dataclass
class Event:
    id: str
    kind: str
    data: dict[str, Any]


def stream_url(hub: RunningHub, alias: str) -> str:
    return f"{hub.base_url}/api/v1/streams/{alias}"


def auth(hub: RunningHub, username: str) -> dict[str, str]:
    """The Authorization header of `username` (HTTP Basic)."""
    return {"Authorization": aiohttp.encode_basic_auth(username, hub.password(username))}


async def events(response: aiohttp.ClientResponse) -> AsyncIterator[Event]:
    """Parse an SSE body as a browser's EventSource would (comments skipped)."""
    fields: dict[str, str] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if not line:
            if "data" in fields:
                yield Event(
                    fields.get("id", ""),
                    fields.get("event", "message"),
                    orjson.loads(fields["data"]),
                )
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


async def read_events(
    hub: RunningHub,
    alias: str,
    username: str,
    until: int,
    *,
    last_id: str | None = None,
    query: str = "",
) -> list[Event]:
    headers = auth(hub, username) | ({"Last-Event-ID": last_id} if last_id else {})
    got: list[Event] = []
    timeout = aiohttp.ClientTimeout(total=240, sock_read=60)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(stream_url(hub, alias) + query, headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        async for event in events(response):
            got.append(event)
            if len(got) >= until:
                break  # the client goes away mid-stream
    return got


async def post(hub: RunningHub, objects: list[dict[str, Any]], sender: str = SENDER) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            hub.collection_url("inbox") + "objects/",
            data=orjson.dumps({"objects": objects}),
            headers=auth(hub, sender) | {"Content-Type": TAXII, "Accept": TAXII},
        ) as response,
    ):
        assert response.status == 202, await response.text()


@pytest.mark.timeout(600)
async def test_resume_with_last_event_id_has_no_gap_and_no_duplicate_over_10000_events(
    hub: RunningHub,
) -> None:
    total, batch = 10_000, 1_000
    sent = [addresses(n, batch) for n in range(0, total, batch)]
    expected = [o["id"] for chunk in sent for o in chunk]

    async def keep_sending() -> None:
        for chunk in sent:
            await post(hub, chunk)

    sender = asyncio.create_task(keep_sending())
    # A first reader leaves after 3,000 events while objects are still arriving ...
    first = await read_events(hub, FEED, READER, 3_000)
    # ... and resumes from the last id it saw; then once more by ?from=.
    second = await read_events(hub, FEED, READER, 4_000, last_id=first[-1].id)
    third = await read_events(hub, FEED, READER, total - 7_000, query=f"?from={second[-1].id}")
    await sender
    seen = [e.data["id"] for e in first + second + third]
    assert len(seen) == len(set(seen)) == total
    assert set(seen) == set(expected)  # nothing skipped, nothing twice
    assert all(e.kind == "object" for e in first)
    # In the order a TAXII reader pages through the same collection (the view's order).
    feed = collection(hub, FEED, READER)
    paged = await asyncio.to_thread(
        lambda: [
            o["id"] for p in as_pages(feed.get_objects, per_request=1000) for o in p["objects"]
        ]
    )
    assert seen == paged


async def test_readers_of_a_quiet_collection_cost_no_view_reads_and_still_get_news(
    hub: RunningHub,
) -> None:
    """Eight readers of a collection that nothing reaches make no page query of the view
    while another collection keeps receiving (each query per reader per wake-up grows with
    the analysts connected); the object that does come reaches all eight."""
    quiet, quiet_reader = "region-west-africa", "sn-cert-read"
    view = hub.app[VIEW]
    asked: Counter[str] = Counter()
    read_page = view.objects

    async def counted(query: ObjectQuery) -> Page:
        asked[query.collection] += 1
        return await read_page(query)

    view.objects = counted  # type: ignore[method-assign]
    readers = [asyncio.create_task(read_events(hub, quiet, quiet_reader, 1)) for _ in range(8)]
    async with asyncio.timeout(30):
        while hub.app[STREAMS].clients < 8 or asked[quiet] < 8:
            await asyncio.sleep(0.05)
    before = asked[quiet]
    for n in range(5):
        await post(hub, addresses(100 * n, 100))  # GREEN from Kenya: East Africa only
    await read_events(hub, FEED, READER, 500)
    await asyncio.sleep(2.5)  # idle wake-ups come every second
    assert asked[FEED] > 0
    assert asked[quiet] == before, "readers of an unchanged collection queried the view"
    news = addresses(900, 1)[0]
    await post(hub, [news], sender="ng-cert-submit")  # GREEN from Nigeria: West Africa
    async with asyncio.timeout(60):
        got = await asyncio.gather(*readers)
    assert [[e.data["id"] for e in events] for events in got] == [[news["id"]]] * 8


async def test_a_stream_shows_only_what_the_reader_may_see(
    tmp_path: Path, demo_secrets: Path, unique: str, bus_url: str
) -> None:
    """TLP:RED to one account of a member: its other account's stream never carries it."""
    rules = {"ke-cirt": {"recipients": {"red": ["account:rw-csirt-read"]}}}
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        sharing=rules,
        extra_readers={"rw-csirt-analyst": "rw-csirt"},
    ) as hub:
        red = addresses(0, 1)[0] | {"object_marking_refs": [TLP2["red"]]}
        amber = addresses(1, 1)[0] | {"object_marking_refs": [TLP2["amber"]]}
        green = addresses(2, 1)[0]
        assert (await submit(hub, SENDER, [red, amber, green])).success_count == 3
        named = await read_events(hub, "member-rw-csirt", "rw-csirt-read", 1)
        assert [e.data["id"] for e in named] == [red["id"]]
        # The other account of the same member: the member feed holds nothing it may read,
        # so its stream stays silent (heartbeats only) rather than showing the RED object.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(3):
                await read_events(hub, "member-rw-csirt", "rw-csirt-analyst", 1)
        region = await read_events(hub, FEED, "rw-csirt-analyst", 1)
        assert [e.data["id"] for e in region] == [green["id"]]
        # Another region's reader cannot open this feed at all.
        async with aiohttp.ClientSession() as session:
            async with session.get(stream_url(hub, FEED), headers=auth(hub, "ng-cert-read")) as r:
                assert r.status == 404
                assert "no collection" in (await r.json())["description"]
            async with session.get(stream_url(hub, FEED)) as r:
                assert r.status == 401
            async with session.get(
                stream_url(hub, FEED),
                headers=auth(hub, READER) | {"Last-Event-ID": "not-a-cursor"},
            ) as r:
                assert r.status == 400
                assert "not a cursor" in (await r.json())["description"]


async def test_a_reader_that_stops_reading_is_disconnected_and_resumes_without_loss(
    tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        "embedded",
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        stream_write_timeout=1.0,
        stream_buffer_bytes=16 * 1024,
    ) as hub:
        sent = addresses(0, 3_000)
        for start in range(0, len(sent), 1_000):
            assert (await submit(hub, SENDER, sent[start : start + 1_000])).success_count == 1_000
        # A raw client with a tiny receive buffer that reads nothing for a while.
        host, port = "127.0.0.1", int(hub.base_url.rsplit(":", 1)[1])
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, port))
        token = auth(hub, READER)["Authorization"]
        sock.sendall(
            f"GET /api/v1/streams/{FEED} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: {token}\r\nConnection: close\r\n\r\n".encode()
        )
        streams = hub.app[STREAMS]
        async with asyncio.timeout(30):
            while streams.clients == 0:
                await asyncio.sleep(0.1)
            while streams.clients != 0:  # the hub gives up on this reader by itself
                await asyncio.sleep(0.2)

        # What reached the client before the hub closed: whole events, then the end.
        def drain() -> bytes:
            received = b""
            sock.settimeout(10)
            while chunk := sock.recv(65536):
                received += chunk
            sock.close()
            return received

        received = await asyncio.to_thread(drain)
        body = received.split(b"\r\n\r\n", 1)[1]
        ids = [line[4:].decode() for line in body.split(b"\n") if line.startswith(b"id: ")]
        datas = [line[6:] for line in body.split(b"\n") if line.startswith(b"data: ")]
        complete = min(len(ids), len(datas))
        assert 0 < complete < len(sent), "the reader was not cut off mid-stream"
        # The client resumes from the last event it received whole: the rest, exactly.
        last = ids[complete - 1]
        rest = await read_events(hub, FEED, READER, len(sent) - complete, last_id=last)
        seen = [orjson.loads(d)["id"] for d in datas[:complete]] + [e.data["id"] for e in rest]
        assert seen == [o["id"] for o in sent]
