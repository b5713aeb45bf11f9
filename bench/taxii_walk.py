"""How long does OASIS's taxii2-client take to walk a whole collection: cirt-hub vs medallion?

    python -m bench.taxii_walk [--repeat 3] [--per-request 100] [--loop asyncio|uvloop]

Workload: MITRE ATT&CK for ICS 18.1 from the shared test data (1,826 objects; the folder is
found as the tests find it, or set CIRT_HUB_TESTDATA). Each server is loaded, then walked
`--repeat` times with `as_pages(collection.get_objects, per_request=100)`.

1. cirt-hub: a whole hub node in-process on a free loopback port, as the tests start it
   (`tests.hubs.running_hub`, embedded bus, demo federation). The objects are POSTed as
   `ke-cirt-submit` in chunks of 1000 (the member's default TLP applies), each chunk waited
   on until its status is complete, i.e. readable; then `member-ke-cirt` is walked as
   `ke-cirt-read`. The client runs in a thread of the hub's own process (as in the tests).
2. OASIS medallion (memory backend), a subprocess (`python -m medallion.scripts.run`) whose
   data file, written here, holds the same objects (with their manifest) in one collection.
   Loading is timed separately: the same chunks POSTed into a second, empty collection.

Each walk is timed whole and to its first page (medallion filters and sorts the whole
collection on the first request, then serves the rest from a saved `next` list).
Both walks must return the same object ids, once each (the hub's signature extension aside,
the objects are the same; only ids and counts are compared). Progress goes to stderr, the
table to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from taxii2client.v21 import Collection

from bench.taxii import (
    MedallionCollection,
    add_all,
    check_ids,
    medallion_server,
    progress,
    walk,
)
from hub.demo import DEMO_ACCOUNTS_FILE, demo_federation
from tests.conftest import TESTDATA
from tests.hubs import running_hub
from tests.integration.test_taxii_read import CHUNK, FEED, READER, SUBMITTER
from tests.stixdata import shared_objects

BUNDLE = "mitre-attack/ics-attack-18.1.json"
WALKED = "6ad8a6f2-3b1e-4c57-9e0c-2a3d61b0c0a1"  # medallion collection loaded from the file
LOADED = "b3f5c0d4-7e21-4f0a-8c9b-5d2e8a1f4c77"  # medallion collection filled by POST


def load(name: str, objects: list[dict[str, Any]], inbox: Collection) -> float:
    """POST `objects` in chunks of CHUNK, each waited on until complete; seconds taken."""
    added = add_all(name, inbox, objects, CHUNK)
    if added.failed:
        raise SystemExit(
            f"{name}: loading failed: {added.succeeded}/{len(objects)} succeeded, "
            f"{list(added.failures)}"
        )
    return added.seconds


def timed_walks(
    name: str, feed: Collection, repeat: int, per_request: int
) -> tuple[list[float], list[float], list[str]]:
    """`repeat` full walks of `feed`: their times, the times to their first page, and the ids
    the last one returned."""
    feed.refresh()  # collection info and (on the hub) the password check, outside the timing
    walks = []
    for run in range(1, repeat + 1):
        progress(f"  {name}: walk {run}/{repeat} ...")
        walks.append(walk(f"  {name}", feed, per_request))
    return [w.seconds for w in walks], [w.first_page_seconds for w in walks], list(walks[-1].ids)


async def cirt_hub(
    objects: list[dict[str, Any]], work: Path, repeat: int, per_request: int
) -> tuple[float, list[float], list[float], list[str]]:
    progress("cirt-hub: demo account secrets (scrypt) ...")
    secrets_dir = work / "secrets"
    secrets_dir.mkdir()
    await asyncio.to_thread(demo_federation, secrets_dir)
    progress("cirt-hub: starting a hub node (embedded bus) ...")
    async with running_hub("embedded", work / "hub-data", secrets_dir / DEMO_ACCOUNTS_FILE) as hub:

        def as_user(alias: str, username: str) -> Collection:
            return Collection(
                hub.collection_url(alias), user=username, password=hub.password(username)
            )

        progress(f"cirt-hub: loading {len(objects)} objects as {SUBMITTER} ...")
        inbox = as_user("inbox", SUBMITTER)
        load_seconds = await asyncio.to_thread(load, "cirt-hub", objects, inbox)
        progress(f"cirt-hub: loaded (submit until status complete) in {load_seconds:.3f} s")
        feed = as_user(FEED, READER)
        walks = await asyncio.to_thread(timed_walks, "cirt-hub", feed, repeat, per_request)
    return (load_seconds, *walks)


def medallion(
    objects: list[dict[str, Any]], work: Path, repeat: int, per_request: int
) -> tuple[float, list[float], list[float], list[str]]:
    progress("medallion: writing its data file and starting it ...")
    collections = [
        MedallionCollection(WALKED, "ATT&CK for ICS, from the data file", objects),
        MedallionCollection(LOADED, "empty, filled by TAXII POST"),
    ]
    with medallion_server(collections, work) as server:
        progress(f"medallion: loading {len(objects)} objects into an empty collection ...")
        load_seconds = load("medallion", objects, server.collection(LOADED))
        progress(f"medallion: loaded (POST until status complete) in {load_seconds:.3f} s")
        walks = timed_walks("medallion", server.collection(WALKED), repeat, per_request)
    return (load_seconds, *walks)


def check_same(objects: list[dict[str, Any]], walked: dict[str, list[str]]) -> int:
    """Each walk returned every object of the file once, and nothing else; their count."""
    expected = {o["id"] for o in objects}
    for name, ids in walked.items():
        check = check_ids(expected, ids)
        if not check.ok:
            raise SystemExit(f"{name} walk: {check}")
    return len(expected)


def row(name: str, load_seconds: float, times: list[float], firsts: list[float]) -> str:
    runs = ", ".join(f"{t:.3f}" for t in times)
    return (
        f"| {name:<9} | {load_seconds:>8.3f} | {statistics.median(times):>11.3f} "
        f"| {min(times):>8.3f} | {statistics.median(firsts):>17.3f} | {runs} |"
    )


def main(repeat: int, per_request: int, loop: str) -> None:
    objects = shared_objects(BUNDLE)
    progress(f"workload: {TESTDATA / BUNDLE}, {len(objects)} objects")
    runner: Callable[[Any], Any] = asyncio.run
    if loop == "uvloop":
        import uvloop

        runner = uvloop.run
    with tempfile.TemporaryDirectory(prefix="taxii-walk-") as tmp:
        work = Path(tmp)
        hub_load, hub_times, hub_firsts, hub_ids = runner(
            cirt_hub(objects, work, repeat, per_request)
        )
        med_load, med_times, med_firsts, med_ids = medallion(objects, work, repeat, per_request)
    count = check_same(objects, {"cirt-hub": hub_ids, "medallion": med_ids})

    print(
        f"\nTAXII walk of {BUNDLE}: {count} objects, taxii2-client as_pages("
        f"per_request={per_request}), {repeat} walks each, {os.cpu_count()} cores, "
        f"hub event loop: {loop}; both walks returned the same {count} ids"
    )
    print("| server    | load (s) | walk median | walk min | first page median | walks (s) |")
    print("|-----------|---------:|------------:|---------:|------------------:|-----------|")
    print(row("cirt-hub", hub_load, hub_times, hub_firsts))
    print(row("medallion", med_load, med_times, med_firsts))
    by_median = statistics.median(med_times) / statistics.median(hub_times)
    print(
        f"\nwalk ratio medallion / cirt-hub: {by_median:.1f}x (median), "
        f"{min(med_times) / min(hub_times):.1f}x (min)"
    )
    print(f"load ratio medallion / cirt-hub: {med_load / hub_load:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=3, help="walks per server (default 3)")
    parser.add_argument("--per-request", type=int, default=100, help="page size asked for")
    parser.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="the hub's event loop: asyncio as in the tests (default), or uvloop as `serve`",
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    main(args.repeat, args.per_request, args.loop)
