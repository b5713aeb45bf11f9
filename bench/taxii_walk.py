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
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from taxii2client.v21 import Collection, as_pages

from hub.demo import DEMO_ACCOUNTS_FILE, demo_federation
from tests.conftest import TESTDATA, free_port
from tests.hubs import running_hub
from tests.integration.test_taxii_read import CHUNK, FEED, READER, SUBMITTER
from tests.processes import stop
from tests.stixdata import shared_objects

BUNDLE = "mitre-attack/ics-attack-18.1.json"
POLL = 0.05  # seconds between status polls while loading (taxii2-client's wait loop)
MEDALLION_ROOT = "bench"
WALKED = "6ad8a6f2-3b1e-4c57-9e0c-2a3d61b0c0a1"  # medallion collection loaded from the file
LOADED = "b3f5c0d4-7e21-4f0a-8c9b-5d2e8a1f4c77"  # medallion collection filled by POST
USER, PASSWORD = "bench", "bench-only-password"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load(objects: list[dict[str, Any]], inbox: Collection) -> float:
    """POST `objects` in chunks of CHUNK, each waited on until complete; seconds taken."""
    started = time.perf_counter()
    for start in range(0, len(objects), CHUNK):
        chunk = objects[start : start + CHUNK]
        status = inbox.add_objects({"objects": chunk}, poll_interval=POLL, timeout=600)
        if status.status != "complete" or status.success_count != len(chunk):
            raise SystemExit(
                f"loading failed at object {start}: {status.status}, "
                f"{status.success_count}/{len(chunk)} succeeded, {status.failures[:3]}"
            )
    return time.perf_counter() - started


def timed_walks(
    name: str, feed: Collection, repeat: int, per_request: int
) -> tuple[list[float], list[float], list[str]]:
    """`repeat` full walks of `feed`: their times, the times to their first page, and the ids
    the last one returned."""
    feed.refresh()  # collection info and (on the hub) the password check, outside the timing
    times: list[float] = []
    firsts: list[float] = []
    ids: list[str] = []
    for run in range(1, repeat + 1):
        progress(f"  {name}: walk {run}/{repeat} ...")
        ids = []
        started = time.perf_counter()
        for page in as_pages(feed.get_objects, per_request=per_request):
            if len(firsts) < run:
                firsts.append(time.perf_counter() - started)
            ids += [o["id"] for o in page.get("objects", [])]
        times.append(time.perf_counter() - started)
        progress(
            f"  {name}: walk {run}/{repeat}: {len(ids)} objects in {times[-1]:.3f} s "
            f"(first page after {firsts[-1]:.3f} s)"
        )
    return times, firsts, ids


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
        load_seconds = await asyncio.to_thread(load, objects, inbox)
        progress(f"cirt-hub: loaded (submit until status complete) in {load_seconds:.3f} s")
        feed = as_user(FEED, READER)
        walks = await asyncio.to_thread(timed_walks, "cirt-hub", feed, repeat, per_request)
    return (load_seconds, *walks)


def medallion_data(objects: list[dict[str, Any]], base_url: str) -> dict[str, Any]:
    """medallion's memory-backend data file (the layout of its default_data.json): the
    objects with their manifest in one readable collection, and an empty writable one."""
    added = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    manifest = [
        {
            "id": obj["id"],
            # distinct, increasing: medallion pages in date_added order
            "date_added": (added + dt.timedelta(microseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "version": obj.get("modified", obj.get("created")),
            "media_type": "application/stix+json;version=2.1",
        }
        for i, obj in enumerate(objects)
    ]

    def collection(id_: str, title: str, objs: list[Any], man: list[Any]) -> dict[str, Any]:
        return {
            "id": id_,
            "title": title,
            "can_read": True,
            "can_write": True,
            "media_types": ["application/stix+json;version=2.1"],
            "objects": objs,
            "manifest": man,
        }

    return {
        "/discovery": {
            "title": "medallion (cirt-hub benchmark)",
            "default": f"{base_url}/{MEDALLION_ROOT}/",
            "api_roots": [f"{base_url}/{MEDALLION_ROOT}/"],
        },
        MEDALLION_ROOT: {
            "information": {
                "title": "benchmark",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 100 * 1024 * 1024,
            },
            "status": [],
            "collections": [
                collection(WALKED, "ATT&CK for ICS, from the data file", objects, manifest),
                collection(LOADED, "empty, filled by TAXII POST", [], []),
            ],
        },
    }


@contextmanager
def medallion_server(objects: list[dict[str, Any]], work: Path) -> Iterator[str]:
    """medallion on 127.0.0.1:<free port> as a subprocess; yields its base URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    data_file, config_file = work / "medallion-data.json", work / "medallion-config.json"
    data_file.write_text(json.dumps(medallion_data(objects, base_url)))
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(data_file),
        },
        "users": {USER: PASSWORD},
        "taxii": {"max_page_size": 1000},  # the client's per_request is what limits pages
    }
    config_file.write_text(json.dumps(config))
    log_path = work / "medallion.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "medallion.scripts.run", "--port", str(port), config_file],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(f"{base_url}/taxii2/", proc, log_path)
        yield base_url
    finally:
        stop(proc)


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    auth = "Basic " + b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        url, headers={"Accept": "application/taxii+json;version=2.1", "Authorization": auth}
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"medallion exited ({proc.returncode}):\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"medallion did not answer at {url} within 60 s:\n{log_path.read_text()}")


def medallion(
    objects: list[dict[str, Any]], work: Path, repeat: int, per_request: int
) -> tuple[float, list[float], list[float], list[str]]:
    progress("medallion: writing its data file and starting it ...")
    with medallion_server(objects, work) as base_url:

        def collection(id_: str) -> Collection:
            url = f"{base_url}/{MEDALLION_ROOT}/collections/{id_}/"
            return Collection(url, user=USER, password=PASSWORD)

        progress(f"medallion: loading {len(objects)} objects into an empty collection ...")
        load_seconds = load(objects, collection(LOADED))
        progress(f"medallion: loaded (POST until status complete) in {load_seconds:.3f} s")
        walks = timed_walks("medallion", collection(WALKED), repeat, per_request)
    return (load_seconds, *walks)


def check_same(objects: list[dict[str, Any]], walked: dict[str, list[str]]) -> int:
    """Each walk returned every object of the file once, and nothing else; their count."""
    expected = {o["id"] for o in objects}
    for name, ids in walked.items():
        if len(ids) != len(set(ids)) or set(ids) != expected:
            missing, extra = expected - set(ids), set(ids) - expected
            raise SystemExit(
                f"{name} walk: {len(ids)} objects, {len(set(ids))} distinct ids, "
                f"{len(missing)} missing (e.g. {sorted(missing)[:2]}), "
                f"{len(extra)} unexpected (e.g. {sorted(extra)[:2]})"
            )
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
