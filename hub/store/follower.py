"""Keeps a node's view up to date with the feed and status topics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from hub.bus import Bus, BusError, Position, Record, TopicPartition
from hub.bus.interrupt import fetch_until
from hub.store.view import View

log = logging.getLogger(__name__)


class ViewFollower:
    """Reads the view's topics from the view's own positions and applies them."""

    def __init__(
        self,
        bus: Bus,
        view: View,
        on_applied: Callable[[Sequence[Record]], None] | None = None,
    ) -> None:
        self._bus = bus
        self._view = view
        self._on_applied = on_applied  # told of each batch once it is readable
        self._positions: dict[TopicPartition, int] = {}
        # Batches applied per topic, counted once the view holds them: a live stream looks
        # at the view only when its collection's count moved, not on every wake-up.
        self._applied: dict[str, int] = {}
        self._batches = 0  # of any topic
        self._advanced = asyncio.Condition()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        self._positions = await self._view.positions()
        reader = self._bus.reader(self._view.topics, dict(self._positions))
        await reader.start()
        try:
            while not self._stopping.is_set():
                try:
                    records = await fetch_until(
                        self._stopping, reader.fetch(max_records=1000, timeout=0.5)
                    )
                except BusError as exc:
                    log.warning("view follower cannot read the bus: %s", exc)
                    await asyncio.sleep(1.0)
                    continue
                if not records:
                    continue
                await self._view.apply(records)
                if self._on_applied is not None:
                    self._on_applied(records)
                async with self._advanced:
                    for r in records:
                        self._positions[r.tp] = max(self._positions.get(r.tp, 0), r.offset + 1)
                    for topic in {r.topic for r in records}:
                        self._applied[topic] = self._applied.get(topic, 0) + 1
                    self._batches += 1
                    self._advanced.notify_all()
        finally:
            await reader.stop()

    def stop(self) -> None:
        self._stopping.set()

    def applied(self, topic: str | None) -> int:
        """How many batches with records of `topic` (None: of any topic) the view has applied
        since start: read it before reading the view, and a later different count means
        there is more."""
        return self._batches if topic is None else self._applied.get(topic, 0)

    def has_seen(self, positions: Sequence[Position]) -> bool:
        return all(
            self._positions.get(TopicPartition(p.topic, p.partition), 0) > p.offset
            for p in positions
        )

    async def wait_for(self, positions: Sequence[Position], timeout: float) -> bool:
        """Wait until the view holds the records at `positions`; False on timeout."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self._advanced:
                await self._advanced.wait_for(lambda: self.has_seen(positions))
        return self.has_seen(positions)

    async def wait_for_change(
        self, topic: str | None, seen: int | None, timeout: float, stop: asyncio.Event
    ) -> None:
        """Return once `applied(topic)` differs from `seen`, `timeout` passes or `stop` is set.

        Keyed on the count the caller last saw, so a batch applied while it was busy elsewhere
        (reading the view, writing to its client) wakes it at once instead of being missed.
        """
        async with self._advanced:
            waiter = asyncio.ensure_future(
                self._advanced.wait_for(lambda: self.applied(topic) != seen)
            )
            stopper = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait(
                    (waiter, stopper), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for task in (waiter, stopper):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    def position(self, tp: TopicPartition) -> int:
        """The next offset the view will take from `tp`."""
        return self._positions.get(tp, 0)

    def lag(self, ends: dict[TopicPartition, int]) -> int:
        """Records on the bus not yet in the view."""
        return sum(max(0, end - self._positions.get(tp, 0)) for tp, end in ends.items())
