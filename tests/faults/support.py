"""What the fault tests share: hub nodes as real processes (to kill), clients that post
without pause and remember what got a 202, and a reader that counts what is there."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from hub.demo import DEMO_ACCOUNTS_FILE
from tests.conftest import KAFKA_SCRIPT
from tests.stixdata import TLP2
from tests.stixdata import indicator as stix_indicator

TAXII = "application/taxii+json;version=2.1"


@dataclass
class HubProcess:
    """`cirt-hub serve` (demo federation, secrets copied in) as a child process."""

    data_dir: Path
    port: int
    bus_url: str = "embedded"
    role: str = "all"
    topic_prefix: str = "cirt-hub."
    extra: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)  # added to this process's environment
    log_dir: Path | None = None  # where its output goes (default: the data dir)
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, secrets: Path) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        target = self.data_dir / DEMO_ACCOUNTS_FILE
        if not target.exists():
            target.write_bytes(secrets.read_bytes())
        self.log = (self.log_dir or self.data_dir) / f"serve-{self.port}-{time.monotonic_ns()}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "hub", "serve", "--log-format", "text"),
                    *("--data-dir", str(self.data_dir), "--port", str(self.port)),
                    *("--bus", self.bus_url, "--role", self.role),
                    *("--topic-prefix", self.topic_prefix, *self.extra),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            )

    async def ready(self, timeout: float = 60.0) -> None:
        """Until /healthz answers (the node serves; its runners may still be starting)."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                assert self.proc is not None and self.proc.poll() is None, self.output()
                try:
                    async with http.get(f"{self.base_url}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, f"not serving: {self.output()}"
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self, grace: float = 30.0) -> tuple[int, float]:
        """SIGTERM; the exit status and how long the drain took."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=grace)
        return code, time.monotonic() - started

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log else ""


def indicator(identity: str, marking: str, n: int) -> dict[str, Any]:
    pattern = f"[ipv4-addr:value = '203.0.{n // 250 % 250}.{n % 250}']"
    return stix_indicator(identity, pattern, marking, name=f"scanner {n}")


@dataclass
class Tally:
    """What the posting clients saw: ids in 202'd requests, in refused ones, and errors."""

    accepted: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # 4xx/5xx: the hub said not stored
    unanswered: list[str] = field(default_factory=list)  # connection lost: unknown
    statuses: Counter[int] = field(default_factory=Counter)


def basic(username: str, password: str) -> str:
    return aiohttp.encode_basic_auth(username, password)


async def post_forever(
    url: str,
    username: str,
    password: str,
    identity: str,
    tally: Tally,
    stop: asyncio.Event,
    *,
    per_request: int = 5,
    marking: str = TLP2["green"],
    pause: float = 0.0,
) -> None:
    """POST small GREEN bundles to `url` (the hub's base URL) until `stop` is set."""
    headers = {"Authorization": basic(username, password), "Content-Type": TAXII, "Accept": TAXII}
    inbox = f"{url}/taxii2/hub/collections/inbox/objects/"
    n = 0
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while not stop.is_set():
            batch = [indicator(identity, marking, n + i) for i in range(per_request)]
            n += per_request
            ids = [o["id"] for o in batch]
            try:
                async with http.post(
                    inbox, data=orjson.dumps({"objects": batch}), headers=headers
                ) as response:
                    await response.read()
                    tally.statuses[response.status] += 1
                    (tally.accepted if response.status == 202 else tally.refused).extend(ids)
                    await asyncio.sleep(pause if response.status == 202 else 0.2)
            except (aiohttp.ClientError, TimeoutError):
                tally.unanswered.extend(ids)
                tally.statuses[0] += 1
                await asyncio.sleep(0.2)


async def collection_ids(url: str, collection: str, username: str, password: str) -> Counter:
    """How many times each object id appears in a full TAXII walk of `collection`."""
    headers = {"Authorization": basic(username, password), "Accept": TAXII}
    found: Counter[str] = Counter()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/taxii2/hub/collections/", headers=headers) as response:
            listing = await response.json(content_type=None)
        cid = next(c["id"] for c in listing["collections"] if c.get("alias") == collection)
        params = {"limit": "1000"}
        while True:
            objects_url = f"{url}/taxii2/hub/collections/{cid}/objects/"
            async with http.get(objects_url, headers=headers, params=params) as response:
                assert response.status == 200, await response.text()
                envelope = await response.json(content_type=None)
            found.update(o["id"] for o in envelope.get("objects", []))
            if not envelope.get("more"):
                return found
            params = {"limit": "1000", "next": envelope["next"]}


async def settle(read, expected: set[str], timeout: float = 120.0) -> Counter:
    """Read until every expected id is there (or the time is up); the last reading."""
    deadline = time.monotonic() + timeout
    while True:
        found = await read()
        if expected <= set(found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


# Counts from each fault test, printed in the run's summary (tests/conftest.py).
REPORT: list[str] = []


def account_passwords(secrets: Path) -> dict[str, str]:
    found = orjson.loads(secrets.read_bytes())["secrets"]
    return {username: entry["password"] for username, entry in found.items()}


def report(name: str, tally: Tally, found: Counter, **more: object) -> tuple[int, int, int]:
    """Record what a fault test saw: accepted, delivered, duplicates, lost, stray."""
    accepted = set(tally.accepted)
    lost = len(accepted - set(found))
    duplicates = sum(c - 1 for c in found.values() if c > 1)
    stray = len(set(found) - accepted - set(tally.unanswered))
    extra = ", ".join(f"{k} {v}" for k, v in more.items())
    REPORT.append(
        f"{name}: accepted (202) {len(accepted)}, delivered {len(set(found) & accepted)}, "
        f"duplicates {duplicates}, lost {lost}, refused {len(tally.refused)} "
        f"(none delivered: {stray == 0}), unanswered {len(tally.unanswered)}"
        + (f", {extra}" if extra else "")
    )
    return lost, duplicates, stray


def broker(*args: str) -> None:
    """deploy/kafka/kafka.sh with `args` (start, stop, ...), its output on stderr."""
    subprocess.run(["bash", str(KAFKA_SCRIPT), *args], check=True, stdout=sys.stderr)
