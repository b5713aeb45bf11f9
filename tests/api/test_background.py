"""A background runner that fails is restarted, and its failure is visible (for /readyz),
also when the failure is a CancelledError leaking out of a library (aiokafka does)."""

from __future__ import annotations

import asyncio

import pytest

from hub.api.background import supervised


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
