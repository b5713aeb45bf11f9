"""Subscriptions and the outbox, in one SQLite file in the node's data dir.

A notification is a row of the outbox, written in the same transaction that moves its
subscription's cursor past the object: a restart finds either both or neither, so nothing
is lost or queued twice. A row is marked delivered as soon as its receiver acknowledged it,
and never attempted again after that.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson

from hub.sqlite import SqliteThread, in_transaction
from hub.stix.markings import Tlp

KINDS = ("alerts", "alert", "collection")
CHANNELS = ("email", "webhook")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,          -- the alert id, or the collection's alias
    types TEXT NOT NULL,           -- JSON list; empty: every type
    min_confidence INTEGER,
    max_tlp INTEGER,
    value TEXT,                    -- a value to look up (hub.store.lookup_values), normalised
    value_kind TEXT,               -- its kind as GET /api/v1/lookup names it
    email TEXT,
    webhook TEXT,
    created TEXT NOT NULL,
    after_seq INTEGER NOT NULL,    -- the view's seq this subscription has been told up to
    -- The object (id, version) at after_seq: a rebuilt view numbers its rows anew, and
    -- the subscription goes on from where this object is then.
    anchor_id TEXT,
    anchor_version TEXT
);
CREATE INDEX IF NOT EXISTS subscriptions_account ON subscriptions (account);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription TEXT NOT NULL,
    account TEXT NOT NULL,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    collection TEXT NOT NULL,
    object_id TEXT NOT NULL,
    version TEXT NOT NULL,         -- '' for "a new alert", told once whatever its versions
    tlp INTEGER,
    body BLOB NOT NULL,
    due REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered REAL,
    failed REAL,
    last_error TEXT,
    UNIQUE (subscription, channel, object_id, version)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (delivered, failed, channel, due);
"""


def tlp_label(level: int) -> str:
    """The TLP label as FIRST writes it ("TLP:AMBER+STRICT"), in every language."""
    return "TLP:" + Tlp(level).name.replace("_", "+")


@dataclass(frozen=True)
class Anchor:
    """The last object a subscription was told of (or the newest when it was made), found
    again in the view whatever number it has there."""

    id: str
    version: str | None  # `modified`, else `created`; None for objects with neither


@dataclass(frozen=True)
class Subscription:
    """What one account asked to be told, and where."""

    id: str
    account: str
    kind: str  # "alerts": new alerts; "alert": changes to one; "collection": new objects
    target: str  # the alert id or collection alias ("alerts" for kind "alerts")
    types: tuple[str, ...] = ()
    min_confidence: int | None = None
    max_tlp: int | None = None
    value: str | None = None  # only objects a look-up of this value finds
    value_kind: str | None = None
    email: str | None = None
    webhook: str | None = None
    created: str = ""
    after_seq: int = 0
    anchor: Anchor | None = None

    def public(self) -> dict[str, object]:
        """As the API shows it to its owner."""
        shown: dict[str, object] = {"id": self.id, "kind": self.kind, "created": self.created}
        if self.kind == "alert":
            shown["alert"] = self.target
        if self.kind == "collection":
            shown["collection"] = self.target
            shown["types"] = list(self.types)
            if self.min_confidence is not None:
                shown["min_confidence"] = self.min_confidence
            if self.max_tlp is not None:
                shown["max_tlp"] = tlp_label(self.max_tlp)
            if self.value is not None:
                shown["value"] = self.value
                shown["value_kind"] = self.value_kind
        if self.email:
            shown["email"] = self.email
        if self.webhook:
            shown["webhook"] = self.webhook
        return shown


@dataclass(frozen=True)
class Pending:
    """One notification to deliver (or being retried)."""

    id: int
    subscription: str
    account: str
    channel: str
    address: str
    collection: str
    object_id: str
    version: str
    tlp: int | None
    body: bytes
    attempts: int


@dataclass(frozen=True)
class Due:
    """A notification the scan found: to queue for `subscription` on `channel`."""

    channel: str
    address: str
    collection: str
    object_id: str
    version: str
    tlp: int | None
    body: bytes
    due: float


def _subscription(row: tuple[object, ...]) -> Subscription:
    types = orjson.loads(str(row[4]))
    return Subscription(
        id=str(row[0]),
        account=str(row[1]),
        kind=str(row[2]),
        target=str(row[3]),
        types=tuple(types),
        min_confidence=row[5] if isinstance(row[5], int) else None,
        max_tlp=row[6] if isinstance(row[6], int) else None,
        email=str(row[7]) if row[7] else None,
        webhook=str(row[8]) if row[8] else None,
        created=str(row[9]),
        after_seq=int(str(row[10])),
        anchor=Anchor(str(row[11]), _text(row[12])) if row[11] else None,
        value=_text(row[13]),
        value_kind=_text(row[14]),
    )


def _add_value_columns(conn: sqlite3.Connection) -> None:
    """A file made before subscriptions took a value gets its columns (none: no value)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(subscriptions)")}
    for column in ("value", "value_kind"):
        if column not in have:
            conn.execute(f"ALTER TABLE subscriptions ADD COLUMN {column} TEXT")


def _text(value: object) -> str | None:
    return str(value) if value is not None else None


def _anchor_values(anchor: Anchor | None) -> tuple[str | None, str | None]:
    return (anchor.id, anchor.version) if anchor else (None, None)


_COLUMNS = (
    "id, account, kind, target, types, min_confidence, max_tlp, email, webhook, created, after_seq,"
    " anchor_id, anchor_version, value, value_kind"
)
_PENDING = (
    "id, subscription, account, channel, address, collection, object_id, version, tlp, body,"
    " attempts"
)


class NotifyStore:
    """The node's subscriptions and outbox."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteThread(path, name="notify", schema=_SCHEMA)

    async def open(self) -> None:
        await self._db.start()
        await self._db.run(_add_value_columns)

    async def close(self) -> None:
        await self._db.stop()

    async def add(self, subscription: Subscription, limit: int) -> Subscription | None:
        """Store a new subscription with a fresh id; None when its account has `limit`."""
        made = Subscription(**{**subscription.__dict__, "id": f"subscription--{uuid.uuid4()}"})

        def body(conn: sqlite3.Connection) -> Subscription | None:
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM subscriptions WHERE account = ?", (made.account,)
            ).fetchone()
            if count >= limit:
                return None
            conn.execute(
                f"INSERT INTO subscriptions ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    made.id,
                    made.account,
                    made.kind,
                    made.target,
                    orjson.dumps(list(made.types)).decode(),
                    made.min_confidence,
                    made.max_tlp,
                    made.email,
                    made.webhook,
                    made.created,
                    made.after_seq,
                    *_anchor_values(made.anchor),
                    made.value,
                    made.value_kind,
                ),
            )
            return made

        return await self._db.run(lambda conn: in_transaction(conn, lambda: body(conn)))

    async def of_account(self, account: str) -> list[Subscription]:
        def load(conn: sqlite3.Connection) -> list[Subscription]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM subscriptions WHERE account = ? ORDER BY created, id",
                (account,),
            ).fetchall()
            return [_subscription(r) for r in rows]

        return await self._db.run(load)

    async def every(self) -> list[Subscription]:
        def load(conn: sqlite3.Connection) -> list[Subscription]:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM subscriptions ORDER BY id").fetchall()
            return [_subscription(r) for r in rows]

        return await self._db.run(load)

    async def remove(self, account: str, subscription_id: str) -> bool:
        """Delete the account's own subscription and what it still had to deliver."""

        def body(conn: sqlite3.Connection) -> bool:
            gone = conn.execute(
                "DELETE FROM subscriptions WHERE id = ? AND account = ?", (subscription_id, account)
            ).rowcount
            if gone:
                conn.execute(
                    "DELETE FROM outbox WHERE subscription = ? AND delivered IS NULL",
                    (subscription_id,),
                )
            return bool(gone)

        return await self._db.run(lambda conn: in_transaction(conn, lambda: body(conn)))

    async def queue(
        self, subscription: Subscription, due: list[Due], after_seq: int, anchor: Anchor
    ) -> int:
        """Queue `due` and move the subscription's cursor, at once; how many rows are new."""
        account = subscription.account

        def body(conn: sqlite3.Connection) -> int:
            moved = conn.execute(
                "UPDATE subscriptions SET after_seq = ?, anchor_id = ?, anchor_version = ?"
                " WHERE id = ? AND after_seq = ?",
                (after_seq, *_anchor_values(anchor), subscription.id, subscription.after_seq),
            ).rowcount
            if not moved:
                return 0  # deleted meanwhile, or another scan moved it: queue nothing
            added = 0
            for d in due:
                added += conn.execute(
                    "INSERT OR IGNORE INTO outbox (subscription, account, channel, address,"
                    " collection, object_id, version, tlp, body, due)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        subscription.id,
                        account,
                        d.channel,
                        d.address,
                        d.collection,
                        d.object_id,
                        d.version,
                        d.tlp,
                        d.body,
                        d.due,
                    ),
                ).rowcount
            return added

        return await self._db.run(lambda conn: in_transaction(conn, lambda: body(conn)))

    async def due(self, channel: str, now: float, limit: int) -> list[Pending]:
        """Undelivered rows of `channel` due by `now`, oldest first."""

        def load(conn: sqlite3.Connection) -> list[Pending]:
            rows = conn.execute(
                f"SELECT {_PENDING} FROM outbox WHERE delivered IS NULL AND failed IS NULL"
                " AND channel = ? AND due <= ? ORDER BY id LIMIT ?",
                (channel, now, limit),
            ).fetchall()
            return [Pending(*row) for row in rows]

        return await self._db.run(load)

    async def next_due(self, channel: str) -> float | None:
        """When the next undelivered row of `channel` falls due; None when there is none."""

        def load(conn: sqlite3.Connection) -> float | None:
            row = conn.execute(
                "SELECT MIN(due) FROM outbox WHERE delivered IS NULL AND failed IS NULL"
                " AND channel = ?",
                (channel,),
            ).fetchone()
            return None if row[0] is None else float(row[0])

        return await self._db.run(load)

    async def delivered(self, ids: list[int]) -> None:
        now = time.time()

        def body(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE outbox SET delivered = ?, last_error = NULL WHERE id = ?",
                [(now, i) for i in ids],
            )

        await self._db.run(lambda conn: in_transaction(conn, lambda: body(conn)))

    async def retry(self, ids: list[int], at: float, error: str, give_up: bool) -> None:
        """Another attempt at `at`, or none (`give_up`); the error kept for the operator."""
        failed = time.time() if give_up else None

        def body(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE outbox SET attempts = attempts + 1, due = ?, failed = ?,"
                " last_error = ? WHERE id = ?",
                [(at, failed, error[:500], i) for i in ids],
            )

        await self._db.run(lambda conn: in_transaction(conn, lambda: body(conn)))

    async def drop(self, ids: list[int]) -> None:
        """Forget undelivered rows whose subscriber may no longer read them."""

        def body(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

        await self._db.run(lambda conn: in_transaction(conn, lambda: body(conn)))

    async def prune(self, before: float) -> int:
        """Forget rows delivered, or given up, before `before` (epoch seconds)."""

        def body(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "DELETE FROM outbox WHERE delivered < ? OR failed < ?", (before, before)
            ).rowcount

        return await self._db.run(lambda conn: in_transaction(conn, lambda: body(conn)))

    async def pending(self) -> dict[str, int]:
        """Undelivered rows per channel (failed ones apart, under "<channel>-failed")."""

        def load(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute(
                "SELECT channel, failed IS NOT NULL, COUNT(*) FROM outbox"
                " WHERE delivered IS NULL GROUP BY 1, 2"
            ).fetchall()
            return {(c + "-failed" if f else c): n for c, f, n in rows}

        return await self._db.run(load)
