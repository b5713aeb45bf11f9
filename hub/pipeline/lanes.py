"""Lanes: fetched intake records waiting their turn, one first-in first-out lane per partition.

Each member's submissions are one partition's records (its own intake topic, keyed by
member), so a lane is one member's queue. A lane hands out one unit at a time (its oldest
records, up to a count and a byte budget) and no other until that one is done: a member's
submissions keep their order, and lanes take turns for the threads that process them.

What a lane took is remembered by offset: after a rewind (a unit that did not commit sends
every partition back to its committed offset) the records fetched again that a lane
already holds, or has handed out, are dropped instead of being processed twice.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from hub.bus import Record, TopicPartition


@dataclass
class _Lane:
    queue: deque[Record] = field(default_factory=deque)
    queued_bytes: int = 0
    next_offset: int | None = None  # past the last record taken; None: take what comes
    busy: bool = False  # a unit of this lane is being processed or committed


def _size(record: Record) -> int:
    return len(record.value) + len(record.key or b"")


class Lanes:
    """The lanes of one consumer: records in, units out, round robin between lanes."""

    def __init__(self, unit_records: int, unit_bytes: int) -> None:
        self.unit_records = unit_records
        self.unit_bytes = unit_bytes
        self._lanes: dict[TopicPartition, _Lane] = {}
        # Lanes with records and no unit out, longest waiting first.
        self._ready: OrderedDict[TopicPartition, None] = OrderedDict()

    def add(self, records: Iterable[Record]) -> None:
        """Records as fetched, in offset order per partition; ones already taken are dropped."""
        for record in records:
            lane = self._lanes.setdefault(record.tp, _Lane())
            if lane.next_offset is not None and record.offset < lane.next_offset:
                continue  # fetched again after a rewind: queued or handed out already
            lane.queue.append(record)
            lane.queued_bytes += _size(record)
            lane.next_offset = record.offset + 1
            if not lane.busy:
                self._ready.setdefault(record.tp)

    def full(self) -> set[TopicPartition]:
        """Lanes holding two units' worth: fetching more of them waits until they drain."""
        return {
            tp
            for tp, lane in self._lanes.items()
            if len(lane.queue) >= 2 * self.unit_records or lane.queued_bytes >= 2 * self.unit_bytes
        }

    def take(self, room: int) -> list[list[Record]]:
        """Up to `room` units, one per lane that has records and none out, oldest lane first.
        A unit is a lane's first records up to `unit_records` and `unit_bytes` (at least one)."""
        units: list[list[Record]] = []
        while self._ready and len(units) < room:
            tp, _ = self._ready.popitem(last=False)
            lane = self._lanes[tp]
            unit: list[Record] = []
            size = 0
            while lane.queue and len(unit) < self.unit_records:
                record_size = _size(lane.queue[0])
                if unit and size + record_size > self.unit_bytes:
                    break
                unit.append(lane.queue.popleft())
                size += record_size
            lane.queued_bytes -= size
            lane.busy = True
            units.append(unit)
        return units

    def done(self, tp: TopicPartition, *, rewound: bool = False) -> None:
        """The lane's unit is over. `rewound`: it did not commit and the consumer went back to
        the committed offsets, so the lane starts again from whatever is fetched next."""
        lane = self._lanes.get(tp)
        if lane is None:
            return
        lane.busy = False
        if rewound:
            lane.queue.clear()
            lane.queued_bytes = 0
            lane.next_offset = None
        if lane.queue:
            self._ready.setdefault(tp)
        elif lane.next_offset is None:
            del self._lanes[tp]

    def reset(self) -> None:
        """A rebalance: every partition starts again from its committed offset, so nothing
        held is kept; a lane with a unit out stays busy until that unit is done."""
        self._ready.clear()
        for tp, lane in list(self._lanes.items()):
            lane.queue.clear()
            lane.queued_bytes = 0
            lane.next_offset = None
            if not lane.busy:
                del self._lanes[tp]

    @property
    def busy(self) -> int:
        """Lanes with a unit out."""
        return sum(1 for lane in self._lanes.values() if lane.busy)
