"""The embargo releaser: moves held deliveries to their feeds once their time has come.

The pipeline writes an embargoed delivery to `held` (one partition) in the same unit as
everything else it routes, so nothing under embargo reaches a feed, a TAXII reader or a
Kafka reader early. One releaser at a time owns `held` (a consumer group). Deliveries are
held in order of routing but fall due in another order (members set different embargoes),
so a delivery released ahead of an earlier one is marked released by a marker record on
`held`, written in the same unit as the feed record; offsets are committed only up to
where everything is released. After a crash, the records past the committed offset are
read again with their markers, and none is released twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from hub.bus import Bus, GroupConsumer, Message, Record
from hub.bus.interrupt import IDLE_FETCH_SECONDS, fetch_until
from hub.bus.membership import commit_unit, consume_until_stopped
from hub.config import Settings
from hub.records import HeldRecord, ReleasedMarker
from hub.stix import timestamps
from hub.topics import Topics

log = logging.getLogger(__name__)


def _due(record: Record, now: datetime) -> bool:
    try:
        return timestamps.parse(HeldRecord.release_at_of(record)) <= now
    except ValueError:
        return True  # unreadable time: release rather than hold forever; the sender chose to share


def released_message(record: Record, topics: Topics, now: str) -> Message:
    """The feed record for a held delivery, dated when it was released."""
    held = HeldRecord.from_record(record)
    return replace(held.feed, date_added=now).to_message(topics)


@dataclass
class _Backlog:
    """What this owner of `held` has read and not yet committed past."""

    records: list[Record] = field(default_factory=list)  # in log order
    released: set[int] = field(default_factory=set)  # offsets released (markers seen or sent)

    def add(self, batch: list[Record]) -> None:
        for record in batch:
            marker = ReleasedMarker.from_record(record)
            if marker is not None:
                self.released.add(marker.offset)
            self.records.append(record)

    def done(self, record: Record) -> bool:
        return record.offset in self.released or ReleasedMarker.from_record(record) is not None


@dataclass
class EmbargoReleaser:
    bus: Bus
    topics: Topics
    group: str
    transactional_id: str
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        await consume_until_stopped(
            self.bus,
            self.group,
            [self.topics.held],
            self.transactional_id,
            self._stopping,
            self._consume,
        )

    async def _consume(self, consumer: GroupConsumer) -> None:
        backlog = _Backlog()
        caught_up = False
        while not self._stopping.is_set():
            # Deliveries held (or `held` not read through yet): look at the clock twice a
            # second, as the release time promises; none: only a new one can be due.
            waiting = not caught_up or any(not backlog.done(r) for r in backlog.records)
            timeout = 0.5 if waiting else IDLE_FETCH_SECONDS
            batch = await fetch_until(
                self._stopping, consumer.fetch(max_records=500, timeout=timeout)
            )
            backlog.add(batch)
            if not caught_up:
                # Release nothing until everything on `held` has been read once: a marker
                # for a record read again may lie further on than one fetch reaches.
                caught_up = not batch
                continue
            now = datetime.now(UTC)
            due = [r for r in backlog.records if not backlog.done(r) and _due(r, now)]
            prefix: list[Record] = []
            for record in backlog.records:
                if not (backlog.done(record) or record in due):
                    break
                prefix.append(record)
            if not due and not prefix:
                continue
            stamp = timestamps.format_micros(now)
            messages = []
            for record in due:
                messages.append(released_message(record, self.topics, stamp))
                if record not in prefix:
                    marker = ReleasedMarker(record.offset, record.key)
                    messages.append(marker.to_message(self.topics))
            if not await commit_unit(consumer, prefix, messages, "embargo release"):
                # Another owner took `held`: a fresh consumer starts from the committed
                # offset, markers and all.
                return
            backlog.released.update(r.offset for r in due)
            backlog.records = backlog.records[len(prefix) :]

    def stop(self) -> None:
        self._stopping.set()


def releaser(settings: Settings, bus: Bus) -> EmbargoReleaser:
    prefix = settings.topic_prefix
    return EmbargoReleaser(
        bus=bus,
        topics=settings.topics,
        group=f"{prefix}embargo",
        transactional_id=f"{prefix}embargo-{settings.node_id}",
    )
