"""The data dir on a small file system (a 24 MB tmpfs the test mounts) that the test fills:
the hub answers 503 with Retry-After instead of a 202 it could not keep, goes on serving
reads, says so on /readyz, the dashboard and /metrics, and takes submissions again by
itself once space returns; every 202 it gave is readable at the end."""

from __future__ import annotations

import asyncio
import errno
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from hub.demo import demo_federation
from tests.conftest import free_port
from tests.faults.support import (
    TAXII,
    HubProcess,
    Tally,
    account_passwords,
    basic,
    collection_ids,
    indicator,
    post_forever,
    settle,
)
from tests.processes import stop
from tests.stixdata import TLP2

READER, FEED, OPERATOR = "sn-cert-read", "region-west-africa", "hub-operator"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB tmpfs, unmounted after the test whatever happened (lazily: a process that
    still holds a file there does not keep it mounted)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(mount)], check=True
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the file system has no byte left; the file."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out:
        for size in (1 << 20, 4096, 512):
            block = b"\0" * size
            while True:
                try:
                    out.write(block)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    return filler


async def post_one(node: HubProcess, username: str, password: str, identity: str, n: int):
    headers = {"Authorization": basic(username, password), "Content-Type": TAXII, "Accept": TAXII}
    body = {"objects": [indicator(identity, TLP2["green"], 900_000 + n)]}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{node.base_url}/taxii2/hub/collections/inbox/objects/", json=body, headers=headers
        ) as response,
    ):
        return (
            response.status,
            response.headers.get("Retry-After"),
            await response.json(content_type=None),
            body["objects"][0]["id"],
        )


async def get_json(node: HubProcess, path: str, auth: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": auth} if auth else {}
    async with (
        aiohttp.ClientSession() as http,
        http.get(node.base_url + path, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


async def metric(node: HubProcess, auth: str, name: str) -> float:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{node.base_url}/metrics", headers={"Authorization": auth}) as r,
    ):
        text = await r.text()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


@pytest.mark.timeout(180)
async def test_a_full_disk_answers_503_keeps_reads_and_recovers_by_itself(
    tmp_path: Path, small_disk: Path, demo_secrets: Path
) -> None:
    federation, _ = demo_federation(demo_secrets.parent)
    passwords = account_passwords(demo_secrets)
    operator = basic(OPERATOR, passwords[OPERATOR])
    submitter, identity = "ng-cert-submit", federation.member("ng-cert").identity
    # No reserve: what is tested is the log itself refusing a write for lack of room.
    node = HubProcess(
        small_disk / "data", free_port(), extra=("--min-free-mb", "0"), log_dir=tmp_path
    )
    node.start(demo_secrets)
    tally, halt = Tally(), asyncio.Event()
    try:
        await node.ready()
        status, _, _, first = await post_one(node, submitter, passwords[submitter], identity, 0)
        assert status == 202
        await settle(
            lambda: collection_ids(node.base_url, FEED, READER, passwords[READER]), {first}, 30
        )
        poster = asyncio.create_task(
            post_forever(
                node.base_url, submitter, passwords[submitter], identity, tally, halt, pause=0.02
            )
        )
        filler = await asyncio.to_thread(fill, small_disk)
        deadline = time.monotonic() + 60
        while tally.statuses[503] == 0:
            assert time.monotonic() < deadline, f"no 503 with the disk full: {tally.statuses}"
            await asyncio.sleep(0.2)
        status, retry_after, body, _ = await post_one(
            node, submitter, passwords[submitter], identity, 1
        )
        assert status == 503 and retry_after and int(retry_after) > 0, (status, body)
        assert "disk is full" in body["description"] and body["http_status"] == "503"

        # Reads go on.
        assert first in await collection_ids(node.base_url, FEED, READER, passwords[READER])
        # /readyz, the dashboard and /metrics say so.
        code, ready = await get_json(node, "/readyz")
        assert (code, ready) == (200, {"status": "degraded", "degraded": ["disk"]})
        code, ready = await get_json(node, "/readyz", operator)
        assert ready["checks"]["disk"]["ok"] is False, ready
        code, snapshot = await get_json(node, "/api/v1/dashboard", operator)
        assert code == 200 and snapshot["disk"]["ok"] is False and snapshot["disk"]["refusals"]
        assert await metric(node, operator, "cirt_hub_disk_full_refusals_total") >= 1

        filler.unlink()  # space returns
        deadline = time.monotonic() + 60
        while True:
            status, _, _, last = await post_one(node, submitter, passwords[submitter], identity, 2)
            if status == 202:
                break
            assert time.monotonic() < deadline, "intake did not open again"
            await asyncio.sleep(0.5)
        halt.set()
        await poster
        accepted = {*tally.accepted, first, last}
        found = await settle(
            lambda: collection_ids(node.base_url, FEED, READER, passwords[READER]), accepted, 90
        )
        assert not accepted - set(found), f"{len(accepted - set(found))} accepted objects lost"
        code, ready = await get_json(node, "/readyz")
        assert (code, ready["status"]) == (200, "ready")
    finally:
        halt.set()
        stop(node.proc)
    assert set(tally.statuses) <= {202, 503}, tally.statuses
    assert tally.statuses[202] > 0


async def test_under_the_reserve_intake_closes_before_the_disk_is_full(
    tmp_path: Path, demo_secrets: Path
) -> None:
    from hub.ops.disk import space
    from tests.hubs import member_identity, running_hub

    # A reserve larger than the whole file system: the test's disk is always "under" it.
    reserve = space(tmp_path).total + 1
    async with running_hub(
        "embedded", tmp_path / "data", demo_secrets, min_free_bytes=reserve, intake_lag_interval=0.1
    ) as hub:
        node = HubProcess(tmp_path / "data", int(hub.base_url.rsplit(":", 1)[1]))
        submitter = "gh-cert-submit"
        await asyncio.sleep(0.3)  # the gate has measured the disk
        status, retry_after, body, _ = await post_one(
            node, submitter, hub.password(submitter), member_identity(hub, "gh-cert"), 3
        )
        assert status == 503 and int(retry_after or 0) > 0
        assert f"{reserve} kept in reserve" in body["description"]
        code, ready = await get_json(node, "/readyz")
        assert (code, ready) == (200, {"status": "degraded", "degraded": ["disk"]})
