"""Backpressure at intake: while the pipeline is too far behind, the bus does not answer, or
the disk is full (hub.ops.disk), a POST gets 503 with Retry-After instead of a 202, and
intake opens again by itself.

The lag is the pipeline group's: records on the intake topics it has not committed yet,
counted per member (its own intake topic; `<prefix>intake`, which API nodes of earlier
releases wrote for everyone, counts for every member): a member whose submissions wait
over the bound is refused, and the others are not, since the pipeline works each member's
queue beside the others' (hub.pipeline.worker). It is measured in the background (every
`intake_lag_interval` seconds), so a POST only reads numbers. Nothing is queued in memory:
a 202 still means durable on the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from prometheus_client import Counter

from hub.bus import Bus, BusError
from hub.config import Settings
from hub.errors import Unavailable
from hub.ops.disk import RETRY_AFTER, DiskWatch

log = logging.getLogger(__name__)


class IntakeGate:
    """Measures the pipeline's intake lag and says whether intake may take more."""

    def __init__(
        self, bus: Bus, settings: Settings, disk: DiskWatch, disk_refusals: Counter
    ) -> None:
        self._bus = bus
        self._settings = settings
        self.disk = disk
        self._disk_refusals = disk_refusals
        self._stopping = asyncio.Event()
        self.lag: int | None = None  # every intake topic's, for operators
        self._lags: dict[str, int] = {}  # per intake topic
        self.measured_at = 0.0
        self.error: str | None = None

    @property
    def _topics(self) -> list[str]:
        members = (m.id for m in self._settings.federation.members)
        return self._settings.topics.intakes(members)

    async def measure(self) -> dict[str, int]:
        """The intake records the pipeline group has not committed yet, per intake topic."""
        topics = self._topics
        group = f"{self._settings.topic_prefix}pipeline"
        async with asyncio.timeout(max(self._settings.intake_lag_interval * 3, 3.0)):
            ends = await self._bus.end_offsets(topics)
            committed = await self._bus.committed(group, topics)
        lags = dict.fromkeys(topics, 0)
        for tp, end in ends.items():
            lags[tp.topic] = lags.get(tp.topic, 0) + max(0, end - committed.get(tp, 0))
        return lags

    def member_lag(self, member: str) -> int:
        """What waits ahead of a new submission of `member`: its own queue, and the shared
        intake topic's (written by API nodes of earlier releases)."""
        topics = self._settings.topics
        return self._lags.get(topics.member_intake(member), 0) + self._lags.get(topics.intake, 0)

    async def run(self) -> None:
        while not self._stopping.is_set():
            self.disk.measure()
            try:
                self._lags, self.error = await self.measure(), None
                self.lag = sum(self._lags.values())
                self.measured_at = time.monotonic()
            except (BusError, TimeoutError) as exc:
                self.error = str(exc) or "the bus did not answer"
            except Exception as exc:  # a measurement must never stop the gate: say, go on
                if self.error != repr(exc):
                    log.warning("intake lag not measured: %r", exc)
                self.error = repr(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._settings.intake_lag_interval)

    def stop(self) -> None:
        self._stopping.set()

    def check(self, member: str) -> None:
        """Unavailable (503, with when to retry) while the disk is full or the pipeline is
        over its lag bound for `member`."""
        if self.disk.full:
            self._refuse_for_space()
        bound = self._settings.max_intake_lag
        if bound is None or self.lag is None:
            return
        lag = self.member_lag(member)
        if lag <= bound:
            return
        # Roughly the time to work the excess off, bounded: long enough to let it drain.
        wait = max(1, min(60, int(self._settings.intake_lag_interval * 2)))
        raise Unavailable(
            f"the hub is {lag} submissions of {member!r} behind (its bound is {bound} a "
            f"member): nothing was stored; send again in {wait} s",
            retry_after=wait,
        )

    def publish_failed(self, exc: BusError) -> None:
        """After a submission's write failed: Unavailable naming the disk if it was full."""
        if self.disk.failed_for_space(exc):
            self._refuse_for_space()

    def _refuse_for_space(self) -> None:
        self._disk_refusals.inc()
        measured = self.disk.last
        free = f"{measured.free} bytes free" if measured else "free space unknown"
        raise Unavailable(
            f"the hub's disk is full ({free}, {self.disk.reserve} kept in reserve): nothing "
            f"was stored; send again in {RETRY_AFTER} s",
            retry_after=RETRY_AFTER,
        )
