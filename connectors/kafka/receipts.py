"""A member's receipts on Kafka: what became of each record it produced, read from its own
`<prefix>receipts.member-<id>` (docs/connectors/kafka-native.md, Receipts).

    async with Receipts(kafka, "ng-cert") as receipts:   # before producing: reads from here
        done = await producer.send(bundle)
        [receipt] = (await receipts.wait([done.where])).values()
"""

from __future__ import annotations

import time
from collections.abc import Collection
from types import TracebackType
from typing import Self

import aiokafka

from connectors.kafka.connection import KafkaConnection, topic_partitions
from hub.bus.kafka_stop import stop_consumer
from hub.records import ReceiptRecord
from hub.topics import Topics


class ReceiptsError(Exception):
    """Receipts cannot be read; the message says why."""


class ReceiptsTimeout(ReceiptsError):
    """Some receipts did not come in time; the message names the records."""


class Receipts:
    """Reads the member's receipts topic, committed records only, from where it stood when
    started (so start it before producing what it waits for)."""

    def __init__(
        self, connection: KafkaConnection, member: str, *, topic_prefix: str = "cirt-hub."
    ) -> None:
        self.member = member
        self.topic = Topics(topic_prefix).receipts(member)
        self._connection = connection
        self._consumer: aiokafka.AIOKafkaConsumer | None = None
        self._seen: dict[str, ReceiptRecord] = {}

    async def start(self) -> None:
        if self._consumer is not None:
            return
        partitions = await topic_partitions(self._connection, self.topic)
        if not partitions:
            raise ReceiptsError(f"no topic {self.topic!r} that this principal may describe")
        consumer = aiokafka.AIOKafkaConsumer(
            # The hub writes receipts in its transactions: an aborted one is no receipt.
            isolation_level="read_committed",
            enable_auto_commit=False,
            **self._connection.options(),
        )
        await consumer.start()
        try:
            tps = [aiokafka.TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:
                await consumer.position(tp)  # fixed now: what lands later is read
        except BaseException:
            await stop_consumer(consumer)
            raise
        self._consumer = consumer

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await stop_consumer(consumer)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def wait(self, where: Collection[str], timeout: float = 60) -> dict[str, ReceiptRecord]:
        """The receipts of the records at `where` (`<topic>/<partition>/<offset>`, as
        Produced.where says), once each has come; ReceiptsTimeout after `timeout` s."""
        if self._consumer is None:
            raise RuntimeError("Receipts.wait() before start()")
        deadline = time.monotonic() + timeout
        while missing := [w for w in where if w not in self._seen]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ReceiptsTimeout(f"no receipt within {timeout:g} s for {', '.join(missing)}")
            batches = await self._consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            for record in (r for records in batches.values() for r in records):
                if record.key is not None and record.value is not None:
                    found = ReceiptRecord.from_value(record.value, self.member)
                    self._seen[found.key] = found
        return {w: self._seen[w] for w in where}
