"""Background runners (pipeline worker, view follower) kept alive for the app's lifetime.

A runner that fails unexpectedly is restarted with growing pauses (1 s … 30 s) rather
than left dead behind a server that still answers 202; while it is down, /readyz says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from hub.cancellation import being_cancelled

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
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def _failed(self, exc: BaseException, delay: float) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        log.error("%s failed; restarting in %.0f s", self.name, delay, exc_info=exc)

    async def _keep_running(self, runner: Runner) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            self.running = True
            try:
                await runner.run()
                return
            except asyncio.CancelledError as exc:
                if being_cancelled():
                    raise
                # A library's own cancellation leaking out (aiokafka does on a dead broker):
                # a failure like any other, not a reason to stay down behind a hub that
                # still answers 202.
                self._failed(exc, delay)
            except Exception as exc:
                self._failed(exc, delay)
            finally:
                self.running = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
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
