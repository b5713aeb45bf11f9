"""A background runner that fails is restarted, and its failure is visible (for /readyz)."""

from __future__ import annotations

import asyncio

from hub.api.background import supervised


class Flaky:
    """Fails on its first run; the second run works until stopped."""

    def __init__(self) -> None:
        self.runs = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("bus connection dropped")
        await self._stop.wait()

    def stop(self) -> None:
        self._stop.set()


async def test_a_failed_runner_is_restarted_and_its_error_kept() -> None:
    runner = Flaky()
    async with supervised("pipeline", runner) as state:
        await asyncio.sleep(0.1)
        assert not state.running and state.last_error == "RuntimeError: bus connection dropped"
        async with asyncio.timeout(5):
            while not (state.running and runner.runs == 2):
                await asyncio.sleep(0.05)
        assert state.restarts == 1
    assert not state.running  # stopped cleanly when the block ended
