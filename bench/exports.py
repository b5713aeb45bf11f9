"""How fast an export streams, and what memory it takes, at 10,000 and 100,000 indicators.

    python -m bench.exports [--objects 100000] [--smaller 10000]

An embedded hub (in this process) receives `--objects` TLP:GREEN indicators from KE-CIRT
through its pipeline (signed, routed, in the view as a reader gets them: IPv4, domains, URLs
and SHA-256 hashes in turn); then KE-CIRT's reader exports `region-east-africa` in each
format, uncompressed and (csv) gzipped, reading the stream as it comes. Per export: seconds
from the request to the last byte, bytes, and the rise of this process's resident memory
over what it was before the request (sampled every 5 ms: the hub and the reading client
share the process; the client keeps no more than one chunk), the CPU seconds of the
process, and, in a second run under tracemalloc, the peak of the Python memory allocated
during the export. The same exports at `--smaller` objects, first, show whether time and
memory grow with the export's size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from hub.demo import demo_federation
from tests.hubs import RunningHub, member_identity, running_hub, submit
from tests.stixdata import TLP2

SENDER, READER, FEED = "ke-cirt-submit", "ke-cirt-read", "region-east-africa"
CHUNK = 1000
_PAGE = os.sysconf("SC_PAGE_SIZE")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def indicators(identity: str, start: int, count: int) -> list[dict[str, Any]]:
    """`count` indicators of distinct values, four kinds in turn."""
    found = []
    for n in range(start, start + count):
        kind = n % 4
        if kind == 0:
            pattern = f"[ipv4-addr:value = '10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}']"
        elif kind == 1:
            pattern = f"[domain-name:value = 'c2-{n}.example.net']"
        elif kind == 2:
            pattern = f"[url:value = 'http://drop-{n}.example.org/p/{n}.exe']"
        else:
            pattern = f"[file:hashes.'SHA-256' = '{n:064x}']"
        found.append(
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": f"indicator--{uuid.uuid4()}",
                "created": "2026-12-01T08:00:00.000Z",
                "modified": "2026-12-01T08:00:00.000Z",
                "pattern": pattern,
                "pattern_type": "stix",
                "valid_from": "2026-12-01T08:00:00Z",
                "confidence": 70,
                "created_by_ref": identity,
                "object_marking_refs": [TLP2["green"]],
            }
        )
    return found


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


class PeakRss:
    """The highest resident set size seen while the block runs, sampled on a thread."""

    def __enter__(self) -> PeakRss:
        self.before = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


@dataclass
class Measured:
    objects: int
    format: str
    encoding: str
    seconds: float
    cpu_seconds: float  # of this process (hub, its view thread and the client)
    bytes: int
    rss_rise: int
    traced_peak: int = 0  # Python allocations above the start, at their peak (tracemalloc)


async def traced(hub: RunningHub, objects: int, fmt: str, encoding: str) -> int:
    """The peak of the Python memory allocated during the export (a second run: tracing
    slows it several times), above what was allocated when it began."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await measure(hub, objects, fmt, encoding)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


async def measure(hub: RunningHub, objects: int, fmt: str, encoding: str) -> Measured:
    headers = {
        "Authorization": aiohttp.encode_basic_auth(READER, hub.password(READER)),
        "Accept-Encoding": encoding,
    }
    params = {"format": fmt}
    if fmt == "txt":
        params["kind"] = "ipv4,domain,url,sha256"  # every value: the largest blocklist
    received = 0
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        with PeakRss() as memory:
            started, cpu = time.perf_counter(), time.process_time()
            async with session.get(
                f"{hub.base_url}/api/v1/exports/{FEED}", params=params, headers=headers
            ) as response:
                assert response.status == 200, await response.text()
                async for chunk in response.content.iter_any():
                    received += len(chunk)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Measured(objects, fmt, encoding, seconds, cpu, received, memory.peak - memory.before)


async def fill(hub: RunningHub, start: int, count: int) -> None:
    identity = member_identity(hub, "ke-cirt")
    began = time.perf_counter()
    for at in range(start, start + count, CHUNK):
        status = await submit(hub, SENDER, indicators(identity, at, min(CHUNK, start + count - at)))
        assert status.failure_count == 0, status
        if (at - start) % 10_000 == 0:
            progress(
                f"  {at - start + CHUNK:,} of {count:,} sent ({time.perf_counter() - began:.0f} s)"
            )


async def run(total: int, smaller: int) -> list[Measured]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        secrets = Path(tmp, "secrets")
        demo_federation(secrets)
        async with running_hub(
            "embedded", Path(tmp, "data"), secrets / "demo-accounts.json"
        ) as hub:
            done = 0
            for size in (smaller, total):
                progress(f"filling the view to {size:,} indicators")
                await fill(hub, done, size - done)
                done = size
                for fmt, encoding in (
                    ("txt", "identity"),
                    ("csv", "identity"),
                    ("csv", "gzip"),
                    ("suricata", "identity"),
                    ("stix", "identity"),
                ):
                    found = await measure(hub, size, fmt, encoding)
                    found.traced_peak = await traced(hub, size, fmt, encoding)
                    progress(f"  {found}")
                    results.append(found)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--smaller", type=int, default=10_000)
    args = parser.parse_args()
    results = asyncio.run(run(args.objects, args.smaller))
    head = ("indicators", "format", "encoding", "seconds", "CPU s", "MB", "RSS rise MB")
    print("{:>10} {:>9} {:>9} {:>8} {:>8} {:>8} {:>12} {:>15}".format(*head, "traced peak MB"))
    for m in results:
        print(
            f"{m.objects:>10,} {m.format:>9} {m.encoding:>9} {m.seconds:>8.2f} "
            f"{m.cpu_seconds:>8.2f} {m.bytes / 1e6:>8.1f} {m.rss_rise / 1e6:>12.1f} "
            f"{m.traced_peak / 1e6:>15.1f}"
        )


if __name__ == "__main__":
    main()
