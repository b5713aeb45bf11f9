"""Load against a running hub: member clients that POST, and readers on the live stream.

Both run in their own processes (a Python HTTP client tops out well below the hub on one
core, and must not share the hub's or the readers' GIL). Clients are closed-loop (each
connection posts its next bundle when the last is answered: the hub's maximum) or
open-loop (bundles leave on a schedule that makes a set object rate, whatever the hub
answers: how latency behaves at a given load). Times are wall-clock (`time.time()`), so
what a client sent and what a reader saw can be joined across processes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.workload import Generator

TAXII = "application/taxii+json;version=2.1"
# The collections the readers follow, and the account that reads each (demo federation).
READERS = {
    "public": "ng-cert-read",
    "region-west-africa": "ng-cert-read",
    "region-east-africa": "ke-cirt-read",
    "member-ng-cert": "ng-cert-read",
    "member-gh-cert": "gh-cert-read",
    "member-sn-cert": "sn-cert-read",
    "member-ke-cirt": "ke-cirt-read",
    "member-rw-csirt": "rw-csirt-read",
    "member-tz-cert": "tz-cert-read",
}
# The object's own id comes first in what the view serves (the hub keeps the sender's key
# order, and every object of the workload starts type, spec_version, id).
_OBJECT_ID = re.compile(rb'"id":"([a-z0-9-]+--[0-9a-f-]{36})"')
_EVENT_ID = re.compile(rb"(?m)^id: (\S+)$")


@dataclass(frozen=True)
class PostPlan:
    """What one client process does: for how long, at what rate (None: closed-loop)."""

    base_url: str
    passwords: dict[str, str]
    seed: int
    seconds: float
    connections: int
    rate: float | None  # objects/s from this process; None: as fast as the hub answers
    out: Path


@dataclass
class _Posts:
    requests: list[tuple[float, float, int, int]]  # sent, answered, status, objects
    accepted: dict[str, float]  # object id → when its POST was sent


async def _post(
    http: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    body: bytes,
    count: int,
    posts: _Posts,
) -> None:
    sent = time.time()
    try:
        async with http.post(url, data=body, headers=headers) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError):
        status = 0
    posts.requests.append((sent, time.time(), status, count))
    if status == 202:
        for match in _OBJECT_ID.finditer(body):
            posts.accepted[match.group(1).decode()] = sent


async def _client(plan: PostPlan, ready: Any, go: Any, start_at: Any) -> None:
    generator = Generator(plan.seed)
    bodies = generator.bodies()
    headers = {
        username: {
            "Authorization": aiohttp.encode_basic_auth(username, password),
            "Content-Type": TAXII,
            "Accept": TAXII,
        }
        for username, password in plan.passwords.items()
    }
    url = f"{plan.base_url}/taxii2/hub/collections/inbox/objects/"
    posts = _Posts([], {})
    connector = aiohttp.TCPConnector(limit=plan.connections)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=60)
    ) as http:
        # Log every account in once, untimed: the hub checks a password with scrypt once.
        for username in {s.username for s in generator.senders}:
            async with http.get(f"{plan.base_url}/taxii2/", headers=headers[username]) as r:
                await r.read()
        # Every client starts at the same moment, once all have logged in.
        ready.put(True)
        await asyncio.to_thread(go.wait)
        start = start_at.value
        await asyncio.sleep(max(0.0, start - time.time()))
        end = start + plan.seconds
        if plan.rate is None:

            async def connection() -> None:
                while time.time() < end:
                    sender, count, body = next(bodies)
                    await _post(http, url, headers[sender.username], body, count, posts)

            await asyncio.gather(*(connection() for _ in range(plan.connections)))
        else:
            in_flight: set[asyncio.Task[None]] = set()
            due = start
            while due < end:
                await asyncio.sleep(max(0.0, due - time.time()))
                sender, count, body = next(bodies)
                task = asyncio.create_task(
                    _post(http, url, headers[sender.username], body, count, posts)
                )
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                due += count / plan.rate
            if in_flight:
                await asyncio.gather(*in_flight)
    plan.out.write_bytes(orjson.dumps({"requests": posts.requests, "accepted": posts.accepted}))


def _client_main(plan: PostPlan, ready: Any, go: Any, start_at: Any) -> None:
    _run(_client(plan, ready, go, start_at))


def _run(coroutine) -> None:
    try:
        import uvloop

        uvloop.run(coroutine)
    except ImportError:
        asyncio.run(coroutine)


async def post(plans: list[PostPlan]) -> tuple[float, list[dict]]:
    """Run each plan in its own process, all starting together: when they started, and
    what each sent and got back."""
    context = multiprocessing.get_context("spawn")
    ready, go, start_at = context.Queue(), context.Event(), context.Value("d", 0.0)
    procs = [
        context.Process(target=_client_main, args=(plan, ready, go, start_at)) for plan in plans
    ]
    try:
        for proc in procs:
            proc.start()
        for _ in procs:
            await asyncio.to_thread(ready.get, True, 120)
        start_at.value = time.time() + 0.05
        go.set()
        for proc in procs:
            await asyncio.to_thread(proc.join)
            if proc.exitcode != 0:
                raise RuntimeError(f"a load client exited with {proc.exitcode}")
    finally:
        # An interrupted run (Ctrl-C, a failed client) stops the clients it started too.
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
    return start_at.value, [orjson.loads(plan.out.read_bytes()) for plan in plans]


class StreamReaders:
    """Readers following every collection's live stream from its start, in this process's
    event loop: each (object id, wall-clock time) a collection delivered, and when each
    object was first readable anywhere."""

    def __init__(self, base_url: str, passwords: dict[str, str]) -> None:
        self.base_url = base_url
        self.passwords = passwords
        self.seen: dict[str, list[tuple[str, float]]] = {alias: [] for alias in READERS}
        self.first: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        self._http = aiohttp.ClientSession(timeout=timeout)
        ids = await collection_ids(self._http, self.base_url, self.passwords)
        self._tasks = [asyncio.create_task(self._follow(a, ids[a])) for a in READERS]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    async def wait_for(self, ids: set[str], timeout: float) -> set[str]:
        """Until every id in `ids` was readable somewhere, or `timeout`; the ids still
        missing."""
        deadline = time.monotonic() + timeout
        while missing := {i for i in ids if i not in self.first}:
            if time.monotonic() > deadline:
                return missing
            ids = missing
            await asyncio.sleep(0.25)
        return set()

    async def _follow(self, alias: str, collection_id: str) -> None:
        """Follow one collection's stream, resuming after a close, until cancelled."""
        assert self._http is not None
        username = READERS[alias]
        password = self.passwords[username]
        headers = {"Authorization": aiohttp.encode_basic_auth(username, password)}
        seen, first = self.seen[alias], self.first
        url = f"{self.base_url}/api/v1/streams/{collection_id}"
        while True:
            try:
                async with self._http.get(url, headers=headers) as response:
                    response.raise_for_status()
                    pending = b""
                    async for chunk in response.content.iter_any():
                        now = time.time()
                        pending += chunk
                        cut = pending.rfind(b"\n\n")
                        if cut < 0:
                            continue
                        complete, pending = pending[: cut + 2], pending[cut + 2 :]
                        for line in complete.split(b"\n"):
                            if line.startswith(b"data: ") and (m := _OBJECT_ID.search(line)):
                                object_id = m.group(1).decode()
                                seen.append((object_id, now))
                                first.setdefault(object_id, now)
                        if events := _EVENT_ID.findall(complete):
                            headers["Last-Event-ID"] = events[-1].decode()
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.2)


async def collection_ids(
    http: aiohttp.ClientSession, base_url: str, passwords: dict[str, str]
) -> dict[str, str]:
    """Alias → TAXII collection id, found by discovery as each reader sees them."""
    found: dict[str, str] = {}
    for username in sorted(set(READERS.values())):
        headers = {
            "Authorization": aiohttp.encode_basic_auth(username, passwords[username]),
            "Accept": TAXII,
        }
        async with http.get(f"{base_url}/taxii2/hub/collections/", headers=headers) as response:
            response.raise_for_status()
            for collection in (await response.json(content_type=None))["collections"]:
                found[collection["alias"]] = collection["id"]
    return found
