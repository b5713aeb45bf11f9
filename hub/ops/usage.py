"""What the data dir holds and how fast it grows: bytes per file, bytes per topic of the
embedded log, growth per day and days until the disk is full at that rate.

Bytes per topic are counted once and then kept up to date: `topic_sizes` in the log holds
each topic's bytes (key, value and headers) and records, up to the rowid it has counted;
each refresh counts only the records appended since (a rowid range: cheap), at most
`CHUNKS` chunks at a time, so a large log written before this existed is counted over a
few refreshes instead of in one long scan. Retention subtracts what it deletes
(`uncount`). Records are appended with growing rowids and the newest record is never
deleted (retention keeps each partition's last one), so no rowid is counted twice.

Growth is measured on the data dir's files (what fills the disk): one sample every
`SAMPLE_EVERY` seconds is kept in `DATA_DIR/disk-usage.json` for `KEEP_DAYS`, and the rate
is the change since the oldest sample of the last week (none before an hour of samples).

On Kafka the topics are on the brokers' disks: their bytes come from DescribeLogDirs
(hub.bus.logdirs), every replica counted; their growth is sampled the same way into
`kafka-usage.json`, and the days until full are those of the log dir that fills first,
each dir taking its present share of the growth.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from hub.bus.logdirs import LogDir
from hub.bus.url import EMBEDDED_FILE
from hub.sqlite import in_transaction

USAGE_FILE = "disk-usage.json"
KAFKA_USAGE_FILE = "kafka-usage.json"
SAMPLE_EVERY = 600.0
KEEP_DAYS = 8
CHUNK = 50_000
CHUNKS = 4
_DAY = 86_400.0
_SIZES = """
CREATE TABLE IF NOT EXISTS topic_sizes (
    topic TEXT PRIMARY KEY,
    bytes INTEGER NOT NULL,
    records INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS topic_sizes_counted (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    rowid_done INTEGER NOT NULL
);
"""
_ROW_BYTES = "length(value) + ifnull(length(key), 0) + ifnull(length(headers), 0)"


@dataclass(frozen=True)
class Usage:
    files: dict[str, int]  # name in the data dir → bytes on disk (SQLite side files included)
    topics: dict[str, int] = field(default_factory=dict)  # embedded log: bytes per topic
    growth_per_day: float | None = None  # bytes; None until an hour of samples
    days_until_full: float | None = None  # at that rate; None when not growing

    @property
    def total(self) -> int:
        return sum(self.files.values())


def _counted(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT rowid_done FROM topic_sizes_counted WHERE id = 0").fetchone()
    return 0 if row is None else row[0]


def count_topics(conn: sqlite3.Connection, chunks: int = CHUNKS) -> dict[str, int]:
    """Count what was appended since the last count (up to `chunks` chunks); bytes per topic."""
    conn.executescript(_SIZES)

    def step() -> bool:
        done = _counted(conn)
        (last,) = conn.execute("SELECT MAX(rowid) FROM records").fetchone()
        if last is None or last <= done:
            return False
        upto = min(last, done + CHUNK)
        rows = conn.execute(
            f"SELECT topic, SUM({_ROW_BYTES}), COUNT(*) FROM records"
            " WHERE rowid > ? AND rowid <= ? GROUP BY topic",
            (done, upto),
        ).fetchall()
        conn.executemany(
            "INSERT INTO topic_sizes (topic, bytes, records) VALUES (?, ?, ?) ON CONFLICT (topic)"
            " DO UPDATE SET bytes = bytes + excluded.bytes, records = records + excluded.records",
            rows,
        )
        conn.execute(
            "INSERT OR REPLACE INTO topic_sizes_counted (id, rowid_done) VALUES (0, ?)", (upto,)
        )
        return bool(upto < last)

    for _ in range(chunks):
        if not in_transaction(conn, step):
            break
    return dict(conn.execute("SELECT topic, bytes FROM topic_sizes ORDER BY topic").fetchall())


def uncount(conn: sqlite3.Connection, rowids: list[int]) -> None:
    """Inside the transaction that deletes `rowids` from the log: take them off the counts."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'topic_sizes'"
    ).fetchone()
    if not exists:
        return
    marks = ",".join("?" * len(rowids))
    rows = conn.execute(
        f"SELECT topic, SUM({_ROW_BYTES}), COUNT(*) FROM records"
        f" WHERE rowid IN ({marks}) AND rowid <= ? GROUP BY topic",
        (*rowids, _counted(conn)),
    ).fetchall()
    conn.executemany(
        "UPDATE topic_sizes SET bytes = bytes - ?, records = records - ? WHERE topic = ?",
        [(size, count, topic) for topic, size, count in rows],
    )


def file_sizes(data_dir: Path) -> dict[str, int]:
    """Bytes per SQLite file (its WAL and shared memory counted with it), and "other"."""
    sizes: dict[str, int] = {"other": 0}
    for path in data_dir.rglob("*"):
        with suppress(OSError):  # a file replaced or removed meanwhile
            if path.is_file():
                base = path.name.removesuffix("-wal").removesuffix("-shm")
                name = base if base.endswith(".sqlite3") and path.parent == data_dir else "other"
                sizes[name] = sizes.get(name, 0) + path.stat().st_size
    return sizes


def _growth(path: Path, total: int, now: float) -> float | None:
    """Keep a sample in `path` when one is due; bytes per day since the week's oldest."""
    try:
        samples = [(float(t), int(b)) for t, b in orjson.loads(path.read_bytes())["samples"]]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        samples = []
    samples = [(t, b) for t, b in samples if now - t <= KEEP_DAYS * _DAY]
    if not samples or now - samples[-1][0] >= SAMPLE_EVERY:
        samples.append((now, total))
        tmp = path.with_name(f".{path.name}.tmp")
        with suppress(OSError):  # a full disk: the history waits, the numbers still come
            tmp.write_bytes(orjson.dumps({"samples": samples}))
            os.replace(tmp, path)
    week = [(t, b) for t, b in samples if now - t <= 7 * _DAY]
    oldest = week[0] if week else None
    if oldest is None or now - oldest[0] < 3600:
        return None
    return (total - oldest[1]) / ((now - oldest[0]) / _DAY)


def measure(data_dir: Path, free: int | None, *, embedded: bool, now: float | None = None) -> Usage:
    """The data dir's usage now; counts new log records, and keeps a growth sample if due."""
    now = time.time() if now is None else now
    topics: dict[str, int] = {}
    log_file = data_dir / EMBEDDED_FILE
    if embedded and log_file.exists():
        with closing(sqlite3.connect(log_file, isolation_level=None, timeout=30.0)) as conn:
            conn.execute("PRAGMA busy_timeout=30000")
            topics = count_topics(conn)
    files = file_sizes(data_dir)
    growth = _growth(data_dir / USAGE_FILE, sum(files.values()), now)
    days = free / growth if growth and growth > 0 and free is not None else None
    return Usage(files, topics, growth, days)


@dataclass(frozen=True)
class KafkaUsage:
    topics: dict[str, int]  # bytes per topic on the brokers' disks, every replica
    log_dirs: list[LogDir]
    growth_per_day: float | None = None  # bytes, all of the hub's topics; None for an hour
    days_until_full: float | None = None  # of the log dir that fills first at that rate


def kafka_usage(log_dirs: list[LogDir], data_dir: Path, now: float | None = None) -> KafkaUsage:
    """The hub's topics on Kafka: bytes per topic, their growth (sampled in the data dir)
    and the days until a log dir holding them is full."""
    now = time.time() if now is None else now
    topics: dict[str, int] = {}
    for log_dir in log_dirs:
        for topic, size in log_dir.topics.items():
            topics[topic] = topics.get(topic, 0) + size
    total = sum(topics.values())
    growth = _growth(data_dir / KAFKA_USAGE_FILE, total, now)
    days = None
    if growth and growth > 0 and total > 0:
        days = min(
            (
                d.usable_bytes / (growth * sum(d.topics.values()) / total)
                for d in log_dirs
                if d.usable_bytes is not None and sum(d.topics.values()) > 0
            ),
            default=None,
        )
    return KafkaUsage(dict(sorted(topics.items())), log_dirs, growth, days)
