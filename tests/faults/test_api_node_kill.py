"""An API node SIGKILLed while a reader pages through a collection and a live stream is
open: after the node is back, the reader goes on with its `next` cursor and the stream
with `Last-Event-ID`, and each sees every object once, with no gap and no duplicate."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.api.test_stream import events
from tests.conftest import free_port
from tests.faults.support import REPORT, TAXII, HubProcess, account_passwords, basic, indicator
from tests.hubs import running_hub
from tests.stixdata import TLP2

FIRST, SECOND, PAGE = 1000, 500, 50


async def post(node: HubProcess, passwords: dict[str, str], identity: str, count: int) -> set[str]:
    headers = {
        "Authorization": basic("ng-cert-submit", passwords["ng-cert-submit"]),
        "Content-Type": TAXII,
        "Accept": TAXII,
    }
    ids: set[str] = set()
    async with aiohttp.ClientSession() as http:
        for start in range(0, count, 50):
            batch = [indicator(identity, TLP2["green"], start + i) for i in range(50)]
            async with http.post(
                f"{node.base_url}/taxii2/hub/collections/inbox/objects/",
                data=orjson.dumps({"objects": batch}),
                headers=headers,
            ) as response:
                assert response.status == 202, await response.text()
            ids |= {o["id"] for o in batch}
    return ids


class Reader:
    """sn-cert's reader paging through region-west-africa, `PAGE` objects a request."""

    def __init__(self, node: HubProcess, password: str) -> None:
        self.node, self.headers = (
            node,
            {"Authorization": basic("sn-cert-read", password), "Accept": TAXII},
        )
        self.seen: Counter[str] = Counter()
        self.next: str | None = None

    async def pages(self, count: int | None) -> bool:
        """Read `count` pages (None: to the end); whether there is more."""
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{self.node.base_url}/taxii2/hub/collections/", headers=self.headers
            ) as r:
                listing = await r.json(content_type=None)
            cid = next(
                c["id"] for c in listing["collections"] if c.get("alias") == "region-west-africa"
            )
            url = f"{self.node.base_url}/taxii2/hub/collections/{cid}/objects/"
            read = 0
            while count is None or read < count:
                params = {"limit": str(PAGE), **({"next": self.next} if self.next else {})}
                async with http.get(url, headers=self.headers, params=params) as r:
                    assert r.status == 200, await r.text()
                    envelope = await r.json(content_type=None)
                self.seen.update(o["id"] for o in envelope.get("objects", []))
                read += 1
                if not envelope.get("more"):
                    return False
                self.next = envelope["next"]
            return True


async def stream(node: HubProcess, password: str, got: list[Any], last_id: str | None) -> None:
    """Read region-west-africa's live stream into `got` until the connection ends."""
    headers = {"Authorization": basic("sn-cert-read", password)}
    if last_id:
        headers["Last-Event-ID"] = last_id
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    with contextlib.suppress(aiohttp.ClientError):
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(f"{node.base_url}/api/v1/streams/region-west-africa", headers=headers) as r,
        ):
            assert r.status == 200, await r.text()
            async for event in events(r):
                got.append(event)


async def until(predicate, what: str, timeout: float = 120.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.1)


@pytest.mark.timeout(600)
async def test_api_node_killed_while_a_reader_pages_and_a_stream_is_open(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    data_dir = tmp_path / "shared"
    prefix = f"a{unique}."
    async with running_hub(
        bus_url, data_dir, demo_secrets, topic_prefix=prefix, role="pipeline"
    ) as pipeline:
        node = HubProcess(data_dir, free_port(), bus_url=bus_url, role="api", topic_prefix=prefix)
        node.start(demo_secrets)
        await node.ready()
        passwords = account_passwords(demo_secrets)
        identity = pipeline.settings.federation.member("ng-cert").identity
        reader_password = passwords["sn-cert-read"]
        first = await post(node, passwords, identity, FIRST)
        events_seen: list[Any] = []
        streaming = asyncio.create_task(stream(node, reader_password, events_seen, None))
        await until(lambda: len({e.data["id"] for e in events_seen}) >= FIRST, "stream backlog")
        reader = Reader(node, reader_password)
        assert await reader.pages(FIRST // PAGE // 2)

        node.kill()  # mid-walk, with the stream open
        await asyncio.wait_for(streaming, 30)
        before_kill = len(events_seen)
        node.start(demo_secrets)
        await node.ready()
        second = await post(node, passwords, identity, SECOND)
        everything = first | second
        # The reader goes on with its cursor; the stream resumes from its last event id.
        resumed = asyncio.create_task(
            stream(node, reader_password, events_seen, events_seen[-1].id)
        )
        await until(lambda: len({e.data["id"] for e in events_seen}) >= len(everything), "stream")
        resumed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await resumed
        while await reader.pages(None):
            pass
        node.terminate()
    streamed = Counter(e.data["id"] for e in events_seen)
    REPORT.append(
        f"API node SIGKILL ({bus_url.split(':')[0]}): objects {len(everything)}; pager saw "
        f"{len(reader.seen)} ids, duplicates {sum(c - 1 for c in reader.seen.values())}; "
        f"stream saw {len(streamed)} ids ({before_kill} before the kill), duplicates "
        f"{sum(c - 1 for c in streamed.values())}"
    )
    assert set(reader.seen) == everything and max(reader.seen.values()) == 1
    assert set(streamed) == everything and max(streamed.values()) == 1
