"""The Kafka bus: aiokafka against Apache Kafka (KRaft), for hubs that outgrow one machine.

Producers are idempotent with `acks=all`, so a returned publish survives a broker failover
and retries never duplicate; publishes are transactions (hub.bus.kafka_publish), so one
that failed is never seen. The atomic unit is a Kafka transaction that carries the
consumed offsets (`send_offsets_to_transaction`); every consumer reads `read_committed`,
so records of an aborted or unfinished unit are never seen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiokafka
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, TopicAlreadyExistsError

from hub.bus import (
    MAX_RECORD_BYTES,
    Message,
    Position,
    Record,
    TopicPartition,
    TopicSpec,
    next_offsets,
)
from hub.bus.errors import BusUnavailable, CommitFailed, MessageTooLarge
from hub.bus.kafka_publish import BoundedSends, TransactionalPublisher
from hub.bus.kafka_security import KafkaSecurity
from hub.bus.kafka_stop import stop_consumer
from hub.bus.logdirs import LogDir, describe_log_dirs


@dataclass(frozen=True)
class KafkaSettings:
    """How to reach the cluster; parsed from a `kafka://host:port[,host:port]` bus URL."""

    bootstrap_servers: str
    client_id: str = "cirt-hub"
    replication_factor: int = 1
    request_timeout_ms: int = 30_000
    # A publish not committed by then is aborted and reported as failed (the API's 503).
    publish_timeout: float = 5.0
    # Producers, topics and fetches all allow this much (hub.bus.MAX_RECORD_BYTES). A
    # transaction also keeps its unacknowledged records within it, so every produce request
    # stays under a broker's socket.request.max.bytes (100 MiB by default).
    max_message_bytes: int = MAX_RECORD_BYTES
    security: KafkaSecurity = field(default_factory=KafkaSecurity)  # TLS, SASL; default none
    extra: dict[str, Any] = field(default_factory=dict)


def _records(batches: dict[Any, list[Any]]) -> list[Record]:
    out: list[Record] = []
    for tp, items in batches.items():
        out.extend(
            Record(
                tp.topic,
                tp.partition,
                r.offset,
                r.key,
                r.value,
                tuple(r.headers or ()),
                r.timestamp,
            )
            for r in items
        )
    return out


def _kafka_offsets(offsets: dict[TopicPartition, int]) -> dict[aiokafka.TopicPartition, int]:
    return {aiokafka.TopicPartition(tp.topic, tp.partition): off for tp, off in offsets.items()}


class KafkaBus:
    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._publisher: TransactionalPublisher | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._meta: aiokafka.AIOKafkaConsumer | None = None
        self._security: dict[str, Any] | None = None

    @property
    def max_record_bytes(self) -> int:
        return self.settings.max_message_bytes

    def client_options(self) -> dict[str, Any]:
        """What every aiokafka client of this bus is made with (TLS and SASL included)."""
        s = self.settings
        if self._security is None:
            # Built at the first client, not in the constructor: it reads the TLS files.
            self._security = s.security.client_options()
        return {
            "bootstrap_servers": s.bootstrap_servers,
            "client_id": s.client_id,
            "request_timeout_ms": s.request_timeout_ms,
            **self._security,
            **s.extra,
        }

    async def start(self) -> None:
        if self._admin is not None:
            return
        admin = AIOKafkaAdminClient(**self.client_options())
        meta = aiokafka.AIOKafkaConsumer(
            enable_auto_commit=False, isolation_level="read_committed", **self.client_options()
        )
        try:
            await admin.start()
            await meta.start()
        except KafkaError as exc:
            await admin.close()
            await stop_consumer(meta)
            raise BusUnavailable(f"Kafka at {self.settings.bootstrap_servers}: {exc}") from exc
        self._admin, self._meta = admin, meta
        self._publisher = TransactionalPublisher(
            self.client_options(), self.settings.max_message_bytes, self.settings.publish_timeout
        )

    async def stop(self) -> None:
        publisher, admin, meta = self._publisher, self._admin, self._meta
        self._publisher = self._admin = self._meta = None
        if publisher is not None:
            await publisher.stop()
        if admin is not None:
            await admin.close()
        if meta is not None:
            await stop_consumer(meta)

    def _running(self) -> tuple[TransactionalPublisher, AIOKafkaAdminClient]:
        if self._publisher is None or self._admin is None:
            raise BusUnavailable("Kafka bus is not running")
        return self._publisher, self._admin

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        _, admin = self._running()
        existing = set(await admin.list_topics())
        size = {"max.message.bytes": str(self.settings.max_message_bytes)}
        # Feed and audit topics are the system of record: no time or size retention.
        forever = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
        new = [
            NewTopic(
                s.name,
                num_partitions=s.partitions,
                replication_factor=self.settings.replication_factor,
                topic_configs={
                    **size,
                    **(forever if s.retain_forever else {}),
                    **({"message.timestamp.type": "LogAppendTime"} if s.append_time else {}),
                    **({"cleanup.policy": "compact"} if s.compact else {}),
                },
            )
            for s in specs
            if s.name not in existing
        ]
        if not new:
            return
        response = await admin.create_topics(new)
        for name, code, *_ in getattr(response, "topic_errors", []):
            if code not in (0, TopicAlreadyExistsError.errno):
                raise BusUnavailable(f"could not create Kafka topic {name!r} (error code {code})")
        await self._wait_for_metadata([s.name for s in new])

    async def _wait_for_metadata(self, topics: Sequence[str]) -> None:
        for _ in range(100):
            if {tp.topic for tp in await self.partitions(topics)} == set(topics):
                return
            await asyncio.sleep(0.1)
        raise BusUnavailable(f"Kafka topics {list(topics)} did not appear in metadata")

    async def publish(self, messages: Sequence[Message]) -> list[Position]:
        publisher, _ = self._running()
        return await publisher.publish(messages)

    async def partitions(self, topics: Sequence[str]) -> list[TopicPartition]:
        """Every partition of the `topics` that exist now (asking never creates a topic)."""
        _, admin = self._running()
        try:
            described = await admin.describe_topics(sorted(set(topics)))
        except KafkaError as exc:
            raise BusUnavailable(f"Kafka metadata: {exc}") from exc
        return sorted(
            TopicPartition(t["topic"], p["partition"])
            for t in described
            if t["error_code"] == 0
            for p in t["partitions"]
        )

    async def log_dirs(self, prefix: str) -> list[LogDir]:
        """Every broker's log dirs, with the bytes each holds of the topics named `prefix`*."""
        _, admin = self._running()
        try:
            topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
            partitions: dict[str, list[int]] = {}
            for tp in await self.partitions(topics):
                partitions.setdefault(tp.topic, []).append(tp.partition)
            return await describe_log_dirs(admin, partitions)
        except KafkaError as exc:
            raise BusUnavailable(f"Kafka log dirs: {exc}") from exc

    async def end_offsets(self, topics: Sequence[str]) -> dict[TopicPartition, int]:
        assert self._meta is not None
        tps = await self.partitions(topics)
        if not tps:
            return {}
        ends = await self._meta.end_offsets([aiokafka.TopicPartition(*tp) for tp in tps])
        return {TopicPartition(tp.topic, tp.partition): off for tp, off in ends.items()}

    async def committed(self, group: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
        _, admin = self._running()
        tps = await self.partitions(topics)
        try:
            offsets = await admin.list_consumer_group_offsets(
                group, partitions=[aiokafka.TopicPartition(*tp) for tp in tps]
            )
        except KafkaError as exc:
            raise BusUnavailable(f"Kafka committed offsets of {group!r}: {exc}") from exc
        result = {tp: 0 for tp in tps}
        for tp, meta in offsets.items():
            if meta.offset >= 0:
                result[TopicPartition(tp.topic, tp.partition)] = meta.offset
        return result

    def group_consumer(
        self, group: str, topics: Sequence[str], *, transactional_id: str | None = None
    ) -> KafkaGroupConsumer:
        return KafkaGroupConsumer(self, group, list(topics), transactional_id)

    def reader(self, topics: Sequence[str], start: dict[TopicPartition, int]) -> KafkaReader:
        return KafkaReader(self, list(topics), dict(start))


class _Revocations(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Counts rebalances, and holds each until the unit in flight has committed or aborted.

    aiokafka's offset commit inside a transaction carries no group generation, so without
    this a unit could commit offsets for partitions already handed to another member. The
    count is taken first: a unit that checks it inside its transaction then knows whether
    its records were fetched before a rebalance (even one that gave the partitions back).
    """

    def __init__(self, unit_lock: asyncio.Lock, revoking: Callable[[], None]) -> None:
        self._unit_lock = unit_lock
        self._revoking = revoking

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self._revoking()
        async with self._unit_lock:
            pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


class KafkaGroupConsumer:
    def __init__(
        self, bus: KafkaBus, group: str, topics: list[str], transactional_id: str | None
    ) -> None:
        self._bus = bus
        self._group = group
        self._topics = topics
        self._transactional_id = transactional_id
        self._consumer: aiokafka.AIOKafkaConsumer | None = None
        self._producer: aiokafka.AIOKafkaProducer | None = None
        self._unit_lock = asyncio.Lock()
        self._rewind_pending = False
        self._rebalances = 0

    @property
    def generation(self) -> int:
        return self._rebalances

    def _revoking(self) -> None:
        self._rebalances += 1

    async def start(self) -> None:
        if self._consumer is not None:
            return
        options = self._bus.client_options()
        consumer = aiokafka.AIOKafkaConsumer(
            group_id=self._group,
            # Offsets move only with the unit that used the records (or an explicit commit).
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            # Frequent heartbeats make a rebalance (a member joining or leaving) take well
            # under a second instead of ~3 s; the cost is a small request every 0.5 s.
            heartbeat_interval_ms=500,
            max_partition_fetch_bytes=self._bus.settings.max_message_bytes,
            # Static membership (KIP-345): a node that restarts (say, after a crash) takes
            # its partitions back at once instead of waiting out the dead member's session.
            # The cost: a node stopped for good holds them until its session times out.
            group_instance_id=self._transactional_id,
            **options,
        )
        producer = None
        if self._transactional_id is not None:
            # start() fences any older producer with this id and aborts its open transaction.
            producer = aiokafka.AIOKafkaProducer(
                transactional_id=self._transactional_id,
                enable_idempotence=True,
                acks="all",
                max_request_size=self._bus.settings.max_message_bytes,
                **options,
            )
        try:
            await consumer.start()
            consumer.subscribe(self._topics, listener=_Revocations(self._unit_lock, self._revoking))
            if producer is not None:
                await producer.start()
        except KafkaError as exc:
            await stop_consumer(consumer)
            if producer is not None:
                await producer.stop()
            raise BusUnavailable(f"Kafka consumer for group {self._group!r}: {exc}") from exc
        self._consumer, self._producer = consumer, producer

    async def stop(self) -> None:
        consumer, producer = self._consumer, self._producer
        self._consumer = self._producer = None
        if producer is not None:
            await producer.stop()
        if consumer is not None:
            await stop_consumer(consumer)

    def _running(self) -> aiokafka.AIOKafkaConsumer:
        if self._consumer is None:
            raise BusUnavailable(f"consumer for group {self._group!r} is not running")
        return self._consumer

    def assignment(self) -> frozenset[TopicPartition]:
        consumer = self._running()
        return frozenset(TopicPartition(tp.topic, tp.partition) for tp in consumer.assignment())

    def pause(self, partitions: Collection[TopicPartition]) -> None:
        consumer = self._running()
        assigned = consumer.assignment()
        wanted = {aiokafka.TopicPartition(*tp) for tp in partitions} & assigned
        paused = consumer.paused() & assigned
        # aiokafka drops what it prefetched of a paused partition; it fetches it again later.
        consumer.resume(*(paused - wanted))
        consumer.pause(*(wanted - paused))

    async def fetch(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        consumer = self._running()
        if self._rewind_pending:
            await self._rewind()
            if self._rewind_pending:
                raise BusUnavailable(f"cannot read the committed offsets of {self._group!r}")
        try:
            batches = await consumer.getmany(
                timeout_ms=int(timeout * 1000), max_records=max_records
            )
        except KafkaError as exc:
            raise BusUnavailable(f"Kafka fetch for group {self._group!r}: {exc}") from exc
        return _records(batches)

    def _check_owned(self, offsets: dict[TopicPartition, int]) -> None:
        lost = set(offsets) - self.assignment()
        if lost:
            raise CommitFailed(f"partitions {sorted(lost)} were reassigned before the commit")

    async def commit(self, records: Sequence[Record]) -> None:
        consumer = self._running()
        offsets = next_offsets(records)
        if not offsets:
            return
        async with self._unit_lock:
            try:
                self._check_owned(offsets)
                await consumer.commit(_kafka_offsets(offsets))
            except (KafkaError, CommitFailed) as exc:
                await self._rewind()
                raise CommitFailed(f"commit for group {self._group!r} failed: {exc}") from exc

    @asynccontextmanager
    async def transaction(self, consumed: Sequence[Record]) -> AsyncIterator[_KafkaTxn]:
        if self._producer is None:
            raise RuntimeError("transaction() needs a consumer made with a transactional_id")
        producer = self._producer
        offsets = next_offsets(consumed)
        async with self._unit_lock:
            try:
                async with producer.transaction():
                    txn = _KafkaTxn(producer, self._bus.settings.max_message_bytes)
                    yield txn
                    await txn.flush()
                    if offsets:
                        self._check_owned(offsets)
                        await producer.send_offsets_to_transaction(
                            _kafka_offsets(offsets), self._group
                        )
            except KafkaError as exc:
                await self._rewind()
                if isinstance(exc, MessageSizeTooLargeError):
                    raise MessageTooLarge(f"a record is over the bus limit: {exc}") from exc
                raise CommitFailed(f"transaction for {self._group!r} failed: {exc}") from exc
            except BaseException:
                await self._rewind()
                raise

    async def _rewind(self) -> None:
        """Go back to the committed offsets so uncommitted records are fetched again.

        If the offsets cannot be read now, fetch() tries again before reading anything.
        """
        self._rewind_pending = True
        consumer = self._consumer
        if consumer is None:
            return
        try:
            for tp in consumer.assignment():
                committed = await consumer.committed(tp)
                if committed is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, committed)
        except KafkaError:
            return
        self._rewind_pending = False


class _KafkaTxn:
    def __init__(self, producer: aiokafka.AIOKafkaProducer, limit: int) -> None:
        self._sends = BoundedSends(producer, limit)
        self._futures: list[asyncio.Future[Any]] = []

    async def send(self, message: Message) -> None:
        self._futures.append(await self._sends.send(message))

    async def flush(self) -> None:
        await asyncio.gather(*self._futures)


_METADATA_CHECK_SECONDS = 30.0


class KafkaReader:
    def __init__(self, bus: KafkaBus, topics: list[str], start: dict[TopicPartition, int]) -> None:
        self._bus = bus
        self._topics = topics
        self._positions = start
        self._consumer: aiokafka.AIOKafkaConsumer | None = None
        self._assigned: set[TopicPartition] = set()
        self._next_metadata_check = 0.0

    async def start(self) -> None:
        if self._consumer is not None:
            return
        consumer = aiokafka.AIOKafkaConsumer(
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_partition_fetch_bytes=self._bus.settings.max_message_bytes,
            **self._bus.client_options(),
        )
        try:
            await consumer.start()
        except KafkaError as exc:
            await stop_consumer(consumer)
            raise BusUnavailable(f"Kafka reader: {exc}") from exc
        self._consumer = consumer

    async def _assign(self) -> None:
        """Take every partition of the topics, including ones created since the last call."""
        assert self._consumer is not None
        tps = set(await self._bus.partitions(self._topics))
        if tps <= self._assigned:
            return
        self._assigned = tps
        # assign() forgets positions, so every partition is placed again from ours.
        self._consumer.assign([aiokafka.TopicPartition(*tp) for tp in tps])
        for tp in tps:
            self._consumer.seek(aiokafka.TopicPartition(*tp), self._positions.get(tp, 0))

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await stop_consumer(consumer)

    async def fetch(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        if self._consumer is None:
            raise BusUnavailable("Kafka reader is not running")
        if time.monotonic() >= self._next_metadata_check:
            # Partitions added since the start (a topic created or grown) join the read.
            self._next_metadata_check = time.monotonic() + _METADATA_CHECK_SECONDS
            await self._assign()
        if not self._assigned:
            await asyncio.sleep(timeout)
            self._next_metadata_check = 0.0
            return []
        try:
            batches = await self._consumer.getmany(
                timeout_ms=int(timeout * 1000), max_records=max_records
            )
        except KafkaError as exc:
            raise BusUnavailable(f"Kafka reader fetch: {exc}") from exc
        records = _records(batches)
        self._positions.update(next_offsets(records))
        return records

    async def positions(self) -> dict[TopicPartition, int]:
        if self._consumer is None:
            raise BusUnavailable("Kafka reader is not running")
        await self._assign()
        out = dict(self._positions)
        try:
            for tp in self._assigned:
                # The consumer's own position also steps over transaction markers.
                out[tp] = await self._consumer.position(aiokafka.TopicPartition(*tp))
        except KafkaError as exc:
            raise BusUnavailable(f"Kafka reader position: {exc}") from exc
        return out
