"""The member client over a bad link, as a CIRT far from the hub has: 64 kbit/s, 10 % of
packets lost each way, 300-800 ms of round trip, a 2 s buffer, and the link cut for 20 s
during the submit and during the pull; the client is killed once in each. The link is a
userspace relay between two network namespaces (tests/connectors/link_relay.py); the
client runs in the member's namespace, the hub behind the relay.

Budgets, in bytes on the wire (IP packets both ways: headers, retransmissions, what a kill
or a cut wasted and the probes during the outage included): SUBMIT_BYTES_PER_OBJECT and
PULL_BYTES_PER_OBJECT per object, and under 2 KB for a pull with nothing new.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import free_port
from tests.connectors import link_relay
from tests.hubs import running_hub
from tests.stixdata import shared_objects

pytestmark = [pytest.mark.link, pytest.mark.timeout(400)]

CUT_SECONDS = 20.0
OBJECTS = 100
# The first 100 of these ATT&CK objects weigh 1.8 KB each as JSON, 0.9 KB gzipped one by one.
SUBMIT_BYTES_PER_OBJECT = 1200
PULL_BYTES_PER_OBJECT = 1200
IP = "/usr/sbin/ip"


@dataclass
class Link:
    """The relay's process and the namespaces it joins."""

    relay: asyncio.subprocess.Process
    member_ns: str
    url: str
    clients: list[asyncio.subprocess.Process] = field(default_factory=list)

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


def ip(*args: str) -> None:
    """`ip ARGS`, which must succeed."""
    subprocess.run([IP, *args], check=True, capture_output=True)


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
    for name in await asyncio.to_thread(_namespaces_left_by_dead_runs):
        await asyncio.to_thread(ip, "netns", "del", name)
    tag = f"cirtlink-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    member_ns, hub_ns = f"{tag}-m", f"{tag}-h"
    relay = link = None
    made = []
    try:
        for ns in (member_ns, hub_ns):
            await asyncio.to_thread(ip, "netns", "add", ns)
            made.append(ns)
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
        link = Link(relay, member_ns, f"http://{link_relay.HUB_ADDRESS}:8443")
        yield link
    finally:
        # A namespace outlives its deletion while a process is in it: clients go first.
        for client in link.clients if link is not None else []:
            if client.returncode is None:
                client.kill()
                await client.wait()
        if relay is not None and relay.returncode is None:
            relay.kill()
            await relay.wait()
        for ns in made:
            await asyncio.to_thread(ip, "netns", "del", ns)


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
    link.clients.append(process)
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


async def kill(run: Run) -> bool:
    """SIGKILL, unless it has finished; whether it was killed."""
    if run.process.returncode is not None:
        return False
    run.process.send_signal(signal.SIGKILL)
    await run.process.wait()
    await run.collector  # type: ignore[attr-defined]
    return True


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
    queue, out = tmp_path / "queue", tmp_path / "feed"
    port = free_port()
    async with (
        running_hub("embedded", tmp_path / "hub", demo_secrets, port=port) as hub,
        bad_link(port) as link,
    ):
        login = ("--url", link.url, "--retry-for", "600")
        submit = ("submit", str(tmp_path / "attack.json"), "--queue", str(queue), *login)
        submit += ("--user", "ke-cirt-submit", "--json")
        pull = ("pull", "member-ke-cirt", *login, "--user", "ke-cirt-read", "--out", str(out))
        sender, reader = hub.password("ke-cirt-submit"), hub.password("ke-cirt-read")

        # Submit: the link is cut once objects flow, the client killed once more have.
        run = await start(link, *submit, password=sender)
        await until(lambda: len(run.lines) >= 1, 120, "a first outcome")
        await link.cut(CUT_SECONDS)
        await until(lambda: len(run.lines) >= OBJECTS // 2, 120, "half the outcomes")
        killed = [await kill(run)]
        cut_off = "".join(run.errors)
        run = await start(link, *submit, password=sender)
        assert await finish(run, 180) == 0, "".join(run.errors)
        submit_said = "".join(run.errors)
        submitted = await link.carried()

        # Pull: the client killed once a page is written, the link cut in the next run.
        run = await start(link, *pull, password=reader)
        await until(lambda: any(out.glob("member-ke-cirt-*.json")), 120, "a first page")
        killed.append(await kill(run))
        run = await start(link, *pull, password=reader)
        await asyncio.sleep(2)
        await link.cut(CUT_SECONDS)
        assert await finish(run, 180) == 0, "".join(run.errors)
        pull_said = "".join(run.errors)
        pulled_all = await link.carried() - submitted

        run = await start(link, *pull, password=reader)
        assert await finish(run, 60) == 0, "".join(run.errors)
        nothing_new = await link.carried() - submitted - pulled_all
        again_said = "".join(run.errors)

    # Every object accepted once over the whole queue, whatever the kill interrupted, and
    # the last run says so (not only what it sent itself).
    assert f"the whole queue: {OBJECTS} accepted, 0 refused, 0 waiting" in submit_said
    written = pulled(out)
    assert Counter(o["id"] for o in written if o["id"] in set(ids)) == Counter(ids), pull_said
    assert len(written) == len({(o["id"], o.get("modified")) for o in written})
    # The outage is on the progress line as it happens, with its cause.
    assert "link down since" in cut_off and "no byte moved for" in cut_off, cut_off
    assert "link down since" in pull_said, pull_said

    sys.stderr.write(
        f"on the wire: submit {submitted / OBJECTS:.0f} B per object, pull "
        f"{pulled_all / OBJECTS:.0f} B per object, a pull with nothing new {nothing_new} B\n"
    )
    assert submitted / OBJECTS < SUBMIT_BYTES_PER_OBJECT
    assert pulled_all / OBJECTS < PULL_BYTES_PER_OBJECT
    assert nothing_new < 2048 and "0 new objects" in again_said, again_said
    # Units small enough that the client was killed mid-submit and mid-pull.
    assert killed == [True, True]
