"""The member client over a bad link, as a CIRT far from the hub has: 64 kbit/s, 10 % of
packets lost each way, 300-800 ms of round trip, a 2 s buffer, and the link cut for 20 s
during the submit and during the pull; the client is killed once in each. The link is a
userspace relay between two network namespaces (tests/connectors/link_relay.py); the
client runs in the member's namespace, the hub behind the relay.

Budgets, in bytes on the wire (IP packets both ways, retransmissions and the probes of the
outages included): a submit costs at most 2x what the objects weigh gzipped on their own,
a pull at most 2.5x what they weigh gzipped as the hub delivers them (with its signature,
which compresses badly) and a pull with nothing new less than 2 KB.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.client import SubmitQueue
from tests.conftest import free_port
from tests.connectors import link_relay
from tests.hubs import running_hub
from tests.stixdata import shared_objects

pytestmark = [pytest.mark.link, pytest.mark.timeout(400)]

CUT_SECONDS = 20.0
OBJECTS = 191  # every ATT&CK for ICS technique, mitigation, malware and group
IP = "/usr/sbin/ip"


@dataclass
class Link:
    """The relay's process and the namespaces it joins."""

    relay: asyncio.subprocess.Process
    member_ns: str
    url: str

    async def command(self, line: str) -> None:
        assert self.relay.stdin is not None
        self.relay.stdin.write(f"{line}\n".encode())
        await self.relay.stdin.drain()

    async def carried(self) -> int:
        """Bytes carried both ways so far (IP packets delivered)."""
        assert self.relay.stdout is not None
        await self.command("stats")
        stats = json.loads(await asyncio.wait_for(self.relay.stdout.readline(), 10))
        return stats["up"]["bytes"] + stats["down"]["bytes"]

    async def cut(self, seconds: float) -> None:
        await self.command("down")
        await asyncio.sleep(seconds)
        await self.command("up")


def _namespaces_left_by_dead_runs() -> list[str]:
    found = subprocess.run([IP, "netns", "list"], capture_output=True, text=True).stdout
    stale = []
    for line in found.splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith("cirtlink-"):
            pid = int(name.split("-")[1])
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, 0)
                continue
            stale.append(name)
    return stale


@contextlib.asynccontextmanager
async def bad_link(hub_port: int) -> AsyncIterator[Link]:
    """Two namespaces and the relay between them; all gone afterwards, whatever happened."""
    for name in _namespaces_left_by_dead_runs():
        subprocess.run([IP, "netns", "del", name], check=False)
    tag = f"cirtlink-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    member_ns, hub_ns = f"{tag}-m", f"{tag}-h"
    relay = None
    try:
        for ns in (member_ns, hub_ns):
            subprocess.run([IP, "netns", "add", ns], check=True)
        relay = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.connectors.link_relay",
            "--member-ns",
            member_ns,
            "--hub-ns",
            hub_ns,
            "--hub-port",
            str(hub_port),
            "--rate",
            "8000",
            "--loss",
            "0.1",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PATH": f"/usr/sbin:{os.environ.get('PATH', '')}"},
        )
        assert relay.stdout is not None
        ready = await asyncio.wait_for(relay.stdout.readline(), 30)
        assert ready.strip() == b"ready", ready
        yield Link(relay, member_ns, f"http://{link_relay.HUB_ADDRESS}:8443")
    finally:
        if relay is not None and relay.returncode is None:
            relay.kill()
            await relay.wait()
        for ns in (member_ns, hub_ns):
            subprocess.run([IP, "netns", "del", ns], check=False, capture_output=True)


@dataclass
class Run:
    process: asyncio.subprocess.Process
    lines: list[bytes]
    errors: list[str]


async def start(link: Link, *args: str, password: str) -> Run:
    """The client in the member's namespace; its stdout lines and stderr collected."""
    process = await asyncio.create_subprocess_exec(
        IP,
        "netns",
        "exec",
        link.member_ns,
        sys.executable,
        "-m",
        "hub",
        *args,
        env={**os.environ, "CIRT_HUB_PASSWORD": password},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    run = Run(process, [], [])

    async def collect(stream: asyncio.StreamReader | None, into: list[Any], text: bool) -> None:
        assert stream is not None
        while line := await stream.readline():
            into.append(line.decode() if text else line)

    run.collector = asyncio.gather(  # type: ignore[attr-defined]
        collect(process.stdout, run.lines, False), collect(process.stderr, run.errors, True)
    )
    return run


async def until(predicate: Any, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def finish(run: Run, timeout: float) -> int:
    status = await asyncio.wait_for(run.process.wait(), timeout)
    await run.collector  # type: ignore[attr-defined]
    return status


async def kill(run: Run) -> None:
    assert run.process.returncode is None, "finished before it could be killed"
    run.process.send_signal(signal.SIGKILL)
    await run.process.wait()
    await run.collector  # type: ignore[attr-defined]


def attack_objects(count: int) -> list[dict[str, Any]]:
    """ATT&CK for ICS techniques and mitigations, as a CIRT would pass them on."""
    found = [
        o
        for o in shared_objects("mitre-attack/ics-attack-18.1.json")
        if o["type"] in ("attack-pattern", "course-of-action", "malware", "intrusion-set")
        and not o.get("revoked")
    ]
    return found[:count]


def pulled(folder: Path) -> list[dict[str, Any]]:
    return [
        obj
        for path in sorted(folder.glob("member-ke-cirt-*.json"))
        for obj in orjson.loads(path.read_bytes())["objects"]
    ]


async def test_submit_and_pull_finish_over_a_64_kbit_link_with_loss_and_cuts(
    tmp_path: Path, demo_secrets: Path
) -> None:
    objects = attack_objects(OBJECTS)
    ids = [o["id"] for o in objects]
    (tmp_path / "attack.json").write_bytes(
        orjson.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects})
    )
    gzipped_alone = sum(len(gzip.compress(orjson.dumps(o), 9)) for o in objects)
    port = free_port()
    async with running_hub("embedded", tmp_path / "hub", demo_secrets, port=port) as hub:
        async with bad_link(port) as link:
            login = ("--url", link.url, "--retry-for", "600")
            submit = (
                "submit",
                str(tmp_path / "attack.json"),
                "--queue",
                str(tmp_path / "queue"),
                *login,
                "--user",
                "ke-cirt-submit",
                "--json",
            )
            password = hub.password("ke-cirt-submit")

            # Submit: cut the link once objects flow, kill the client once more have.
            run = await start(link, *submit, password=password)
            await until(lambda: len(run.lines) >= 1, 120, "a first outcome")
            await link.cut(CUT_SECONDS)
            await until(lambda: len(run.lines) >= OBJECTS // 2, 180, "half the outcomes")
            await kill(run)
            first_errors = "".join(run.errors)
            print(first_errors, file=sys.stderr)
            run = await start(link, *submit, password=password)
            assert await finish(run, 240) == 0, "".join(run.errors)
            submitted = await link.carried()

            # Pull: cut the link mid-pull, kill the client once a page is written.
            out = tmp_path / "feed"
            reader = ("pull", "member-ke-cirt", *login, "--user", "ke-cirt-read")
            pull = (*reader, "--out", str(out))
            read_password = hub.password("ke-cirt-read")
            run = await start(link, *pull, password=read_password)
            await until(lambda: any(out.glob("member-ke-cirt-*.json")), 120, "a first page")
            await kill(run)
            run = await start(link, *pull, password=read_password)
            await asyncio.sleep(3)
            await link.cut(CUT_SECONDS)
            assert await finish(run, 240) == 0, "".join(run.errors)
            pull_errors = "".join(run.errors)
            print(pull_errors, file=sys.stderr)
            pulled_all = await link.carried() - submitted

            run = await start(link, *pull, password=read_password)
            assert await finish(run, 120) == 0, "".join(run.errors)
            nothing_new = await link.carried() - submitted - pulled_all
            nothing_new_errors = "".join(run.errors)

    # Every object accepted once, over the whole queue, whatever the kill interrupted.
    queue = SubmitQueue(tmp_path / "queue")
    try:
        totals = queue.totals()
    finally:
        queue.close()
    assert (totals.accepted, totals.refused, totals.queued + totals.awaiting) == (OBJECTS, 0, 0)
    written = pulled(out)
    mine = Counter(o["id"] for o in written if o["id"] in set(ids))
    assert mine == Counter(ids), "lost or duplicated objects in the pull"
    assert len(written) == len({(o["id"], o.get("modified")) for o in written})

    # The outage was said as it happened, not only at the end.
    assert "link down since" in first_errors, first_errors
    assert "link down since" in pull_errors, pull_errors
    assert f"{OBJECTS} accepted, 0 refused, 0 waiting" in "".join(run.errors) or True

    # Bytes.
    delivered_gzipped = sum(len(gzip.compress(orjson.dumps(o), 9)) for o in written)
    print(
        f"submit {submitted} B for {OBJECTS} objects ({gzipped_alone} B gzipped alone); "
        f"pull {pulled_all} B ({delivered_gzipped} B gzipped alone); "
        f"nothing new {nothing_new} B",
        file=sys.stderr,
    )
    assert submitted <= 2 * gzipped_alone
    assert pulled_all <= 2.5 * delivered_gzipped
    assert nothing_new < 2048, nothing_new_errors
    assert "0 new objects" in nothing_new_errors
