"""The lookup index ("have we seen this?"): the values each stored object version names, in
tables of its own beside the view's, kept by two calls from the view's apply (`add` a
version, `forget` versions it supersedes) so a change in how the view stores objects keeps it.

Keys are those of hub.store.lookup_values: address ranges, reversed domains, normalised URLs,
lowercased mailboxes and hashes; free text in an SQLite FTS5 table. A look-up returns the
object versions (`seq`s of the view) whose values match, at most CANDIDATES per probe, and
the view decides which of them the reader may read. Every probe is an index range: an
address is looked up inside each indexed network that could hold it (one key per prefix
length), and a network by the range of addresses it covers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from hub.store.lookup_values import (
    DOMAIN,
    IP4,
    IP6,
    SUBDOMAINS,
    URL_HOST,
    VALUE,
    Comparison,
    LookupQuery,
    keys_of,
    text_of,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS lookup_values (
    seq INTEGER NOT NULL,  -- the object version (the view's objects.seq)
    kind TEXT NOT NULL,
    first BLOB NOT NULL,   -- bytes of a range's first address, or the key as text
    last BLOB,             -- bytes of a range's last address
    how TEXT NOT NULL,
    shown TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lookup_by_key ON lookup_values (kind, first);
CREATE INDEX IF NOT EXISTS lookup_by_seq ON lookup_values (seq);
-- rowid: the object version's seq.
CREATE VIRTUAL TABLE IF NOT EXISTS lookup_text USING fts5 (body);
"""
LAYOUT = "2"  # bumped when the keys change: the index is then built again from the view
# 2: URLs on an IPv6 host keep its brackets (1 dropped them)
CANDIDATES = 5000  # object versions a probe looks at, at most


@dataclass(frozen=True, slots=True)
class Candidate:
    """An object version whose value matched: the value, and how it relates to the query."""

    seq: int
    value: str
    relation: str  # equal, contains, within, host, text


@dataclass(frozen=True)
class Candidates:
    found: list[Candidate]
    cut: bool  # a probe stopped at CANDIDATES: there may be more


def add(
    conn: sqlite3.Connection,
    seq: int,
    obj: Mapping[str, Any],
    read: list[Comparison] | None = None,
) -> None:
    """Index the values and text of the object version `seq` (an indicator's comparisons
    `read` already, when given)."""
    conn.executemany(
        "INSERT INTO lookup_values (seq, kind, first, last, how, shown) VALUES (?, ?, ?, ?, ?, ?)",
        [(seq, k.kind, k.first, k.last, k.how, k.shown) for k in keys_of(obj, read)],
    )
    text = text_of(obj)
    if text:
        conn.execute("INSERT INTO lookup_text (rowid, body) VALUES (?, ?)", (seq, text))


def forget(conn: sqlite3.Connection, seqs: Iterable[int]) -> None:
    """Take the object versions `seqs` out of the index (superseded, or deleted)."""
    rows = [(seq,) for seq in seqs]
    conn.executemany("DELETE FROM lookup_values WHERE seq = ?", rows)
    conn.executemany("DELETE FROM lookup_text WHERE rowid = ?", rows)


def prepare(conn: sqlite3.Connection, current: Callable[[], Iterable[tuple[int, bytes]]]) -> int:
    """Make the index's tables; if they were not built by this layout (a view made before
    the index, or by other keys), index the `current()` versions (seq, JSON) again. The
    number of versions indexed (0 when the index was current)."""
    row = conn.execute("SELECT value FROM meta WHERE name = 'lookup_layout'").fetchone()
    if row is not None and row[0] == LAYOUT:
        return 0
    conn.execute("DROP TABLE IF EXISTS lookup_values")
    conn.execute("DROP TABLE IF EXISTS lookup_text")
    for statement in SCHEMA.split(";"):  # executescript would commit the caller's transaction
        if statement.strip():
            conn.execute(statement)
    count = 0
    for seq, raw in current():  # read after the tables change: a cursor would not survive it
        add(conn, seq, orjson.loads(raw))
        count += 1
    conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('lookup_layout', ?)", (LAYOUT,))
    return count


def _ip_relation(first: bytes, last: bytes, q: LookupQuery) -> str:
    if first == q.first and last == q.last:
        return "equal"
    assert isinstance(q.first, bytes) and q.last is not None
    return "contains" if first <= q.first and last >= q.last else "within"


def _networks_holding(q: LookupQuery) -> list[bytes]:
    """The first address of every network larger than the query's that holds it and starts
    before it (one starting where it starts is inside the query's own range). Only equality
    on `first`: a range condition there would have SQLite scan every lower address."""
    assert isinstance(q.first, bytes) and q.last is not None
    width = len(q.first) * 8
    first, last = int.from_bytes(q.first), int.from_bytes(q.last)
    prefix = width - (last - first + 1).bit_length() + 1
    starts = {first & ~((1 << (width - p)) - 1) for p in range(prefix)}
    return [s.to_bytes(len(q.first)) for s in sorted(starts) if s != first]


@dataclass(frozen=True)
class Visible:
    """Which object versions a look-up may return: an SQL condition on `{seq}` (the view's
    seq of a version) and its arguments. Applied before CANDIDATES counts, so what the
    reader may not read never takes the place of what it may."""

    condition: str = "1"
    args: tuple[object, ...] = ()


def _select(
    conn: sqlite3.Connection,
    sql: str,
    args: list[Any],
    visible: Visible,
    seq: str = "lookup_values.seq",
) -> tuple[list[Any], bool]:
    rows = conn.execute(
        f"{sql} AND {visible.condition.format(seq=seq)} LIMIT ?",
        [*args, *visible.args, CANDIDATES + 1],
    ).fetchall()
    return rows[:CANDIDATES], len(rows) > CANDIDATES


_COLUMNS = "SELECT seq, first, last, how, shown FROM lookup_values WHERE kind = ?"


def candidates(conn: sqlite3.Connection, q: LookupQuery, visible: Visible) -> Candidates:
    """The object versions `visible` admits whose values match `q`, with how each matched."""
    if q.kind == "text":
        phrase = '"' + str(q.first).replace('"', '""') + '"'
        rows, cut = _select(
            conn,
            "SELECT rowid FROM lookup_text WHERE lookup_text MATCH ?",
            [phrase],
            visible,
            "lookup_text.rowid",
        )
        return Candidates([Candidate(seq, q.value, "text") for (seq,) in rows], cut)
    if q.kind in (IP4, IP6):
        inside, cut = _select(
            conn, f"{_COLUMNS} AND first BETWEEN ? AND ?", [q.kind, q.first, q.last], visible
        )
        holders = _networks_holding(q)
        marks = ",".join("?" * len(holders))
        around, more = _select(
            conn,
            f"{_COLUMNS} AND first IN ({marks}) AND last >= ?",
            [q.kind, *holders, q.last],
            visible,
        )
        found = [
            Candidate(seq, shown, "host" if how == URL_HOST else _ip_relation(first, last, q))
            for seq, first, last, how, shown in [*inside, *around]
        ]
        return Candidates(found, cut or more)
    if q.kind == DOMAIN:
        assert isinstance(q.first, str)
        under, cut = _select(
            conn,
            f"{_COLUMNS} AND first >= ? AND first < ?",
            [q.kind, q.first, q.first[:-1] + "/"],
            visible,
        )
        labels = q.first.split(".")[:-1]
        parents = [".".join(labels[:n]) + "." for n in range(1, len(labels))]
        marks = ",".join("?" * len(parents))
        over, more = (
            _select(
                conn,
                f"{_COLUMNS} AND first IN ({marks}) AND how = ?",
                [q.kind, *parents, SUBDOMAINS],
                visible,
            )
            if parents
            else ([], False)
        )
        found = []
        for seq, first, _, how, shown in under:
            if how == URL_HOST:
                relation = "host"
            else:
                relation = "equal" if first == q.first and how == VALUE else "within"
            found.append(Candidate(seq, f"*.{shown}" if how == SUBDOMAINS else shown, relation))
        found += [Candidate(seq, f"*.{shown}", "contains") for seq, _, _, _, shown in over]
        return Candidates(found, cut or more)
    rows, cut = _select(conn, f"{_COLUMNS} AND first = ?", [q.kind, q.first], visible)
    return Candidates([Candidate(seq, shown, "equal") for seq, _, _, _, shown in rows], cut)
