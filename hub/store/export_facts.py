"""What an export needs of each object version (hub.export.selection.Facts: its values, TLP,
validity, source...), in a table of its own beside the view's, kept by the same two calls
from the view's apply as the lookup index (`add` a version, `forget` versions it supersedes)
and from the same reading of its pattern, so an export reads rows instead of parsing every
object and pattern again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from hub.export.selection import facts_of
from hub.export.values import values_of
from hub.store.lookup_values import Comparison, comparisons_of, stix_pattern

SCHEMA = """
CREATE TABLE IF NOT EXISTS export_facts (
    seq INTEGER PRIMARY KEY,  -- the object version (the view's objects.seq)
    facts BLOB NOT NULL       -- hub.export.selection.Facts.to_bytes
)
"""
# Bumped when what is stored changes (a new fact, another extraction): the table is then
# built again from the view when it opens.
LAYOUT = "1"


def facts(obj: Mapping[str, Any], read: list[Comparison] | None) -> bytes:
    """The stored facts of `obj`, its pattern's comparisons `read` already."""
    return facts_of(obj, values_of(obj, read)).to_bytes()


def add(
    conn: sqlite3.Connection, seq: int, obj: Mapping[str, Any], read: list[Comparison] | None
) -> None:
    """Keep the facts of the object version `seq`."""
    conn.execute(
        "INSERT OR REPLACE INTO export_facts (seq, facts) VALUES (?, ?)", (seq, facts(obj, read))
    )


def forget(conn: sqlite3.Connection, seqs: Iterable[int]) -> None:
    """Drop the facts of the object versions `seqs` (superseded)."""
    conn.executemany("DELETE FROM export_facts WHERE seq = ?", [(seq,) for seq in seqs])


def prepare(conn: sqlite3.Connection, current: Callable[[], Iterable[tuple[int, bytes]]]) -> int:
    """Make the table; if it was not built by this layout (a view made before it), keep the
    facts of the `current()` versions (seq, JSON). The number of versions added."""
    row = conn.execute("SELECT value FROM meta WHERE name = 'export_facts_layout'").fetchone()
    if row is not None and row[0] == LAYOUT:
        return 0
    conn.execute("DROP TABLE IF EXISTS export_facts")
    conn.execute(SCHEMA)
    count = 0
    for seq, raw in current():
        obj = orjson.loads(raw)
        pattern = stix_pattern(obj)
        add(conn, seq, obj, comparisons_of(pattern) if pattern is not None else None)
        count += 1
    conn.execute(
        "INSERT OR REPLACE INTO meta (name, value) VALUES ('export_facts_layout', ?)", (LAYOUT,)
    )
    return count
