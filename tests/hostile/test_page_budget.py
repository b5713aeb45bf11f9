"""A member that sends objects as large as intake takes cannot make a reader's answer, or
the API node's memory, as large as a page of them (issue 19): a TAXII page ends at the
hub's byte budget (`hub.limits.page_bytes`) as well as at its limit, with `more` and
`next` as usual; an object larger than the budget comes alone on its page; the manifest
and the versions list never read the objects; the live stream reads one budget at a time.

Memory is counted with Python's own allocation tracer (exact, not sampled): what the hub
process holds at its peak while it answers, with the reader in another process."""

from __future__ import annotations

import asyncio
import base64
import sys
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from taxii2client.v21 import as_pages

from hub.federation import Federation, FederationError, parse_federation
from tests.conftest import ROOT
from tests.hubs import RunningHub, collection, member_identity, running_hub, submit
from tests.stixdata import TLP2

pytestmark = [pytest.mark.timeout(300), pytest.mark.asyncio(loop_scope="module")]

ATTACKER, READER, FEED = "ng-cert-submit", "gh-cert-read", "region-west-africa"
TAXII = "application/taxii+json;version=2.1"
BUDGET = 4 * 1024 * 1024  # the default `page_bytes`, as README documents it
LARGE, HUGE = 1_500_000, 7_500_000  # description lengths: two fit a page, one is over it
ENVELOPE = 1024  # what an envelope adds to its objects: `more`, `next`, brackets, commas
SLACK = 1024 * 1024  # what else a process allocates meanwhile (requests, logs, heartbeats)
EXAMPLE = ROOT / "examples" / "federation.yaml"


def indicator(identity: str, n: int, size: int) -> dict[str, Any]:
    """A TLP:GREEN indicator whose description is `size` characters (the hubs here take 8 MiB
    objects, `max_object_bytes`)."""
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid5(uuid.NAMESPACE_URL, f'large-{n}')}",
        "created": "2026-11-29T08:00:00.000Z",
        "modified": "2026-11-29T08:00:00.000Z",
        "name": f"large indicator {n}",
        "description": f"{n}:" + "A" * size,
        "pattern": f"[ipv4-addr:value = '198.51.100.{n}']",
        "pattern_type": "stix",
        "valid_from": "2026-11-29T08:00:00Z",
        "created_by_ref": identity,
        "object_marking_refs": [TLP2["green"]],
    }


@dataclass(frozen=True)
class Filled:
    """The hub, and what the attacker sent, in the order sent: (id, modified) per version."""

    hub: RunningHub
    versions: list[tuple[str, str]]
    huge: str  # the id of the object larger than the page budget
    versioned: str  # the id of the object sent in four versions

    @property
    def latest(self) -> list[tuple[str, str]]:
        """Each object's last version, in the order those arrived (as TAXII lists them)."""
        last = dict(self.versions)
        return [v for v in self.versions if last[v[0]] == v[1]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def filled(tmp_path_factory: pytest.TempPathFactory, demo_secrets: Path):
    """A hub with the default budget, into which a member sent a dozen 1.5 MB objects, one
    of 7.5 MB, and three later versions of its first object."""
    data_dir = tmp_path_factory.mktemp("hub") / "data"
    async with running_hub("embedded", data_dir, demo_secrets, adjust=with_limits()) as hub:
        me = member_identity(hub, "ng-cert")
        large = [indicator(me, n, LARGE) for n in range(12)]
        huge = indicator(me, 12, HUGE)
        later = [
            {**large[0], "modified": f"2026-12-0{d + 1}T08:00:00.000Z", "description": "B" * LARGE}
            for d in range(3)
        ]
        # Each request under the default 10 MiB.
        for batch in (large[:6], large[6:], [huge], later):
            status = await submit(hub, ATTACKER, batch)
            assert status.success_count == len(batch), status.failures
        versions = [(o["id"], o["modified"]) for o in (*large, huge, *later)]
        yield Filled(hub, versions, huge["id"], large[0]["id"])


def auth(hub: RunningHub, username: str = READER) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(username, hub.password(username))}


async def pages(
    hub: RunningHub, path: str, query: dict[str, str] | None = None, **headers: str
) -> list[tuple[int, dict[str, Any]]]:
    """Every page of a paged TAXII answer, following `next`: (body bytes, envelope) each."""
    url = hub.collection_url(FEED) + path
    found: list[tuple[int, dict[str, Any]]] = []
    params = dict(query or {})
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(
                url, params=params, headers=auth(hub) | {"Accept": TAXII, **headers}
            ) as response:
                assert response.status == 200, await response.text()
                body = await response.read()
            envelope = orjson.loads(body)
            found.append((len(body), envelope))
            if not envelope.get("more"):
                return found
            assert envelope["next"], envelope
            params = {**params, "next": envelope["next"]}


def version_of(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["id"], obj["modified"]


def assert_within_budget(found: list[tuple[int, dict[str, Any]]], budget: int = BUDGET) -> None:
    """Each page's body is within the budget, or holds one object alone."""
    for size, envelope in found:
        alone = len(envelope.get("objects", [])) == 1
        assert size <= budget + ENVELOPE or alone, (size, len(envelope["objects"]))


async def test_a_page_of_large_objects_ends_at_the_byte_budget_and_next_reads_them_all(
    filled: Filled,
) -> None:
    hub = filled.hub
    for encoding in ("identity", "gzip"):
        found = await pages(hub, "objects/", **{"Accept-Encoding": encoding})
        assert_within_budget(found)
        assert len(found) > 1 and all(e["more"] for _, e in found[:-1])
        seen = [version_of(o) for _, e in found for o in e["objects"]]
        assert seen == filled.latest  # each object once, in the order added
        # Several objects share a page where they fit; the huge one comes alone.
        assert max(len(e["objects"]) for _, e in found) > 1
        (holding,) = [e for _, e in found if filled.huge in {o["id"] for o in e["objects"]}]
        assert len(holding["objects"]) == 1
    # `limit` still ends a page first when it is the smaller bound.
    found = await pages(hub, "objects/", {"limit": "1"})
    assert [len(e["objects"]) for _, e in found] == [1] * len(filled.latest)


async def test_taxii2_client_pages_through_large_objects_in_bounded_pages(filled: Filled) -> None:
    feed = collection(filled.hub, FEED, READER)

    def walk() -> list[dict[str, Any]]:
        return list(as_pages(feed.get_objects, per_request=1000, version="all"))

    envelopes = await asyncio.to_thread(walk)
    for envelope in envelopes:
        objects = envelope.get("objects", [])
        assert len(objects) == 1 or sum(len(orjson.dumps(o)) for o in objects) <= BUDGET
    seen = [version_of(o) for e in envelopes for o in e.get("objects", [])]
    assert sorted(seen) == sorted(filled.versions) and len(set(seen)) == len(seen)


async def test_an_object_by_id_with_large_versions_is_paged_at_the_byte_budget(
    filled: Filled,
) -> None:
    found = await pages(filled.hub, f"objects/{filled.versioned}/", {"match[version]": "all"})
    assert_within_budget(found)
    assert len(found) > 1
    seen = [version_of(o) for _, e in found for o in e["objects"]]
    assert seen == [v for v in filled.versions if v[0] == filled.versioned]


async def held_at_peak(answer: Awaitable[Any]) -> tuple[Any, int]:
    """What `answer` returns, and the most memory the process held beyond its start while
    it ran (every thread, the hub's SQLite reads included)."""
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        result = await answer
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak - start


async def test_the_manifest_and_versions_list_large_objects_without_reading_them(
    filled: Filled,
) -> None:
    hub = filled.hub
    manifest, held = await held_at_peak(pages(hub, "manifest/"))
    # Not even one of the objects listed is held in memory to answer.
    assert held < LARGE, held
    listed = [(o["id"], o["version"]) for _, e in manifest for o in e["objects"]]
    assert listed == filled.latest
    # Paging by limit reads the same list, each entry once.
    by_two = await pages(hub, "manifest/", {"limit": "2"})
    assert [(o["id"], o["version"]) for _, e in by_two for o in e["objects"]] == listed

    versions, held = await held_at_peak(pages(hub, f"objects/{filled.versioned}/versions/"))
    assert held < LARGE, held
    assert [v for _, e in versions for v in e["versions"]] == [
        m for i, m in filled.versions if i == filled.versioned
    ]


def cursor_seq(cursor: str) -> int:
    """The ingest sequence in an event id (a TAXII cursor, `v1:<epoch>:<seq>`)."""
    return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).split(b":")[-1])


# The reader of the stream, in its own process so that only the hub's memory is counted:
# prints each event's id, the size of its data and the object's id and version, until it
# has seen `count` events.
STREAM_READER = """
import http.client, json, sys
host, port, path, authorization, count = sys.argv[1:6]
conn = http.client.HTTPConnection(host, int(port), timeout=120)
conn.request("GET", path, headers={"Authorization": authorization})
response = conn.getresponse()
assert response.status == 200, response.status
seen, event_id = 0, ""
while seen < int(count):
    line = response.readline()
    if line.startswith(b"id: "):
        event_id = line[4:].strip().decode()
    elif line.startswith(b"data: "):
        obj = json.loads(line[6:])
        print(event_id, len(line) - 7, obj["id"], obj["modified"], flush=True)
        seen += 1
"""


async def test_the_stream_delivers_large_objects_reading_one_budget_at_a_time(
    filled: Filled,
) -> None:
    hub = filled.hub
    host, port = hub.base_url.removeprefix("http://").split(":")
    reader = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", STREAM_READER, host, port, f"/api/v1/streams/{FEED}"),
        *(auth(hub)["Authorization"], str(len(filled.versions))),
        stdout=asyncio.subprocess.PIPE,
    )
    (out, _), held = await held_at_peak(reader.communicate())
    assert reader.returncode == 0
    events = [line.split() for line in out.decode().splitlines()]
    # Every version once, whole, in the order it arrived, and ids that resume in order.
    assert [(obj, version) for _, _, obj, version in events] == filled.versions
    seqs = [cursor_seq(cursor) for cursor, *_ in events]
    assert seqs == sorted(set(seqs))
    sizes = [int(size) for _, size, *_ in events]
    # The hub held one read of the view at a time (the budget, or the one object larger
    # than it) and a few pieces of an event on their way out: not the collection.
    bound = max(BUDGET, max(sizes)) + 4 * hub.settings.stream_buffer_bytes + SLACK
    assert held < bound < sum(sizes) / 2, (held, bound, sum(sizes))


def with_limits(**limits: int) -> Callable[[Federation], Federation]:
    """The federation with these `hub.limits` (objects above the default size, a budget)."""

    def adjust(federation: Federation) -> Federation:
        changed = replace(federation.hub.limits, **{"max_object_bytes": 8 * 2**20, **limits})
        return replace(federation, hub=replace(federation.hub, limits=changed))

    return adjust


async def test_the_budget_is_the_federation_files_page_bytes(
    tmp_path: Path, demo_secrets: Path
) -> None:
    text = EXAMPLE.read_text().replace("page_bytes: 4194304", "page_bytes: 65536", 1)
    assert parse_federation(text, "fed.yaml").hub.limits.page_bytes == 65536
    with pytest.raises(FederationError, match=r"hub\.limits\.page_bytes: 1000 is less than"):
        parse_federation(text.replace("page_bytes: 65536", "page_bytes: 1000"), "fed.yaml")

    async with running_hub(
        "embedded", tmp_path / "data", demo_secrets, adjust=with_limits(page_bytes=65536)
    ) as hub:
        me = member_identity(hub, "ng-cert")
        sent = [indicator(me, n, 18_000) for n in range(10)]
        status = await submit(hub, ATTACKER, sent)
        assert status.success_count == len(sent), status.failures
        found = await pages(hub, "objects/")
        assert_within_budget(found, 65536)
        assert [len(e["objects"]) for _, e in found] == [3, 3, 3, 1]
        assert [version_of(o) for _, e in found for o in e["objects"]] == [
            version_of(o) for o in sent
        ]
