"""The bus the rest of the hub talks to: topics, consumer groups, and an atomic unit.

Two implementations keep one contract (tests/bus/ runs the same suite on both):
`embedded` (a durable log in SQLite, the default) and `kafka` (aiokafka against
Apache Kafka). No code outside this package knows which one it has.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from hub.bus.errors import BusError, BusUnavailable, CommitFailed, MessageTooLarge

__all__ = [
    "MAX_RECORD_BYTES",
    "Bus",
    "BusError",
    "BusUnavailable",
    "CommitFailed",
    "GroupConsumer",
    "Message",
    "MessageTooLarge",
    "Position",
    "Reader",
    "Record",
    "TopicPartition",
    "TopicSpec",
    "Transaction",
    "next_offsets",
    "read_to",
]

Headers = tuple[tuple[str, bytes], ...]

# The largest record either bus takes (value and key). Kafka's default is ~1 MB; a TAXII
# request may be 10 MiB and its intake record a little more, so producers, topics and
# fetches all allow this much; the embedded log holds itself to the same limit, so the hub
# behaves alike on both.
MAX_RECORD_BYTES = 32 * 1024 * 1024


class TopicPartition(NamedTuple):
    topic: str
    partition: int


class Position(NamedTuple):
    """Where a published message landed."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create: `retain_forever` for the system-of-record topics (feeds, audit);
    `append_time` when a record's timestamp must be the bus's, not what its writer chose;
    `compact` when only the latest record of each key matters (Kafka compacts it)."""

    name: str
    partitions: int = 1
    retain_forever: bool = True
    append_time: bool = False
    compact: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    """What a producer hands to the bus."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class Record:
    """What a consumer gets back: a message with its place in the log, and its timestamp:
    when the bus appended it (embedded bus; Kafka topics made with `append_time`), else the
    time its writer set."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers
    timestamp_ms: int

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    def header(self, name: str) -> bytes | None:
        """The first header called `name`, or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


def next_offsets(records: Sequence[Record]) -> dict[TopicPartition, int]:
    """Offsets to commit after `records`: one past the highest offset seen per partition."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        tp = record.tp
        if offsets.get(tp, -1) <= record.offset:
            offsets[tp] = record.offset + 1
    return offsets


class Transaction(Protocol):
    async def send(self, message: Message) -> None:
        """Produce `message` as part of the unit; visible to readers only if the unit commits."""

    async def flush(self) -> None:
        """Wait until what was sent so far has reached the bus (still uncommitted)."""


class GroupConsumer(Protocol):
    """A member of a consumer group: partitions are split among the group's live members."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def fetch(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        """Records from the assigned partitions after the current position (may be empty)."""

    async def commit(self, records: Sequence[Record]) -> None:
        """Move the group's committed offsets past `records`."""

    def transaction(self, consumed: Sequence[Record]) -> AbstractAsyncContextManager[Transaction]:
        """The atomic unit: what is sent inside, and the offsets past `consumed`, commit whole
        or not at all. On failure the consumer rewinds to the committed offsets."""

    def assignment(self) -> frozenset[TopicPartition]: ...

    @property
    def generation(self) -> int:
        """How many times the group took this member's partitions back (rebalances). Records
        fetched under an earlier count come again from the committed offsets, so a unit
        holding any of them must not commit. Read it as fetch() returns (no await between)
        to know which count a fetch's records belong to."""

    def pause(self, partitions: Collection[TopicPartition]) -> None:
        """Fetch nothing from `partitions` until the next call (the set replaces the last
        one); the others assigned are fetched. A rebalance resumes every partition."""


class Reader(Protocol):
    """A group-less reader whose positions the caller keeps (e.g. beside its own data)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def fetch(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]: ...

    async def positions(self) -> dict[TopicPartition, int]:
        """The next offset to read per partition; past transaction markers on Kafka, so it
        reaches end_offsets() once everything committed has been read."""


async def read_to(
    reader: Reader, ends: dict[TopicPartition, int], timeout: float = 30.0
) -> list[Record]:
    """Every record from the reader's positions up to `ends` (from end_offsets())."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    while True:
        positions = await reader.positions()
        if all(positions.get(tp, 0) >= end for tp, end in ends.items()):
            return records
        if time.monotonic() > deadline:
            raise BusUnavailable(f"could not read up to {dict(ends)} within {timeout} s")
        records += await reader.fetch(timeout=0.2)


class Bus(Protocol):
    @property
    def max_record_bytes(self) -> int:
        """The largest record (value and key) this bus takes; a larger is MessageTooLarge."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet."""

    async def publish(self, messages: Sequence[Message]) -> list[Position]:
        """Append `messages`; returns once every one of them is durable."""

    async def end_offsets(self, topics: Sequence[str]) -> dict[TopicPartition, int]:
        """The next offset to be written, per partition of `topics`."""

    async def committed(self, group: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
        """The group's committed offsets (next offset to read) for `topics`."""

    def group_consumer(
        self, group: str, topics: Sequence[str], *, transactional_id: str | None = None
    ) -> GroupConsumer: ...

    def reader(self, topics: Sequence[str], start: dict[TopicPartition, int]) -> Reader: ...
