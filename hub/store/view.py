"""The materialized view behind TAXII reads: one SQLite file per API node.

Filled from the feed and status topics. Each batch of records is applied idempotently,
and the offsets it came from are stored in the same transaction, so a restart resumes
exactly where it stopped and deleting the file rebuilds it from the topics.

`date_added` is the pipeline's routing time, nudged forward where needed so that on this
node it strictly increases in ingest order: a client polling with `added_after` set to
the last `date_added` it saw can then never miss an object that arrived later.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from hub.bus import Record, TopicPartition
from hub.policy.redaction import references
from hub.records import AuditRecord, FeedRecord, StatusRecord
from hub.sqlite import SqliteThread, in_transaction
from hub.stix import timestamps
from hub.stix.markings import tlp_by_marking_id
from hub.store import export_facts, lookup
from hub.store.lookup_values import LookupQuery, comparisons_of, stix_pattern

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    spec_version TEXT NOT NULL,
    version TEXT,
    version_key TEXT NOT NULL,
    date_added TEXT NOT NULL,
    date_added_key TEXT NOT NULL,
    json BLOB NOT NULL,
    accounts TEXT,
    tlp INTEGER,  -- the object-level TLP (hub.stix.markings.Tlp), NULL when none
    UNIQUE (collection, id, version_key)
);
CREATE INDEX IF NOT EXISTS objects_by_added ON objects (collection, date_added_key);
-- Pages and live streams read a collection in seq order after a cursor: without this index
-- each read scanned and sorted the whole collection, so reads slowed as the view grew.
CREATE INDEX IF NOT EXISTS objects_by_seq ON objects (collection, seq);
-- The console's newest-first lists filtered by type or TLP: without these a filter that
-- matches little would read the whole collection to fill a page.
CREATE INDEX IF NOT EXISTS objects_by_type ON objects (collection, type, seq);
CREATE INDEX IF NOT EXISTS objects_by_tlp ON objects (collection, tlp, seq);
CREATE INDEX IF NOT EXISTS objects_by_id ON objects (id);
-- What each stored version refers to (`*_ref`, `*_refs`, markings aside), so "what refers
-- to this object" is an index look-up, not a read of every object.
CREATE TABLE IF NOT EXISTS refs (
    seq INTEGER NOT NULL,
    target TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS refs_by_target ON refs (target, seq);
CREATE INDEX IF NOT EXISTS refs_by_seq ON refs (seq);  -- retention deletes by version
CREATE TABLE IF NOT EXISTS statuses (
    id TEXT PRIMARY KEY,
    member TEXT NOT NULL,
    complete INTEGER NOT NULL,
    doc BLOB NOT NULL,
    final_doc BLOB,     -- the complete status, held until its objects are all in the view
    awaiting BLOB       -- JSON [[collection, id, version_key], ...] still missing
);
-- The held statuses, looked at after every batch applied: without it that look read every
-- status ever received, so applying slowed as statuses accumulated.
CREATE INDEX IF NOT EXISTS statuses_held ON statuses (id) WHERE final_doc IS NOT NULL;
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    sender TEXT NOT NULL,
    object_id TEXT NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_object ON audit (object_id, sender);
CREATE TABLE IF NOT EXISTS positions (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def timestamp_key(value: str | None) -> str:
    """A sortable form of a STIX timestamp, whatever its precision ('' if none or invalid)."""
    if not value:
        return ""
    try:
        return timestamps.sort_key(value)
    except ValueError:
        return ""


@dataclass(frozen=True)
class ObjectQuery:
    """A TAXII Get Objects request, already checked."""

    collection: str
    reader: str = ""  # the reading account: TLP:RED records name the accounts that may read
    after_seq: int = 0
    added_after: str | None = None
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    versions: tuple[str, ...] = ("last",)
    spec_versions: tuple[str, ...] = ()
    limit: int = 100
    # A page also ends before its objects' JSON would pass this many bytes, so one read
    # holds about this much whatever members sent; an object larger than that alone still
    # makes a page of its own. None: only `limit` ends a page.
    max_bytes: int | None = None
    # False for answers that show no object (manifest, versions): their entries carry no
    # JSON, none is read, and only `limit` ends their pages.
    with_json: bool = True
    # Each entry also carries the facts an export needs (hub.store.export_facts); an entry
    # without stored facts carries its JSON whatever `with_json` says.
    with_facts: bool = False


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored version of an object in a collection."""

    seq: int
    date_added: str
    id: str
    version: str | None  # `modified`, else `created`; None for objects with neither
    spec_version: str
    json: bytes  # the object as delivered (b"" when the query asked for no JSON)
    facts: bytes = b""  # hub.export.selection.Facts, when the query asked for them


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    last_seq: int
    more: bool

    @property
    def objects(self) -> list[bytes]:
        return [e.json for e in self.entries]

    @property
    def first_added(self) -> str | None:
        return self.entries[0].date_added if self.entries else None

    @property
    def last_added(self) -> str | None:
        return self.entries[-1].date_added if self.entries else None


@dataclass(frozen=True, slots=True)
class Arrival:
    """One stored version as a list shows it: where and when it arrived, what it is, and the
    values at the JSON paths the query named (`fields`, None where absent)."""

    seq: int
    collection: str
    date_added: str
    id: str
    type: str
    version: str | None
    tlp: int | None
    fields: tuple[Any, ...]


@dataclass(frozen=True)
class RecentQuery:
    """The latest arrivals in one collection, newest first, for one reader."""

    collection: str
    reader: str
    before_seq: int | None = None  # the page after the one that ended at this seq
    type: str | None = None
    tlp: int | None = None
    since: str | None = None  # a timestamp: arrived at or after it
    limit: int = 50
    paths: tuple[str, ...] = ()  # JSON paths (SQLite's) to read from each object
    latest_only: bool = True  # each object once, at the latest version the reader may read


def _in(column: str, values: Sequence[str]) -> tuple[str, list[str]]:
    return f"{column} IN ({','.join('?' * len(values))})", list(values)


# A record with `accounts` is readable only by the accounts it names (",a,b," form).
_READABLE = "({t}.accounts IS NULL OR instr({t}.accounts, ',' || ? || ',') > 0)"


def _version_clause(versions: Sequence[str], reader: str) -> tuple[str, list[str]]:
    if "all" in versions:
        return "", []
    parts, args = [], []
    for v in versions:
        if v in ("last", "first"):
            agg = "MAX" if v == "last" else "MIN"
            # Among the versions this reader may read: a newer one addressed to other
            # accounts must neither show nor hide the one it may read.
            parts.append(
                f"o.version_key = (SELECT {agg}(i.version_key) FROM objects i"
                f" WHERE i.collection = o.collection AND i.id = o.id AND {_READABLE.format(t='i')})"
            )
            args.append(reader)
        else:
            parts.append("o.version_key = ?")
            args.append(timestamp_key(v))
    return "(" + " OR ".join(parts) + ")", args


def _select_page(conn: sqlite3.Connection, q: ObjectQuery) -> Page:
    where = ["o.collection = ?", "o.seq > ?", _READABLE.format(t="o")]
    args: list[object] = [q.collection, q.after_seq, q.reader]
    if q.added_after:
        where.append("o.date_added_key > ?")
        args.append(timestamp_key(q.added_after))
    for column, values in (
        ("o.id", q.ids),
        ("o.type", q.types),
        ("o.spec_version", q.spec_versions),
    ):
        if values:
            clause, more = _in(column, values)
            where.append(clause)
            args.extend(more)
    clause, more = _version_clause(q.versions, q.reader)
    if clause:
        where.append(clause)
        args.extend(more)
    # date_added increases with seq on a node, so both orders are one; naming the one the
    # filter's index holds lets SQLite read it in order and stop at the limit.
    order = "o.date_added_key, o.seq" if q.added_after else "o.seq"
    # Sizes first: SQLite answers length() of a blob without reading it, so the page is
    # cut at its byte budget before any object is loaded.
    rows = conn.execute(
        "SELECT o.seq, o.date_added, o.id, o.version, o.spec_version, length(o.json)"
        f" FROM objects o WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?",
        [*args, q.limit + 1],
    ).fetchall()
    taken = _within_budget(rows, q.limit, q.max_bytes if q.with_json else None)
    seqs = [row[0] for row in taken]
    facts = _facts(conn, seqs) if q.with_facts else {}
    if q.with_json:
        bodies = _bodies(conn, seqs)
    else:
        bodies = _bodies(conn, [s for s in seqs if s not in facts]) if q.with_facts else {}
    entries = [
        Entry(
            row[0], row[1], row[2], row[3], row[4], bodies.get(row[0], b""), facts.get(row[0], b"")
        )
        for row in taken
    ]
    return Page(
        entries=entries,
        last_seq=entries[-1].seq if entries else q.after_seq,
        more=len(rows) > len(taken),
    )


def _within_budget(rows: list[Any], limit: int, max_bytes: int | None) -> list[Any]:
    """The first rows, at most `limit`, whose sizes (last column) add up to at most
    `max_bytes`; always the first row, however large."""
    total = 0
    for n, row in enumerate(rows[:limit]):
        total += row[-1]
        if n and max_bytes is not None and total > max_bytes:
            return rows[:n]
    return rows[:limit]


def _bodies(conn: sqlite3.Connection, seqs: list[int]) -> dict[int, bytes]:
    if not seqs:
        return {}
    marks = ",".join("?" * len(seqs))
    return dict(conn.execute(f"SELECT seq, json FROM objects WHERE seq IN ({marks})", seqs))


def _facts(conn: sqlite3.Connection, seqs: list[int]) -> dict[int, bytes]:
    if not seqs:
        return {}
    marks = ",".join("?" * len(seqs))
    return dict(conn.execute(f"SELECT seq, facts FROM export_facts WHERE seq IN ({marks})", seqs))


def _arrivals(
    conn: sqlite3.Connection,
    where: list[str],
    args: list[object],
    paths: tuple[str, ...],
    order: str,
    limit: int,
) -> list[Arrival]:
    extracted = "".join(", json_extract(CAST(o.json AS TEXT), ?)" for _ in paths)
    rows = conn.execute(
        "SELECT o.seq, o.collection, o.date_added, o.id, o.type, o.version, o.tlp"
        f"{extracted} FROM objects o WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?",
        [*paths, *args, limit],
    )
    return [
        Arrival(row[0], row[1], row[2], row[3], row[4], row[5], row[6], tuple(row[7:]))
        for row in rows
    ]


def _select_recent(conn: sqlite3.Connection, q: RecentQuery) -> list[Arrival]:
    where = ["o.collection = ?", _READABLE.format(t="o")]
    args: list[object] = [q.collection, q.reader]
    if q.before_seq is not None:
        where.append("o.seq < ?")
        args.append(q.before_seq)
    if q.type is not None:
        where.append("o.type = ?")
        args.append(q.type)
    if q.tlp is not None:
        where.append("o.tlp = ?")
        args.append(q.tlp)
    if q.latest_only:
        clause, more = _version_clause(("last",), q.reader)
        where.append(clause)
        args.extend(more)
    if q.since is not None:
        # date_added increases with seq on a node: "since" is a lower bound on seq, found
        # through the date index, so the newest-first read stays on the seq indexes.
        first = conn.execute(
            "SELECT MIN(seq) FROM objects WHERE collection = ? AND date_added_key >= ?",
            (q.collection, timestamp_key(q.since)),
        ).fetchone()[0]
        if first is None:
            return []
        where.append("o.seq >= ?")
        args.append(first)
    return _arrivals(conn, where, args, q.paths, "o.seq DESC", q.limit)


# What may mention a value through what it refers to: a report or grouping listing an
# indicator, a sighting of it, observed-data or a note about it.
REFERRING_TYPES = ("report", "sighting", "observed-data", "grouping", "note")


@dataclass(frozen=True, slots=True)
class Found:
    """One object version a look-up found: by its own values (`matched`), or because it
    refers to such an object (`refers_to`, their ids)."""

    arrival: Arrival
    matched: tuple[lookup.Candidate, ...] = ()
    refers_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class LookupAnswer:
    found: list[Found]  # the matches newest first, then what refers to them newest first
    more: bool  # the answer stopped at its limit, or a probe at lookup.CANDIDATES


def _lookup_visible(
    collections: Sequence[str], reader: str, seqs: Sequence[int] = ()
) -> lookup.Visible:
    """What a look-up by `reader` in `collections` may find: the latest version it may read
    of each object; only the versions `seqs` when some are given."""
    among, among_args = _among(collections, reader)
    latest, latest_args = _version_clause(("last",), reader)
    where = [*among, latest]
    args: list[object] = [*among_args, *latest_args]
    if seqs:
        where.insert(0, f"o.seq IN ({','.join('?' * len(seqs))})")
        args[:0] = seqs
    return lookup.Visible(
        "EXISTS (SELECT 1 FROM objects o WHERE o.seq = {seq} AND "
        + " AND ".join(where).replace("{", "{{").replace("}", "}}")
        + ")",
        tuple(args),
    )


def _select_matching(
    conn: sqlite3.Connection, query: LookupQuery, collection: str, reader: str, seqs: list[int]
) -> set[int]:
    found: set[int] = set()
    left = seqs
    while left:
        hits = lookup.candidates(conn, query, _lookup_visible([collection], reader, left))
        new = {hit.seq for hit in hits.found} - found
        found |= new
        if not hits.cut or not new:
            return found
        # A probe stopped at lookup.CANDIDATES (versions naming many values inside the
        # query's): ask again about the versions it did not get to.
        left = [seq for seq in left if seq not in found]
    return found


def _select_lookup(
    conn: sqlite3.Connection,
    query: LookupQuery,
    collections: Sequence[str],
    reader: str,
    limit: int,
    paths: tuple[str, ...],
) -> LookupAnswer:
    if not collections:
        return LookupAnswer([], False)
    among, among_args = _among(collections, reader)
    latest, latest_args = _version_clause(("last",), reader)
    hits = lookup.candidates(conn, query, _lookup_visible(collections, reader))
    by_seq: dict[int, list[lookup.Candidate]] = {}
    for hit in hits.found:
        by_seq.setdefault(hit.seq, []).append(hit)
    if not by_seq:
        return LookupAnswer([], hits.cut)
    seq_args: list[object] = list(by_seq)
    seqs = f"o.seq IN ({','.join('?' * len(seq_args))})"
    direct = _arrivals(
        conn,
        [seqs, *among, latest],
        [*seq_args, *among_args, *latest_args],
        paths,
        "o.seq DESC",
        limit + 1,
    )
    more = hits.cut or len(direct) > limit
    direct = direct[:limit]
    found = [Found(a, tuple(dict.fromkeys(by_seq[a.seq]))) for a in direct]
    ids = sorted({a.id for a in direct})
    if not ids:
        return LookupAnswer(found, more)
    targets, target_args = _in("r.target", ids)
    kinds, kind_args = _in("o.type", REFERRING_TYPES)
    # What refers to a match and the reader may read, at most lookup.CANDIDATES: a popular
    # indicator's sightings must not make one look-up read them all, nor what the reader
    # may not read take the place of what it may.
    readable = " AND ".join(
        [kinds, "coalesce(json_extract(CAST(o.json AS TEXT), '$.revoked'), 0) = 0", *among, latest]
    )
    referrers = [
        seq
        for (seq,) in conn.execute(
            f"SELECT DISTINCT r.seq FROM refs r WHERE {targets} AND EXISTS"
            f" (SELECT 1 FROM objects o WHERE o.seq = r.seq AND {readable}) LIMIT ?",
            [*target_args, *kind_args, *among_args, *latest_args, lookup.CANDIDATES + 1],
        )
    ]
    more = more or len(referrers) > lookup.CANDIDATES
    referrers = referrers[: lookup.CANDIDATES]
    referring = _arrivals(
        conn,
        [f"o.seq IN ({','.join('?' * len(referrers))})"],
        list(referrers),
        paths,
        "o.seq DESC",
        limit + 1,
    )
    referring = [a for a in referring if a.seq not in by_seq]
    more = more or len(referring) > limit
    referring = referring[:limit]
    if referring:
        marks = ",".join("?" * len(referring))
        pairs = conn.execute(
            f"SELECT r.seq, r.target FROM refs r WHERE r.seq IN ({marks}) AND {targets}",
            [*(a.seq for a in referring), *target_args],
        ).fetchall()
        named: dict[int, list[str]] = {}
        for seq, target in pairs:
            named.setdefault(seq, []).append(target)
        found += [Found(a, refers_to=tuple(sorted(named.get(a.seq, [])))) for a in referring]
    return LookupAnswer(found, more)


def _among(collections: Sequence[str], reader: str) -> tuple[list[str], list[object]]:
    clause, args = _in("o.collection", collections)
    return [clause, _READABLE.format(t="o")], [*args, reader]


def _routed_at(feed: FeedRecord, record: Record) -> datetime:
    try:
        return timestamps.parse(feed.date_added)
    except ValueError:
        return datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)


def _object_tlp(obj: dict[str, Any]) -> int | None:
    table = tlp_by_marking_id()
    refs = obj.get("object_marking_refs")
    levels = [table[r] for r in refs if isinstance(r, str) and r in table] if refs else []
    return int(max(levels)) if levels else None


def _apply_feed(conn: sqlite3.Connection, feed: FeedRecord, added: str) -> None:
    obj: dict[str, Any] = orjson.loads(feed.value)
    version = obj.get("modified") or obj.get("created")
    cursor = conn.execute(
        "INSERT OR IGNORE INTO objects (collection, id, type, spec_version, version,"
        " version_key, date_added, date_added_key, json, accounts, tlp)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            feed.collection,
            obj["id"],
            obj["type"],
            obj.get("spec_version", "2.1"),
            version,
            timestamp_key(version),
            added,
            timestamp_key(added),
            feed.value,
            f",{','.join(feed.accounts)}," if feed.accounts else None,
            _object_tlp(obj),
        ),
    )
    if cursor.rowcount == 1:
        seq = cursor.lastrowid
        assert seq is not None
        targets = {ref for ref in references(obj) if ref != obj["id"]}
        conn.executemany(
            "INSERT INTO refs (seq, target) VALUES (?, ?)", [(seq, t) for t in targets]
        )
        _index_current(conn, seq, obj, timestamp_key(version))


# The other versions of the same object, in the same collection, for the same accounts: of
# those, only the latest can be any reader's latest, so only its values stay in the index
# (and only its facts for exports).
_SAME_READERS = (
    "SELECT o.seq, o.version_key FROM objects o, objects n WHERE n.seq = ?"
    " AND o.collection = n.collection AND o.id = n.id AND o.accounts IS n.accounts"
    " AND o.seq != n.seq"
)


def _index_current(
    conn: sqlite3.Connection, seq: int, obj: dict[str, Any], version_key: str
) -> None:
    """The lookup index's and the export facts' hook: the new version in, the versions it
    supersedes out; an indicator's pattern read once for both."""
    others = conn.execute(_SAME_READERS, (seq,)).fetchall()
    if any(key > version_key for _, key in others):
        return  # an older version arriving late: a newer one already speaks for the object
    superseded = [other for other, _ in others]
    lookup.forget(conn, superseded)
    export_facts.forget(conn, superseded)
    pattern = stix_pattern(obj)
    read = comparisons_of(pattern) if pattern is not None else None
    lookup.add(conn, seq, obj, read)
    export_facts.add(conn, seq, obj, read)


def _current_versions(conn: sqlite3.Connection) -> Iterable[tuple[int, bytes]]:
    """(seq, JSON) of each stored version no later version for the same readers supersedes."""
    return conn.execute(
        "SELECT o.seq, o.json FROM objects o WHERE NOT EXISTS (SELECT 1 FROM objects n"
        " WHERE n.collection = o.collection AND n.id = o.id AND n.accounts IS o.accounts"
        " AND n.version_key > o.version_key) ORDER BY o.seq"
    )


def _missing(conn: sqlite3.Connection, wanted: list[list[str]]) -> list[list[str]]:
    """The (collection, id, version_key) keys not in the view yet; `wanted` itself when
    its first is missing. Objects arrive in about the order they are listed, so while the
    first is missing the rest need no look (under a backlog every batch would otherwise
    look up every object of every held status again)."""

    def absent(key: list[str]) -> bool:
        return (
            conn.execute(
                "SELECT 1 FROM objects WHERE collection = ? AND id = ? AND version_key = ?", key
            ).fetchone()
            is None
        )

    if wanted and absent(wanted[0]):
        return wanted
    return [key for key in wanted[1:] if absent(key)]


def _apply_status(conn: sqlite3.Connection, record: Record) -> None:
    status = StatusRecord.from_record(record)
    doc, member = status.doc, status.member
    if not status.complete:
        # A pending status never replaces what is there: the final one may have come first.
        conn.execute(
            "INSERT OR IGNORE INTO statuses (id, member, complete, doc) VALUES (?, ?, 0, ?)",
            (doc["id"], member, record.value),
        )
        return
    # "complete" is shown only once every object it reports delivered is readable here, so
    # a client that saw it complete never reads a collection that lacks what it sent.
    wanted = [[c, i, timestamp_key(v)] for c, i, v in status.delivered or ()]
    missing = _missing(conn, wanted)
    pending = orjson.dumps({**doc, "status": "pending"}) if missing else record.value
    conn.execute(
        "INSERT INTO statuses (id, member, complete, doc, final_doc, awaiting)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET member = excluded.member,"
        " complete = excluded.complete, doc = excluded.doc, final_doc = excluded.final_doc,"
        " awaiting = excluded.awaiting WHERE statuses.complete = 0",
        (
            doc["id"],
            member,
            0 if missing else 1,
            pending,
            record.value if missing else None,
            orjson.dumps(missing) if missing else None,
        ),
    )


def _release_held_statuses(conn: sqlite3.Connection) -> None:
    """Complete the held statuses whose objects have all arrived."""
    held = conn.execute("SELECT id, awaiting FROM statuses WHERE final_doc IS NOT NULL").fetchall()
    for status_id, awaiting in held:
        wanted = orjson.loads(awaiting)
        missing = _missing(conn, wanted)
        if missing is wanted:
            continue
        if missing:
            conn.execute(
                "UPDATE statuses SET awaiting = ? WHERE id = ?", (orjson.dumps(missing), status_id)
            )
        else:
            conn.execute(
                "UPDATE statuses SET complete = 1, doc = final_doc, final_doc = NULL,"
                " awaiting = NULL WHERE id = ?",
                (status_id,),
            )


VIEW_LAYOUT = "4"  # bumped when the tables change; a file of another layout is rebuilt


def _layout_of(path: Path) -> str | None:
    """The layout version of an existing view file (None when there is no file yet)."""
    if not path.exists():
        return None
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT value FROM meta WHERE name = 'layout'").fetchone()
    except sqlite3.OperationalError:
        return "unknown"
    finally:
        conn.close()
    return row[0] if row else "unknown"


def _discard_other_layout(path: Path) -> None:
    if _layout_of(path) not in (None, VIEW_LAYOUT):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def _mark_layout(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('layout', ?)", (VIEW_LAYOUT,))


def _apply_audit(conn: sqlite3.Connection, record: Record) -> None:
    audit = AuditRecord.from_record(record)
    conn.execute(
        "INSERT OR IGNORE INTO audit (seq, sender, object_id, record) VALUES (?, ?, ?, ?)",
        (audit.seq, audit.sender, audit.object_id, record.value),
    )


def _load_meta(conn: sqlite3.Connection) -> tuple[str, datetime | None]:
    """The view's epoch (made once per file) and the last date_added it gave out."""
    conn.execute(
        "INSERT OR IGNORE INTO meta (name, value) VALUES ('epoch', ?)", (uuid.uuid4().hex[:12],)
    )
    epoch = conn.execute("SELECT value FROM meta WHERE name = 'epoch'").fetchone()[0]
    row = conn.execute("SELECT date_added FROM objects ORDER BY seq DESC LIMIT 1").fetchone()
    return epoch, (timestamps.parse(row[0]) if row else None)


class View:
    """Reads and writes the node's view; every call runs on the view's own SQLite thread."""

    def __init__(
        self, path: Path, *, feeds: dict[str, str], status_topic: str, audit_topic: str = ""
    ) -> None:
        self.path = path
        self._feeds = feeds  # topic → collection alias
        self._status_topic = status_topic
        self._audit_topic = audit_topic
        self._db = SqliteThread(path, name="view", pragmas=("synchronous=NORMAL",), schema=_SCHEMA)
        self.epoch = ""
        self._last_added: datetime | None = None
        # Batches applied since the view opened, counted in memory: a reader in this process
        # waits for the count to move instead of asking SQLite for the positions.
        self.applied = 0
        self._moved = asyncio.Event()

    async def open(self) -> None:
        """Open (or create) the file; its epoch changes only when the file is made anew.

        A file from another version of the view's layout is deleted: the view is rebuilt
        from the topics, which are the system of record.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(_discard_other_layout, self.path)
        await self._db.start()
        await self._db.run(_mark_layout)
        self.epoch, self._last_added = await self._db.run(_load_meta)
        indexed = await self._db.run(
            lambda conn: in_transaction(
                conn, lambda: lookup.prepare(conn, lambda: _current_versions(conn))
            )
        )
        if indexed:
            log.info("lookup index built", extra={"versions": indexed, "view": str(self.path)})
        kept = await self._db.run(
            lambda conn: in_transaction(
                conn, lambda: export_facts.prepare(conn, lambda: _current_versions(conn))
            )
        )
        if kept:
            log.info("export facts built", extra={"versions": kept, "view": str(self.path)})

    async def close(self) -> None:
        await self._db.stop()

    @property
    def topics(self) -> list[str]:
        return [
            *self._feeds,
            self._status_topic,
            *([self._audit_topic] if self._audit_topic else []),
        ]

    async def positions(self) -> dict[TopicPartition, int]:
        def load(conn: sqlite3.Connection) -> dict[TopicPartition, int]:
            rows = conn.execute("SELECT topic, partition, next_offset FROM positions")
            return {TopicPartition(t, p): o for t, p, o in rows}

        return await self._db.run(load)

    async def apply(self, records: Sequence[Record]) -> None:
        """Apply `records` and move the stored positions past them, in one transaction."""

        last_added = self._last_added

        def body(conn: sqlite3.Connection) -> datetime | None:
            latest = last_added
            ends: dict[TopicPartition, int] = {}
            for record in records:
                if record.topic == self._status_topic:
                    _apply_status(conn, record)
                elif record.topic == self._audit_topic:
                    _apply_audit(conn, record)
                elif record.topic in self._feeds:
                    feed = FeedRecord.from_record(record, self._feeds[record.topic])
                    added = _routed_at(feed, record)
                    if latest is not None and added <= latest:
                        added = latest + timestamps.ONE_MICROSECOND
                    latest = added
                    stamp = timestamps.format_micros(added)
                    _apply_feed(conn, feed, stamp)
                ends[record.tp] = max(ends.get(record.tp, 0), record.offset + 1)
            conn.executemany(
                "INSERT INTO positions (topic, partition, next_offset) VALUES (?, ?, ?)"
                " ON CONFLICT (topic, partition) DO UPDATE SET"
                " next_offset = MAX(next_offset, excluded.next_offset)",
                [(tp.topic, tp.partition, off) for tp, off in ends.items()],
            )
            _release_held_statuses(conn)
            return latest

        self._last_added = await self._db.run(lambda conn: in_transaction(conn, lambda: body(conn)))
        self.applied += 1
        self._moved.set()
        self._moved = asyncio.Event()

    async def moved(self, seen: int) -> None:
        """Return once a batch was applied after `applied` was `seen`."""
        if self.applied == seen:
            await self._moved.wait()

    async def objects(self, query: ObjectQuery) -> Page:
        return await self._db.run(lambda conn: _select_page(conn, query))

    async def recent(self, query: RecentQuery) -> list[Arrival]:
        """The reader's latest arrivals in one collection, newest first (every version)."""
        return await self._db.run(lambda conn: _select_recent(conn, query))

    async def versions(
        self,
        object_id: str,
        collections: Sequence[str],
        reader: str,
        limit: int,
        paths: tuple[str, ...] = (),
    ) -> list[Arrival]:
        """Every version of `object_id` the reader may read in `collections`, newest first."""
        where, args = _among(collections, reader)

        def load(conn: sqlite3.Connection) -> list[Arrival]:
            return _arrivals(
                conn,
                ["o.id = ?", *where],
                [object_id, *args],
                paths,
                "o.version_key DESC, o.seq DESC",
                limit,
            )

        return await self._db.run(load)

    async def present(
        self,
        ids: Sequence[str],
        collections: Sequence[str],
        reader: str,
        paths: tuple[str, ...] = (),
    ) -> list[Arrival]:
        """The latest arrival of each of `ids` the reader may read in `collections`."""
        if not ids:
            return []
        clause, id_args = _in("o.id", ids)
        where, args = _among(collections, reader)

        def load(conn: sqlite3.Connection) -> list[Arrival]:
            latest = (
                f"o.seq IN (SELECT MAX(o.seq) FROM objects o WHERE {' AND '.join([clause, *where])}"
                " GROUP BY o.id)"
            )
            return _arrivals(conn, [latest], [*id_args, *args], paths, "o.seq DESC", len(ids))

        return await self._db.run(load)

    async def referrers(
        self,
        target: str,
        collections: Sequence[str],
        reader: str,
        limit: int,
        paths: tuple[str, ...] = (),
    ) -> list[Arrival]:
        """Objects the reader may read in `collections` that refer to `target`, the latest
        arrival first (at most `limit` stored versions looked at)."""
        where, args = _among(collections, reader)

        def load(conn: sqlite3.Connection) -> list[Arrival]:
            found = _arrivals(
                conn,
                ["o.seq IN (SELECT r.seq FROM refs r WHERE r.target = ?)", *where],
                [target, *args],
                paths,
                "o.seq DESC",
                limit,
            )
            return list({a.id: a for a in reversed(found)}.values())[::-1]

        return await self._db.run(load)

    async def lookup(
        self,
        query: LookupQuery,
        collections: Sequence[str],
        reader: str,
        limit: int,
        paths: tuple[str, ...] = (),
    ) -> LookupAnswer:
        """What the reader may read in `collections` that names the value of `query` (the
        latest version it may read of each object, not revoked), and what refers to those."""
        return await self._db.run(
            lambda conn: _select_lookup(conn, query, collections, reader, limit, paths)
        )

    async def matching(
        self, query: LookupQuery, collection: str, reader: str, seqs: Sequence[int]
    ) -> set[int]:
        """Which of the versions `seqs` of `collection` a look-up of `query` by `reader` finds
        by their own values (hub.store.lookup's one definition of a match)."""
        if not seqs:
            return set()
        return await self._db.run(
            lambda conn: _select_matching(conn, query, collection, reader, list(seqs))
        )

    async def body(self, seq: int) -> bytes | None:
        """The stored JSON of one version, by the seq a reader's query gave out."""

        def load(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT json FROM objects WHERE seq = ?", (seq,)).fetchone()
            return bytes(row[0]) if row else None

        return await self._db.run(load)

    async def latest(self, collection: str, count: int) -> list[bytes]:
        """The last `count` object versions added to `collection`, newest first."""

        def load(conn: sqlite3.Connection) -> list[bytes]:
            rows = conn.execute(
                "SELECT json FROM objects WHERE collection = ? ORDER BY seq DESC LIMIT ?",
                (collection, count),
            )
            return [r[0] for r in rows]

        return await self._db.run(load)

    async def status(self, status_id: str) -> tuple[str, bytes] | None:
        """(owning member, status document JSON) or None."""

        def load(conn: sqlite3.Connection) -> tuple[str, bytes] | None:
            row = conn.execute(
                "SELECT member, doc FROM statuses WHERE id = ?", (status_id,)
            ).fetchone()
            return (row[0], row[1]) if row else None

        return await self._db.run(load)

    async def decisions(self, object_id: str, sender: str) -> list[bytes]:
        """The audit records of `sender`'s routing decisions on `object_id`, oldest first."""

        def load(conn: sqlite3.Connection) -> list[bytes]:
            rows = conn.execute(
                "SELECT record FROM audit WHERE object_id = ? AND sender = ? ORDER BY seq",
                (object_id, sender),
            )
            return [r[0] for r in rows]

        return await self._db.run(load)
