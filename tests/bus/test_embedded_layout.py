"""A log written by an earlier cirt-hub (records clustered in a WITHOUT ROWID table) opens
with every record where it was, in the current layout, and takes new records after them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hub.bus import Message, TopicPartition
from hub.bus.embedded import EmbeddedBus

EARLIER_LAYOUT = """
CREATE TABLE records (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL, key BLOB,
    value BLOB NOT NULL, headers BLOB, ts INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, offset)
) WITHOUT ROWID;
CREATE TABLE topics (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL,
    retain_forever INTEGER NOT NULL);
INSERT INTO topics VALUES ('t.feed', 2, 1);
"""


async def test_a_log_in_the_earlier_layout_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "bus.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(EARLIER_LAYOUT)
        conn.executemany(
            "INSERT INTO records VALUES ('t.feed', ?, ?, NULL, ?, NULL, 0)",
            [(p, o, f"p{p}-o{o}".encode()) for p in (0, 1) for o in range(50)],
        )
    bus = EmbeddedBus(path)
    await bus.start()
    try:
        positions = await bus.publish([Message("t.feed", b"new", key=b"k")])
        tp = TopicPartition("t.feed", positions[0].partition)
        assert positions[0].offset == 50  # after what was there
        reader = bus.reader(["t.feed"], {TopicPartition("t.feed", p): 0 for p in (0, 1)})
        await reader.start()
        got = []
        while len(got) < 101:
            got += await reader.fetch(max_records=500, timeout=1.0)
        await reader.stop()
    finally:
        await bus.stop()
    values = {(r.partition, r.offset): r.value for r in got}
    assert values[(tp.partition, 50)] == b"new"
    for p in (0, 1):
        assert [values[(p, o)] for o in range(50)] == [f"p{p}-o{o}".encode() for o in range(50)]
    with sqlite3.connect(path) as conn:
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'records'").fetchone()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "WITHOUT ROWID" not in sql.upper()
    assert "records_position" in tables and "records_clustered" not in tables
