"""How fast "have we seen this?" answers with 1,000,000 values in the lookup index.

    python -m bench.lookup [--objects 200000] [--queries 300] [--keep DIR]

A view (hub.store.view, in this process) is filled through its own apply path, so the
index is kept as a node keeps it: `--objects` TLP-less indicators in one collection, each
pattern naming five indexed values (an IPv4 address, or a /24 network for one in 50; a
domain, or every subdomain of one for one in 20; a SHA-256; a URL, which is indexed with its
host), so 200,000 objects hold 1,000,000 values; and each a name for free text. Then a
reader looks up values of each kind, half of them present and half absent, through
`View.lookup` (the SQLite thread, the reader's collections and the latest-version check, as
the API calls it, not the HTTP layer); per kind, p50 and p99 of the time to the answer.
Last, the time a node's first start takes to build the index for such a view made before it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from hub.bus import Record
from hub.store.lookup_values import lookup_query
from hub.store.view import View

FEED, STATUS, COLLECTION, READER = "bench.feed.region", "bench.status", "region", "reader"
BATCH = 2000
TARGET_MS = 50.0


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _ipv4(n: int) -> str:
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def pattern(n: int) -> str:
    address = f"172.{16 + (n >> 16 & 15)}.{n >> 8 & 255}.0/24" if n % 50 == 0 else _ipv4(n)
    domain = (
        f"domain-name:value LIKE '%.zone-{n}.example'"
        if n % 20 == 0
        else f"domain-name:value = 'c2-{n}.example{n % 100}.net'"
    )
    return (
        f"[ipv4-addr:value = '{address}'] OR [{domain}]"
        f" OR [file:hashes.'SHA-256' = '{n:064x}']"
        f" OR [url:value = 'http://drop-{n}.example.org/p/{n}.exe']"
    )


def record(n: int) -> Record:
    obj = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{n:08x}-0000-4000-8000-{n:012x}",
        "created": "2026-12-01T00:00:00.000Z",
        "modified": "2026-12-01T00:00:00.000Z",
        "name": f"campaign {n} dropper",
        "pattern": pattern(n),
        "pattern_type": "stix",
        "valid_from": "2026-12-01T00:00:00Z",
    }
    return Record(
        FEED,
        0,
        n,
        obj["id"].encode(),
        orjson.dumps(obj),
        (("date-added", b"2026-12-01T00:00:01.000Z"),),
        0,
    )


async def fill(view: View, objects: int) -> float:
    started = time.perf_counter()
    for start in range(0, objects, BATCH):
        await view.apply([record(n) for n in range(start, min(objects, start + BATCH))])
        if start and start % 50_000 == 0:
            progress(f"  {start:,} objects applied")
    return time.perf_counter() - started


def kinds(objects: int) -> dict[str, Callable[[random.Random], tuple[str, str | None]]]:
    """Per kind, a value drawn at random: present for even draws, absent for odd ones."""

    def pick(r: random.Random) -> tuple[int, bool]:
        return r.randrange(objects), r.random() < 0.5

    def ipv4(r: random.Random) -> tuple[str, str | None]:
        n, present = pick(r)
        return (_ipv4(n) if present else f"192.0.{n >> 8 & 255}.{n & 255}"), None

    def inside_network(r: random.Random) -> tuple[str, str | None]:
        n = r.randrange(0, objects, 50)
        return f"172.{16 + (n >> 16 & 15)}.{n >> 8 & 255}.{r.randrange(256)}", None

    def network(r: random.Random) -> tuple[str, str | None]:
        n, _ = pick(r)
        return f"10.{n >> 16 & 255}.{n >> 8 & 255}.0/24", None

    def domain(r: random.Random) -> tuple[str, str | None]:
        n, present = pick(r)
        return (f"c2-{n}.example{n % 100}.net" if present else f"c2-{n}.absent.net"), None

    def subdomain(r: random.Random) -> tuple[str, str | None]:
        n = r.randrange(0, objects, 20)
        return f"www.{r.randrange(99)}.zone-{n}.example", None

    def url(r: random.Random) -> tuple[str, str | None]:
        n, present = pick(r)
        return f"http://drop-{n}.example.org/p/{n if present else 'x'}.exe", None

    def sha256(r: random.Random) -> tuple[str, str | None]:
        n, present = pick(r)
        return (f"{n:064X}" if present else f"{n:063x}f"), None

    def text(r: random.Random) -> tuple[str, str | None]:
        n, present = pick(r)
        return (f"campaign {n}" if present else f"operation {n}"), "text"

    return {
        "ipv4 address": ipv4,
        "ipv4 in a /24 indicator": inside_network,
        "ipv4 /24 network": network,
        "domain": domain,
        "subdomain of a LIKE": subdomain,
        "url": url,
        "sha256 (any case)": sha256,
        "free text": text,
    }


async def measure(view: View, objects: int, queries: int) -> dict[str, tuple[float, float, int]]:
    results = {}
    r = random.Random(24)
    for name, draw in kinds(objects).items():
        times, hits = [], 0
        for _ in range(queries):
            value, kind = draw(r)
            query = lookup_query(value, kind)
            started = time.perf_counter()
            answer = await view.lookup(query, [COLLECTION], READER, 100, ("$.name",))
            times.append((time.perf_counter() - started) * 1000)
            hits += bool(answer.found)
        cuts = statistics.quantiles(times, n=100)
        results[name] = (statistics.median(times), cuts[98], hits)
    return results


async def main(objects: int, queries: int, keep: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = (keep or Path(tmp)) / "view-lookup-bench.sqlite3"
        view = View(path, feeds={FEED: COLLECTION}, status_topic=STATUS)
        await view.open()
        try:
            progress(f"applying {objects:,} objects to the view")
            seconds = await fill(view, objects)
            values = await view._db.run(
                lambda conn: conn.execute("SELECT count(*) FROM lookup_values").fetchone()[0]
            )
            print(f"indexed values: {values:,} from {objects:,} objects")
            print(
                f"filled through the view's apply in {seconds:.1f} s"
                f" ({objects / seconds:,.0f} objects/s, index kept on the way)"
            )
            size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
            print(f"view file with its index: {size / 1e6:,.0f} MB")
            results = await measure(view, objects, queries)
        finally:
            await view.close()
        # A view made before the index: its first start indexes every current version.
        with sqlite3.connect(path) as conn:
            conn.execute("DELETE FROM meta WHERE name = 'lookup_layout'")
        started = time.perf_counter()
        view = View(path, feeds={FEED: COLLECTION}, status_topic=STATUS)
        await view.open()
        await view.close()
        print(f"index built for an existing view at open: {time.perf_counter() - started:.1f} s")
    print(f"\n{'kind':<26} {'p50 ms':>8} {'p99 ms':>8} {'found':>7}  (of {queries})")
    for name, (p50, p99, hits) in results.items():
        mark = "" if p99 < TARGET_MS else f"  over {TARGET_MS:.0f} ms"
        print(f"{name:<26} {p50:8.2f} {p99:8.2f} {hits:7d}{mark}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--keep", type=Path, help="make the view file in this folder")
    args = parser.parse_args()
    asyncio.run(main(args.objects, args.queries, args.keep))
