"""A background runner that fails is restarted, and its failure is visible (for /readyz),
also when the failure is a CancelledError leaking out of a library (aiokafka does); one that
found no room on the disk waits for it, the node degraded for the disk, not out of service."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from hub.api.background import supervised
from hub.api.keys import RUNNERS
from hub.bus.errors import StorageFull
from hub.ops.disk import PROBE_SECONDS
from tests.faults.support import basic
from tests.hubs import running_hub


async def drops_connection() -> None:
    raise RuntimeError("bus connection dropped")


async def leaks_a_cancellation() -> None:
    # Like aiokafka's consumer stop(): awaits a task of its own that it cancelled.
    inner = asyncio.create_task(asyncio.sleep(10))
    await asyncio.sleep(0)
    inner.cancel()
    await inner


class Flaky:
    """Fails on its first run; the second run works until stopped."""

    def __init__(self, first_run) -> None:
        self.first_run = first_run
        self.runs = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        if self.runs == 1:
            await self.first_run()
        await self._stop.wait()

    def stop(self) -> None:
        self._stop.set()


@pytest.mark.parametrize(
    ("first_run", "error"),
    [
        (drops_connection, "RuntimeError: bus connection dropped"),
        (leaks_a_cancellation, "CancelledError: "),
    ],
)
async def test_a_failed_runner_is_restarted_and_its_error_kept(first_run, error: str) -> None:
    runner = Flaky(first_run)
    async with supervised("pipeline", runner) as state:
        await asyncio.sleep(0.1)
        assert not state.running and state.last_error == error
        async with asyncio.timeout(5):
            while not (state.running and runner.runs == 2):
                await asyncio.sleep(0.05)
        assert state.restarts == 1
    assert not state.running  # stopped cleanly when the block ended


async def finds_no_room() -> None:
    try:
        raise sqlite3.OperationalError("database or disk is full")
    except sqlite3.OperationalError as exc:
        exc.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
        raise StorageFull("embedded log: database or disk is full") from exc


async def test_a_runner_without_room_on_the_disk_waits_for_it_and_the_node_stays_in_service(
    tmp_path: Path, demo_secrets: Path
) -> None:
    runner = Flaky(finds_no_room)
    async with (
        running_hub("embedded", tmp_path / "data", demo_secrets) as hub,
        supervised("pipeline-test", runner) as state,
    ):
        hub.app[RUNNERS].append(state)
        await asyncio.sleep(0.1)
        assert not state.running and state.waiting_for_disk
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{hub.base_url}/readyz") as response:
                # Degraded for the disk (reads still served), not out of the load balancer.
                assert (response.status, await response.json()) == (
                    200,
                    {"status": "degraded", "degraded": ["disk"]},
                )
            operator = {"Authorization": basic("hub-operator", hub.password("hub-operator"))}
            async with http.get(f"{hub.base_url}/readyz", headers=operator) as response:
                checks = (await response.json())["checks"]
            assert checks["disk"]["ok"] is False and checks["disk"]["waiting"] == ["pipeline-test"]
            assert checks["pipeline-test"]["waiting_for_disk"] is True
            # Retried at the disk's pace, not after a growing back-off.
            async with asyncio.timeout(PROBE_SECONDS + 2):
                while not (state.running and runner.runs == 2):
                    await asyncio.sleep(0.05)
            assert not state.waiting_for_disk
            async with http.get(f"{hub.base_url}/readyz") as response:
                assert (response.status, await response.json()) == (200, {"status": "ready"})
