"""Background runners (pipeline worker, view follower) kept alive for the app's lifetime.

A runner that fails unexpectedly is restarted with growing pauses (1 s … 30 s) rather
than left dead behind a server that still answers 202; while it is down, /readyz says so.
A runner that failed for lack of room on the disk is retried every few seconds instead: it
waits for space (an operator's, or retention's), and /readyz counts it as the full disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from hub.cancellation import being_cancelled
from hub.ops.disk import PROBE_SECONDS, for_lack_of_room

log = logging.getLogger(__name__)


class Runner(Protocol):
    async def run(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class Supervised:
    """What /readyz reads: whether the runner is running, and its last failure."""

    name: str
    running: bool = False
    last_error: str | None = None
    restarts: int = 0
    # Down because its last write found no room on the disk (not a fault of its own).
    waiting_for_disk: bool = False
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def _failed(self, exc: BaseException, delay: float) -> float:
        """Record the failure; how long to wait before the next run."""
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.waiting_for_disk = for_lack_of_room(exc)
        if self.waiting_for_disk:
            log.warning("%s: no room on the disk; trying again in %.0f s", self.name, PROBE_SECONDS)
            return PROBE_SECONDS
        log.error("%s failed; restarting in %.0f s", self.name, delay, exc_info=exc)
        return delay

    async def _keep_running(self, runner: Runner) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            self.running, self.waiting_for_disk, pause = True, False, delay
            try:
                await runner.run()
                return
            except asyncio.CancelledError as exc:
                if being_cancelled():
                    raise
                # A library's own cancellation leaking out (aiokafka does on a dead broker):
                # a failure like any other, not a reason to stay down behind a hub that
                # still answers 202.
                pause = self._failed(exc, delay)
            except Exception as exc:
                pause = self._failed(exc, delay)
            finally:
                self.running = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)
            if not self.waiting_for_disk:
                delay = min(delay * 2, 30.0)
            self.restarts += 1


@contextlib.asynccontextmanager
async def supervised(
    name: str, runner: Runner, drain_seconds: float = 10.0
) -> AsyncIterator[Supervised]:
    """Run `runner` until the block ends; then ask it to stop and wait for it to finish."""
    state = Supervised(name)
    task = asyncio.create_task(state._keep_running(runner), name=name)
    try:
        yield state
    finally:
        state._stopping.set()
        runner.stop()
        try:
            await asyncio.wait_for(asyncio.shield(task), drain_seconds)
        except TimeoutError:
            log.warning("%s did not stop within %.0f s; cancelling it", name, drain_seconds)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
