"""Retention: what the hub forgets, as the federation file's `hub.retention` says.

- Superseded versions: a version of an object older than `superseded_versions_days`, once a
  later version of the same object exists for the same readers (the same TLP:RED accounts,
  or everyone), in the same feed. Never the latest version, never a revocation.
- Intake: records on the intake topics older than `intake_days` that the pipeline has
  committed (a record still to be processed is never deleted), and receipts as old.
- Rejected: records of refused submissions older than `rejected_days`.

The audit chain, decisions, statuses and everything else are kept. On the embedded bus the
log is pruned (by the pipeline node) and every view (by its API node); the last record of
each partition is always kept, since it holds the partition's end offset. On Kafka only the
views are pruned: topics keep what Kafka's retention.ms says. Deletes go in batches of
`BATCH` rows, one short transaction each, so the hub's writers are not held up.

SQLite does not give deleted pages back to the file system: it reuses them before the file
grows. The report's `freed_bytes` is what the deletes freed inside the files (SQLite's free
list grew by it), so the disk stops growing until new data has filled it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from hub.federation import Retention
from hub.ops.usage import uncount
from hub.records import ACCOUNTS
from hub.store.view import timestamp_key
from hub.topics import Topics

log = logging.getLogger(__name__)
BATCH = 5000
_DAY_MS = 86_400_000


@dataclass
class Pruned:
    """What one store (the log, or one view) forgot in one pass."""

    store: str
    deleted: dict[str, int] = field(default_factory=dict)  # kind → records or rows
    freed_bytes: int = 0

    def add(self, kind: str, count: int) -> None:
        if count:
            self.deleted[kind] = self.deleted.get(kind, 0) + count


def _free_bytes(conn: sqlite3.Connection) -> int:
    (pages,) = conn.execute("PRAGMA freelist_count").fetchone()
    (size,) = conn.execute("PRAGMA page_size").fetchone()
    return int(pages) * int(size)


def _delete_rows(conn: sqlite3.Connection, table: str, key: str, ids: list[int]) -> int:
    deleted = 0
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        conn.execute("BEGIN IMMEDIATE")
        try:
            marks = ",".join("?" * len(chunk))
            if table == "records":
                uncount(conn, chunk)  # the log's bytes per topic (hub.ops.usage)
            deleted += conn.execute(f"DELETE FROM {table} WHERE {key} IN ({marks})", chunk).rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return deleted


def _partitions(
    conn: sqlite3.Connection, match: Callable[[str], bool]
) -> Iterator[tuple[str, int, int]]:
    """(topic, partition, last offset) of every partition of the topics `match` takes."""
    for topic, count in conn.execute("SELECT name, partitions FROM topics ORDER BY name"):
        if not match(topic):
            continue
        for partition in range(count):
            (last,) = conn.execute(
                "SELECT MAX(offset) FROM records WHERE topic = ? AND partition = ?",
                (topic, partition),
            ).fetchone()
            if last is not None:
                yield topic, partition, last


def _old_records(
    conn: sqlite3.Connection, topic: str, partition: int, below: int, before_ms: int
) -> list[int]:
    rows = conn.execute(
        "SELECT rowid FROM records WHERE topic = ? AND partition = ? AND offset < ? AND ts < ?",
        (topic, partition, below, before_ms),
    )
    return [r[0] for r in rows]


def _version_of(value: bytes) -> tuple[str, str, bool] | None:
    """(id, sortable version, revoked) of a feed record's object; None if unreadable."""
    try:
        obj = orjson.loads(value)
        version = obj.get("modified") or obj.get("created")
        return obj["id"], timestamp_key(version), obj.get("revoked") is True
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None


def _superseded_records(
    conn: sqlite3.Connection, topic: str, last: dict[int, int], before_ms: int
) -> list[int]:
    """Rowids of versions in `topic` older than `before_ms` with a later version for the
    same readers in the same topic; never a revocation, never a partition's last record."""
    latest: dict[tuple[str, bytes | None], str] = {}
    old: list[tuple[int, tuple[str, bytes | None], str]] = []
    rows = conn.execute(
        "SELECT rowid, partition, offset, value, headers, ts FROM records WHERE topic = ?",
        (topic,),
    )
    for rowid, partition, offset, value, headers, ts in rows:
        found = _version_of(value)
        if found is None:
            continue
        oid, version, revoked = found
        # The readers a TLP:RED version was for travel in its `accounts` header: a version
        # is superseded only by one the same readers get.
        readers = (oid, _accounts(headers))
        if version > latest.get(readers, ""):
            latest[readers] = version
        if ts < before_ms and not revoked and version and offset != last.get(partition):
            old.append((rowid, readers, version))
    return [rowid for rowid, readers, version in old if version < latest[readers]]


def _accounts(headers: bytes | None) -> bytes | None:
    if not headers:
        return None
    for name, value in orjson.loads(headers):
        if name == ACCOUNTS:
            return str(value).encode("latin-1")
    return None


def prune_log(
    conn: sqlite3.Connection, retention: Retention, topics: Topics, now: datetime
) -> Pruned:
    """Apply `retention` to the embedded log behind `conn` (its own connection)."""
    pruned = Pruned("log")
    before = _free_bytes(conn)
    now_ms = int(now.timestamp() * 1000)
    group = f"{topics.prefix}pipeline"
    intake_head = topics.member_intake("")
    if retention.intake_days is not None:
        cutoff = now_ms - retention.intake_days * _DAY_MS
        for topic, partition, last in _partitions(
            conn, lambda t: t == topics.intake or t.startswith(intake_head)
        ):
            row = conn.execute(
                "SELECT next_offset FROM group_offsets WHERE group_id = ? AND topic = ?"
                " AND partition = ?",
                (group, topic, partition),
            ).fetchone()
            processed = 0 if row is None else row[0]
            ids = _old_records(conn, topic, partition, min(processed, last), cutoff)
            pruned.add("intake", _delete_rows(conn, "records", "rowid", ids))
        # What became of those records: for members' Kafka tools, which a log never has.
        receipts_head = topics.receipts("")
        for topic, partition, last in _partitions(conn, lambda t: t.startswith(receipts_head)):
            ids = _old_records(conn, topic, partition, last, cutoff)
            pruned.add("receipts", _delete_rows(conn, "records", "rowid", ids))
    if retention.rejected_days is not None:
        cutoff = now_ms - retention.rejected_days * _DAY_MS
        for topic, partition, last in _partitions(conn, lambda t: t == topics.rejected):
            ids = _old_records(conn, topic, partition, last, cutoff)
            pruned.add("rejected", _delete_rows(conn, "records", "rowid", ids))
    if retention.superseded_versions_days is not None:
        cutoff = now_ms - retention.superseded_versions_days * _DAY_MS
        feeds: dict[str, dict[int, int]] = {}
        for topic, partition, last in _partitions(conn, lambda t: t.startswith(topics.feed(""))):
            feeds.setdefault(topic, {})[partition] = last
        for topic, ends in feeds.items():
            ids = _superseded_records(conn, topic, ends, cutoff)
            pruned.add("superseded", _delete_rows(conn, "records", "rowid", ids))
    pruned.freed_bytes = max(0, _free_bytes(conn) - before)
    return pruned


def prune_view(conn: sqlite3.Connection, retention: Retention, now: datetime, name: str) -> Pruned:
    """Apply `retention` to one view: superseded versions, as in the log."""
    pruned = Pruned(name)
    if retention.superseded_versions_days is None:
        return pruned
    before = _free_bytes(conn)
    cutoff = timestamp_key(
        (now - timedelta(days=retention.superseded_versions_days))
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )
    rows = conn.execute(
        "SELECT o.seq, o.json FROM objects o WHERE o.date_added_key < ? AND EXISTS ("
        " SELECT 1 FROM objects n WHERE n.collection = o.collection AND n.id = o.id"
        " AND n.version_key > o.version_key AND n.accounts IS o.accounts)",
        (cutoff,),
    ).fetchall()
    ids = [seq for seq, raw in rows if (_version_of(raw) or ("", "", True))[2] is False]
    pruned.add("superseded", _delete_rows(conn, "objects", "seq", ids))
    _delete_rows(conn, "refs", "seq", ids)  # what the pruned versions referred to
    pruned.freed_bytes = max(0, _free_bytes(conn) - before)
    return pruned


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def prune_data_dir(
    data_dir: Path,
    retention: Retention,
    topics: Topics,
    *,
    log_file: Path | None,
    views: list[Path],
    now: datetime | None = None,
) -> list[Pruned]:
    """Apply `retention` to the log file (None: on Kafka, not here) and the `views`."""
    now = now or datetime.now(UTC)
    done = []
    if log_file is not None and log_file.exists():
        with closing(_connect(log_file)) as conn:
            done.append(prune_log(conn, retention, topics, now))
    for view in views:
        if view.exists():
            with closing(_connect(view)) as conn:
                done.append(prune_view(conn, retention, now, view.name))
    return done


class RetentionRunner:
    """Applies retention every `interval_hours`, the first time soon after the start."""

    def __init__(
        self,
        retention: Retention,
        prune: Callable[[], list[Pruned]],
        report: Callable[[Pruned], None],
        first_delay: float = 300.0,
    ) -> None:
        self._retention = retention
        self._prune = prune
        self._report = report
        self._first_delay = first_delay
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        # Not at once: a node restarted again and again still applies it, after it settled.
        delay = min(self._first_delay, self._retention.interval_hours * 3600)
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
                return
            except TimeoutError:
                pass
            started = time.monotonic()
            for pruned in await asyncio.to_thread(self._prune):
                self._report(pruned)
                log.info(
                    "retention applied",
                    extra={
                        "store": pruned.store,
                        "deleted": pruned.deleted,
                        "freed_bytes": pruned.freed_bytes,
                        "seconds": round(time.monotonic() - started, 3),
                    },
                )
            delay = self._retention.interval_hours * 3600

    def stop(self) -> None:
        self._stopping.set()
