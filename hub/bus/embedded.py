"""The embedded bus: a durable log in one SQLite file, for one machine and zero infrastructure.

Every write is one SQLite transaction in WAL mode with `synchronous=FULL`, so a record
that `publish` returned is on disk, and a killed process leaves either the whole unit or
none of it. Concurrent publishes are grouped into one transaction (group commit), which
is what makes fsync-per-commit affordable. Several processes may share the file: group
membership lives in the file. A commit wakes the readers of every process on the file
(hub.bus.wake: a datagram per process, no polling). A reader reads only when something
was committed since it last found nothing, so an idle reader costs no reads; each bus
instance looks at the file every `poll_interval` for a commit whose wake-up could not
arrive, which bounds that latency for every reader of the process at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import TypeVar

import orjson

from hub.bus import (
    MAX_RECORD_BYTES,
    Message,
    Position,
    Record,
    TopicPartition,
    TopicSpec,
    next_offsets,
)
from hub.bus.errors import BusUnavailable, CommitFailed, MessageTooLarge, StorageFull
from hub.bus.wake import Wakes
from hub.sqlite import SqliteThread, in_transaction

T = TypeVar("T")

_RECORDS_TABLE = """
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    key BLOB,
    value BLOB NOT NULL,
    headers BLOB,
    ts INTEGER NOT NULL
)"""
_RECORDS_INDEX = (
    "CREATE UNIQUE INDEX IF NOT EXISTS records_position ON records (topic, partition, offset)"
)
_SCHEMA = f"""
{_RECORDS_TABLE};
{_RECORDS_INDEX};
CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL,
    retain_forever INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS group_offsets (
    group_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_members (
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    heartbeat REAL NOT NULL,
    PRIMARY KEY (group_id, member_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_state (
    group_id TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
);
"""


def _encode_headers(headers: Sequence[tuple[str, bytes]]) -> bytes | None:
    # latin-1 maps every byte to one code point, so arbitrary header bytes survive JSON.
    if not headers:
        return None
    return orjson.dumps([[k, v.decode("latin-1")] for k, v in headers])


def _decode_headers(blob: bytes | None) -> tuple[tuple[str, bytes], ...]:
    if not blob:
        return ()
    return tuple((k, v.encode("latin-1")) for k, v in orjson.loads(blob))


def _upgrade_records(conn: sqlite3.Connection) -> None:
    """Move a log written before records had a rowid (a WITHOUT ROWID table, clustered on
    the position) to the current layout, once, in one transaction. Records of a KB or two
    are far past what WITHOUT ROWID suits: appending to it was 3x slower."""

    def old_layout() -> bool:
        row = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'records'"
        ).fetchone()
        return row is not None and "WITHOUT ROWID" in row[0].upper()

    def copy() -> None:
        if not old_layout():
            return  # another process upgraded it first
        conn.execute("ALTER TABLE records RENAME TO records_clustered")
        conn.execute("DROP INDEX IF EXISTS records_position")
        conn.execute(_RECORDS_TABLE)
        conn.execute(_RECORDS_INDEX)
        conn.execute(
            "INSERT INTO records (topic, partition, offset, key, value, headers, ts)"
            " SELECT topic, partition, offset, key, value, headers, ts FROM records_clustered"
            " ORDER BY topic, partition, offset"
        )
        conn.execute("DROP TABLE records_clustered")

    if old_layout():
        in_transaction(conn, copy)


class _Worker:
    """The log's connection on its own thread; SQLite errors become BusUnavailable."""

    def __init__(self, path: Path, *, writer: bool, name: str) -> None:
        # FULL: a commit is fsynced before it returns; this is what makes a 202 mean durable.
        pragmas = ("synchronous=FULL",) if writer else ("query_only=1",)
        self._writer = writer
        self._db = SqliteThread(path, name=name, pragmas=pragmas, schema=_SCHEMA if writer else "")

    async def start(self) -> None:
        await self._db.start()
        if self._writer:
            await self.run(_upgrade_records)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._db.run(fn)
        except sqlite3.OperationalError as exc:
            # The primary code: SQLITE_FULL whatever the extended code says.
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL:
                raise StorageFull(f"embedded log {self._db.path}: {exc}") from exc
            raise BusUnavailable(f"embedded log {self._db.path}: {exc}") from exc

    async def stop(self) -> None:
        await self._db.stop()


@dataclass
class _PendingPublish:
    messages: Sequence[Message]
    future: asyncio.Future[list[Position]]


class _Appender:
    """Appends messages inside an open write transaction, assigning partitions and offsets."""

    def __init__(self, conn: sqlite3.Connection, default_partitions: int) -> None:
        self._conn = conn
        self._default_partitions = default_partitions
        self._partitions: dict[str, int] = {}
        self._ends: dict[TopicPartition, int] = {}
        self._round_robin = count()

    def _partition_count(self, topic: str) -> int:
        if topic not in self._partitions:
            row = self._conn.execute(
                "SELECT partitions FROM topics WHERE name = ?", (topic,)
            ).fetchone()
            if row is None:
                self._conn.execute(
                    "INSERT INTO topics (name, partitions, retain_forever) VALUES (?, ?, 1)",
                    (topic, self._default_partitions),
                )
                self._partitions[topic] = self._default_partitions
            else:
                self._partitions[topic] = row[0]
        return self._partitions[topic]

    def _next_offset(self, tp: TopicPartition) -> int:
        if tp not in self._ends:
            row = self._conn.execute(
                "SELECT MAX(offset) FROM records WHERE topic = ? AND partition = ?", tp
            ).fetchone()
            self._ends[tp] = 0 if row[0] is None else row[0] + 1
        return self._ends[tp]

    def append(self, message: Message, now_ms: int) -> Position:
        partitions = self._partition_count(message.topic)
        if message.key is None:
            partition = next(self._round_robin) % partitions
        else:
            partition = zlib.crc32(message.key) % partitions
        tp = TopicPartition(message.topic, partition)
        offset = self._next_offset(tp)
        self._conn.execute(
            "INSERT INTO records (topic, partition, offset, key, value, headers, ts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                message.topic,
                partition,
                offset,
                message.key,
                message.value,
                _encode_headers(message.headers),
                now_ms,
            ),
        )
        self._ends[tp] = offset + 1
        return Position(message.topic, partition, offset)


def _check_sizes(messages: Sequence[Message], limit: int) -> None:
    for m in messages:
        if len(m.value) + len(m.key or b"") > limit:
            raise MessageTooLarge(f"a record is over the bus limit of {limit} bytes")


def _read_records(
    conn: sqlite3.Connection, positions: dict[TopicPartition, int], max_records: int
) -> list[Record]:
    records: list[Record] = []
    # An even share per partition first, so one busy partition cannot starve the others.
    share = -(-max_records // max(1, len(positions)))
    for tp, position in positions.items():
        room = min(share, max_records - len(records))
        if room <= 0:
            break
        rows = conn.execute(
            "SELECT offset, key, value, headers, ts FROM records"
            " WHERE topic = ? AND partition = ? AND offset >= ? ORDER BY offset LIMIT ?",
            (tp.topic, tp.partition, position, room),
        ).fetchall()
        records.extend(
            Record(tp.topic, tp.partition, off, key, value, _decode_headers(hdrs), ts)
            for off, key, value, hdrs, ts in rows
        )
    return records


def _stamp(conn: sqlite3.Connection) -> tuple[int, ...]:
    """What a reader's wake-up stands for: records appended, group generations moved,
    topics created or grown. A heartbeat or an offset commit leaves it as it was."""
    row = conn.execute(
        "SELECT (SELECT COALESCE(MAX(rowid), 0) FROM records),"
        " (SELECT COALESCE(SUM(generation), 0) FROM group_state),"
        " (SELECT COUNT(*) FROM topics), (SELECT COALESCE(SUM(partitions), 0) FROM topics)"
    ).fetchone()
    return tuple(row)


def _topic_partitions(conn: sqlite3.Connection, topics: Sequence[str]) -> list[TopicPartition]:
    tps: list[TopicPartition] = []
    for topic in sorted(set(topics)):
        row = conn.execute("SELECT partitions FROM topics WHERE name = ?", (topic,)).fetchone()
        if row is not None:
            tps.extend(TopicPartition(topic, p) for p in range(row[0]))
    return tps


class EmbeddedBus:
    """The default bus: a SQLite log in the data dir."""

    def __init__(
        self,
        path: Path,
        *,
        default_partitions: int = 1,
        # How often this instance looks at the file with no wake-up (one query for all of
        # its readers): readers in every process on the file are woken by each commit
        # (hub.bus.wake), so this only bounds the latency of a wake-up that could not arrive.
        poll_interval: float = 1.0,
        session_timeout: float = 10.0,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> None:
        self.path = Path(path)
        self.max_record_bytes = max_record_bytes
        self.default_partitions = default_partitions
        self.poll_interval = poll_interval
        self.session_timeout = session_timeout
        self._writer = _Worker(self.path, writer=True, name="bus-write")
        self._reader = _Worker(self.path, writer=False, name="bus-read")
        self._pending: list[_PendingPublish] = []
        self._flushing = False
        self._flush_task: asyncio.Task[None] | None = None
        self._version = 0
        self._changed: asyncio.Event | None = None
        self._wakes = Wakes(self.path, self._wake_here)
        self._watch_task: asyncio.Task[None] | None = None
        # Group members of this instance waiting in a fetch: one heartbeat keeps them all.
        self._waiting: dict[tuple[str, str], _Membership] = {}
        self._started = False

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._changed = asyncio.Event()
        await self._writer.start()
        await self._reader.start()
        self._wakes.start()
        # Taken before any reader reads: a commit after it, woken or not, changes it.
        first = await self.read(_stamp)
        self._watch_task = asyncio.create_task(self._watch(first))
        self._started = True

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._watch_task is not None:
            self._watch_task.cancel()
            with suppress(asyncio.CancelledError):
                await self._watch_task
        if self._flush_task is not None:
            await self._flush_task
        self._wakes.stop()
        await self._writer.stop()
        await self._reader.stop()

    # -- internals shared with consumers -------------------------------------------

    async def write(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        wakes: Callable[[T], bool] | None = None,
    ) -> T:
        """Run `fn` inside one write transaction; wakes every process's readers after commit,
        unless `wakes` says of the result that readers have nothing new to see."""
        result = await self._writer.run(lambda conn: in_transaction(conn, lambda: fn(conn)))
        if wakes is None or wakes(result):
            self._wake_here()
            self._wakes.ring()
        return result

    async def _watch(self, seen: tuple[int, ...]) -> None:
        """Wake this process's readers when the file moved without a wake-up arriving."""
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                stamp = await self.read(_stamp)
            except BusUnavailable:
                continue  # the readers meet the failure themselves
            if stamp != seen:
                self._wake_here()
            seen = stamp

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._reader.run(fn)

    def appender(self, conn: sqlite3.Connection) -> _Appender:
        return _Appender(conn, self.default_partitions)

    def _wake_here(self) -> None:
        """Wake this process's readers (after its own commit, or another process's)."""
        self._version += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    async def wait_for_change(self, seen_version: int, timeout: float) -> None:
        """Sleep until a write after `seen_version` (any process's), or `timeout`."""
        if self._version != seen_version or self._changed is None:
            return
        event = self._changed
        with suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    @property
    def version(self) -> int:
        return self._version

    # -- Bus -----------------------------------------------------------------------

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        def create(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR IGNORE INTO topics (name, partitions, retain_forever) VALUES (?, ?, ?)",
                [(s.name, s.partitions, int(s.retain_forever)) for s in specs],
            )

        await self.write(create)

    async def publish(self, messages: Sequence[Message]) -> list[Position]:
        if not self._started:
            raise BusUnavailable("embedded bus is not running")
        _check_sizes(messages, self.max_record_bytes)
        future: asyncio.Future[list[Position]] = asyncio.get_running_loop().create_future()
        self._pending.append(_PendingPublish(messages, future))
        if not self._flushing:
            self._flushing = True
            self._flush_task = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        # Group commit: everything queued while the previous transaction ran goes in the next.
        try:
            while self._pending:
                batch, self._pending = self._pending, []

                def append_all(
                    conn: sqlite3.Connection, batch: list[_PendingPublish] = batch
                ) -> list[list[Position]]:
                    appender = self.appender(conn)
                    now_ms = int(time.time() * 1000)
                    return [[appender.append(m, now_ms) for m in p.messages] for p in batch]

                try:
                    results = await self.write(append_all)
                except Exception as exc:
                    for pending in batch:
                        if not pending.future.done():
                            pending.future.set_exception(exc)
                    continue
                for pending, positions in zip(batch, results, strict=True):
                    if not pending.future.done():
                        pending.future.set_result(positions)
        finally:
            self._flushing = False

    async def end_offsets(self, topics: Sequence[str]) -> dict[TopicPartition, int]:
        def ends(conn: sqlite3.Connection) -> dict[TopicPartition, int]:
            result = {}
            for tp in _topic_partitions(conn, topics):
                row = conn.execute(
                    "SELECT MAX(offset) FROM records WHERE topic = ? AND partition = ?", tp
                ).fetchone()
                result[tp] = 0 if row[0] is None else row[0] + 1
            return result

        return await self.read(ends)

    async def committed(self, group: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
        def load(conn: sqlite3.Connection) -> dict[TopicPartition, int]:
            return _committed(conn, group, _topic_partitions(conn, topics))

        return await self.read(load)

    def group_consumer(
        self, group: str, topics: Sequence[str], *, transactional_id: str | None = None
    ) -> EmbeddedGroupConsumer:
        # The group generation fences commits. A transactional id is also the member's
        # lasting name (static membership, as on Kafka): a node restarted after a crash
        # takes its place back at once instead of waiting for the dead session to expire.
        return EmbeddedGroupConsumer(self, group, list(topics), transactional_id)

    def reader(self, topics: Sequence[str], start: dict[TopicPartition, int]) -> EmbeddedReader:
        return EmbeddedReader(self, list(topics), dict(start))


def _committed(
    conn: sqlite3.Connection, group: str, tps: Sequence[TopicPartition]
) -> dict[TopicPartition, int]:
    result = {}
    for tp in tps:
        row = conn.execute(
            "SELECT next_offset FROM group_offsets WHERE group_id = ? AND topic = ?"
            " AND partition = ?",
            (group, tp.topic, tp.partition),
        ).fetchone()
        result[tp] = 0 if row is None else row[0]
    return result


class _Quiet:
    """Whether a read would find nothing: the last found nothing at the positions as they
    still are, and nothing was committed since (the bus's version did not move)."""

    def __init__(self) -> None:
        self._at: int | None = None

    def forget(self) -> None:
        """The positions moved other than by reading (a rebalance, a rewind, a resume)."""
        self._at = None

    async def read(
        self, bus: EmbeddedBus, read: Callable[[], Awaitable[list[Record]]]
    ) -> list[Record]:
        seen = bus.version
        if self._at == seen:
            return []
        records = await read()
        self._at = None if records else seen
        return records


async def _poll(
    bus: EmbeddedBus,
    read: Callable[[], Awaitable[list[Record]]],
    timeout: float,
    wait_at_most: Callable[[], float] | None = None,
) -> list[Record]:
    """Call `read` until it returns records or `timeout` passes, again after each commit
    (any process's) and at least every `wait_at_most()` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        seen = bus.version
        records = await read()
        remaining = deadline - time.monotonic()
        if records or remaining <= 0:
            return records
        if wait_at_most is not None:
            remaining = max(0.0, min(wait_at_most(), remaining))
        await bus.wait_for_change(seen, remaining)


_BEAT_SLACK = 0.05  # seconds


@dataclass
class _Membership:
    member_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    generation: int = -1
    last_heartbeat: float = 0.0


class EmbeddedGroupConsumer:
    """A consumer-group member; the group's generation fences commits across rebalances."""

    def __init__(
        self, bus: EmbeddedBus, group: str, topics: list[str], instance_id: str | None = None
    ) -> None:
        self._bus = bus
        self._group = group
        self._topics = topics
        self._me = _Membership(instance_id) if instance_id else _Membership()
        self._positions: dict[TopicPartition, int] = {}
        self._assignment: frozenset[TopicPartition] = frozenset()
        self._partitions_seen: frozenset[TopicPartition] = frozenset()
        self._rewind_pending = False
        self._started = False
        self._rebalances = 0
        self._paused: frozenset[TopicPartition] = frozenset()
        self._quiet = _Quiet()
        self._loaded: int | None = None  # the bus version the group's state was read at

    @property
    def generation(self) -> int:
        return self._rebalances

    def pause(self, partitions: Collection[TopicPartition]) -> None:
        paused = frozenset(partitions)
        if paused != self._paused:
            self._quiet.forget()
        self._paused = paused

    async def start(self) -> None:
        if self._started:
            return
        await self._join()
        self._started = True

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        group, member = self._group, self._me.member_id

        def leave(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM group_members WHERE group_id = ? AND member_id = ?", (group, member)
            )
            _bump_generation(conn, group)

        await self._bus.write(leave)

    async def _join(self) -> None:
        group, member, now = self._group, self._me.member_id, time.time()

        def join(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO group_members (group_id, member_id, heartbeat)"
                " VALUES (?, ?, ?)",
                (group, member, now),
            )
            _bump_generation(conn, group)

        await self._bus.write(join)
        self._me.last_heartbeat = now
        self._me.generation = -1

    def _beat_due_in(self) -> float:
        return self._me.last_heartbeat + self._bus.session_timeout / 3 - time.time()

    async def _heartbeat(self) -> None:
        """Keep membership alive, expire dead members, and notice rebalances."""
        # A timer may fire a little early: a beat due within the slack is made now rather
        # than after one more turn of the fetch's loop.
        if self._beat_due_in() <= _BEAT_SLACK:
            await self._beat()
        seen = self._bus.version
        if self._loaded == seen:
            return  # nothing committed since the group's state was read: it is unchanged
        group = self._group

        def load(conn: sqlite3.Connection) -> tuple[int, list[str], list[TopicPartition]]:
            row = conn.execute(
                "SELECT generation FROM group_state WHERE group_id = ?", (group,)
            ).fetchone()
            members = [
                r[0]
                for r in conn.execute(
                    "SELECT member_id FROM group_members WHERE group_id = ? ORDER BY member_id",
                    (group,),
                )
            ]
            return (row[0] if row else 0), members, _topic_partitions(conn, self._topics)

        generation, members, tps = await self._bus.read(load)
        self._loaded = seen
        # New partitions (a topic created or grown) rebalance too, like Kafka's metadata refresh.
        if generation != self._me.generation or frozenset(tps) != self._partitions_seen:
            await self._rebalance(generation, members, tps)

    async def _beat(self) -> None:
        """One heartbeat for this member and every member of this bus waiting in a fetch
        (a member waiting is as alive as one calling fetch now), and the expiry of the
        members whose session ran out. Only an expiry wakes the readers: a heartbeat shows
        them nothing new."""
        now, timeout = time.time(), self._bus.session_timeout
        me = (self._group, self._me.member_id)
        beating = {**self._bus._waiting, me: self._me}

        def beat(conn: sqlite3.Connection) -> tuple[set[tuple[str, str]], bool]:
            alive = {
                (group, member)
                for group, member in beating
                if conn.execute(
                    "UPDATE group_members SET heartbeat = ? WHERE group_id = ? AND member_id = ?",
                    (now, group, member),
                ).rowcount
            }
            expired = False
            for group in sorted({group for group, _ in beating}):
                if conn.execute(
                    "DELETE FROM group_members WHERE group_id = ? AND heartbeat < ?",
                    (group, now - timeout),
                ).rowcount:
                    _bump_generation(conn, group)
                    expired = True
            return alive, expired

        # Marked before the write: the members it covers, woken by the same timer meanwhile,
        # need not beat again.
        before = {key: membership.last_heartbeat for key, membership in beating.items()}
        for membership in beating.values():
            membership.last_heartbeat = now
        try:
            alive, _ = await self._bus.write(beat, wakes=lambda result: result[1])
        except BaseException:
            for key, membership in beating.items():
                membership.last_heartbeat = before[key]
            raise
        for key, membership in beating.items():
            if key not in alive:
                membership.last_heartbeat = before[key]  # its own beat finds it expired
        if me not in alive:
            await self._join()  # we were expired (a long pause): come back as new

    async def _rebalance(
        self, generation: int, members: list[str], tps: list[TopicPartition]
    ) -> None:
        # Counted before anything else: a rebalance cut short (a fetch cancelled) is done
        # again by the next fetch, and counts again; records fetched before it never commit.
        self._rebalances += 1
        self._paused = frozenset()
        mine: list[TopicPartition] = []
        if self._me.member_id in members:
            index, size = members.index(self._me.member_id), len(members)
            mine = [tp for i, tp in enumerate(tps) if i % size == index]
        self._assignment = frozenset(mine)
        # Like an eager Kafka rebalance: restart every partition from the committed offset,
        # so whatever was fetched but not committed under the old generation comes again.
        self._positions = await self._bus.read(lambda c: _committed(c, self._group, mine))
        self._quiet.forget()
        self._partitions_seen = frozenset(tps)
        self._me.generation = generation

    def assignment(self) -> frozenset[TopicPartition]:
        return self._assignment

    async def fetch(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        async def read_once() -> list[Record]:
            await self._heartbeat()
            if self._rewind_pending:
                await self._rewind()
                if self._rewind_pending:
                    raise BusUnavailable(f"cannot read group {self._group!r} offsets")
            paused = self._paused
            positions = {tp: o for tp, o in self._positions.items() if tp not in paused}
            return await self._quiet.read(
                self._bus,
                lambda: self._bus.read(lambda c: _read_records(c, positions, max_records)),
            )

        key = (self._group, self._me.member_id)
        self._bus._waiting[key] = self._me
        try:
            records = await _poll(self._bus, read_once, timeout, self._beat_due_in)
        finally:
            self._bus._waiting.pop(key, None)
        for tp, offset in next_offsets(records).items():
            self._positions[tp] = offset
        return records

    async def commit(self, records: Sequence[Record]) -> None:
        async with self.transaction(records):
            pass

    @asynccontextmanager
    async def transaction(self, consumed: Sequence[Record]) -> AsyncIterator[_EmbeddedTxn]:
        txn = _EmbeddedTxn(self._bus.max_record_bytes)
        try:
            yield txn
        except BaseException:
            await self._rewind()
            raise
        offsets = next_offsets(consumed)
        group, me, assignment = self._group, self._me, self._assignment

        def commit_unit(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT generation FROM group_state WHERE group_id = ?", (group,)
            ).fetchone()
            if row is None or row[0] != me.generation:
                raise CommitFailed(f"group {group!r} rebalanced; uncommitted records come again")
            lost = [tp for tp in offsets if tp not in assignment]
            if lost:
                raise CommitFailed(f"partitions {lost} are not assigned to this member")
            appender = self._bus.appender(conn)
            now_ms = int(time.time() * 1000)
            for message in txn.messages:
                appender.append(message, now_ms)
            conn.executemany(
                "INSERT OR REPLACE INTO group_offsets (group_id, topic, partition, next_offset)"
                " VALUES (?, ?, ?, ?)",
                [(group, tp.topic, tp.partition, off) for tp, off in offsets.items()],
            )

        try:
            await self._bus.write(commit_unit)
        except BaseException:
            await self._rewind()
            raise

    async def _rewind(self) -> None:
        """Go back to the committed offsets; if even that read fails, the next fetch does it."""
        self._rewind_pending = True
        tps = list(self._assignment)
        with suppress(BusUnavailable):
            self._positions = await self._bus.read(lambda c: _committed(c, self._group, tps))
            self._quiet.forget()
            self._rewind_pending = False


def _bump_generation(conn: sqlite3.Connection, group: str) -> None:
    conn.execute(
        "INSERT INTO group_state (group_id, generation) VALUES (?, 1)"
        " ON CONFLICT (group_id) DO UPDATE SET generation = generation + 1",
        (group,),
    )


class _EmbeddedTxn:
    """Buffers the unit's messages; they reach the log only in the commit transaction."""

    def __init__(self, limit: int) -> None:
        self.messages: list[Message] = []
        self._limit = limit

    async def send(self, message: Message) -> None:
        _check_sizes((message,), self._limit)
        self.messages.append(message)

    async def flush(self) -> None:
        return None


class EmbeddedReader:
    """A group-less reader over every partition of its topics, from caller-kept positions."""

    def __init__(
        self, bus: EmbeddedBus, topics: list[str], start: dict[TopicPartition, int]
    ) -> None:
        self._bus = bus
        self._topics = topics
        self._positions = start
        self._quiet = _Quiet()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def fetch(self, max_records: int = 500, timeout: float = 1.0) -> list[Record]:
        async def read_once() -> list[Record]:
            def read(conn: sqlite3.Connection) -> list[Record]:
                for tp in _topic_partitions(conn, self._topics):
                    self._positions.setdefault(tp, 0)
                return _read_records(conn, dict(self._positions), max_records)

            return await self._quiet.read(self._bus, lambda: self._bus.read(read))

        records = await _poll(self._bus, read_once, timeout)
        for tp, offset in next_offsets(records).items():
            self._positions[tp] = offset
        return records

    async def positions(self) -> dict[TopicPartition, int]:
        def load(conn: sqlite3.Connection) -> list[TopicPartition]:
            return _topic_partitions(conn, self._topics)

        for tp in await self._bus.read(load):
            self._positions.setdefault(tp, 0)
        return dict(self._positions)
