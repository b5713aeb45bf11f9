"""The audit chainer: links the pipeline's routing decisions into the hash chain, in order.

Pipeline workers may be many, each writing decisions inside its own atomic unit; the
`decisions` topic has one partition, so they land in one total order. One chainer at a
time owns that partition (a consumer group), reads the chain's end from the `audit`
topic before each batch (another node may have been the owner in between), and writes the
chained records together with its consumed offsets as one unit: after a crash, every
decision is in the chain exactly once, in the order the decisions were written.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from hub.audit.chain import Link, chained
from hub.bus import Bus, GroupConsumer, read_to
from hub.bus.interrupt import IDLE_FETCH_SECONDS, fetch_until
from hub.bus.membership import commit_unit, consume_until_stopped
from hub.config import Settings
from hub.records import AuditRecord, DecisionRecord
from hub.topics import Topics

log = logging.getLogger(__name__)


async def chain_end(bus: Bus, topic: str) -> Link:
    """The last record of the audit chain on the bus (the genesis link when it is empty)."""
    ends = await bus.end_offsets([topic])
    end = sum(ends.values())  # one partition
    window = 16
    while end:
        start = max(0, end - window)
        reader = bus.reader([topic], {tp: start for tp in ends})
        await reader.start()
        try:
            records = await read_to(reader, ends)
        finally:
            await reader.stop()
        if records:
            last = AuditRecord.from_record(records[-1])
            return Link(last.seq, last.hash)
        if start == 0:
            break
        window *= 4  # only transaction markers or aborted records at the end: look further
    return Link()


@dataclass
class AuditChainer:
    bus: Bus
    topics: Topics
    group: str
    transactional_id: str
    batch_size: int = 500
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _written: Link = field(default_factory=Link)  # the end of what this chainer committed

    async def run(self) -> None:
        await consume_until_stopped(
            self.bus,
            self.group,
            [self.topics.decisions],
            self.transactional_id,
            self._stopping,
            self._consume,
        )

    async def _consume(self, consumer: GroupConsumer) -> None:
        while not self._stopping.is_set():
            batch = await fetch_until(
                self._stopping,
                consumer.fetch(max_records=self.batch_size, timeout=IDLE_FETCH_SECONDS),
            )
            if not batch:
                continue
            # Kafka may not show our own last unit to readers yet (its commit markers are
            # written after the commit returns), so the later of what we wrote and what the
            # log shows is the end; the log is later when another node chained meanwhile.
            link = max(
                self._written, await chain_end(self.bus, self.topics.audit), key=lambda k: k.seq
            )
            messages = []
            for record in batch:
                entry = AuditRecord(chained(DecisionRecord.from_record(record).doc, link))
                link = Link(entry.seq, entry.hash)
                messages.append(entry.to_message(self.topics))
            if not await commit_unit(consumer, batch, messages, "audit batch"):
                continue
            self._written = link

    def stop(self) -> None:
        self._stopping.set()


def audit_chainer(settings: Settings, bus: Bus) -> AuditChainer:
    """The node's chainer; all nodes' chainers share one group, so one runs at a time."""
    prefix = settings.topic_prefix
    return AuditChainer(
        bus=bus,
        topics=settings.topics,
        group=f"{prefix}audit-chain",
        transactional_id=f"{prefix}audit-chain-{settings.node_id}",
    )
