"""Store-and-forward: submissions go to a queue on disk first and leave when the link is up.

The queue is a SQLite file in the queue folder (WAL, synchronous=FULL: an object the queue
took survives the client being killed or the machine losing power). An object version
(id, version) enters at most once, and once the hub has given its outcome it is written in
the journal and never sent again. A client killed after a POST but before it wrote the
status id down sends those objects once more; the hub keeps one copy of a version it
already has, so that retry is safe.

Requests are sized to the link as the client measured it (HubClient.request_bytes), and
that rate is kept in the queue for the next run. `cirt-hub queue status|list|retry` reads
the queue and its journal, and sends refused objects again once they may pass.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from connectors.client.bundles import chunks, version
from connectors.client.http import HubClient, Outcome, Refused, refused
from hub.i18n.cli import say

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queued (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    version TEXT NOT NULL,
    body BLOB NOT NULL,
    status_id TEXT,  -- set once a POST of it was answered 202
    UNIQUE (id, version)
);
CREATE TABLE IF NOT EXISTS journal (
    id TEXT NOT NULL,
    version TEXT NOT NULL,
    ok INTEGER NOT NULL,
    message TEXT NOT NULL,
    body BLOB,  -- kept for refused objects only, so they can be fixed and sent again
    PRIMARY KEY (id, version)
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Columns added since the first version: a queue made by it gets them when opened.
_ADDED_COLUMNS = {"journal": {"settled_at": "TEXT"}}
DISCOVERY_FILE = "discovery.json"


@dataclass(frozen=True)
class Totals:
    """The whole queue: what waits, what was sent and awaits its outcome, and the journal."""

    queued: int
    awaiting: int
    accepted: int
    refused: int

    @property
    def total(self) -> int:
        return self.queued + self.awaiting + self.accepted + self.refused


@dataclass(frozen=True)
class Entry:
    """One object version in the queue or the journal, for `cirt-hub queue list`."""

    id: str
    version: str
    state: str  # queued, sent (awaiting its outcome), accepted or refused
    message: str
    when: str


@dataclass(frozen=True)
class Enqueued:
    """What `put` did with some objects."""

    added: int
    already_queued_or_sent: int


class QueueBusy(Exception):
    """Another process is sending this queue now; what was added will go with it."""


class SubmitQueue:
    """The on-disk queue in `folder` (made if missing, owner-only)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.folder = folder
        self._db = sqlite3.connect(folder / "queue.sqlite", isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        for table, columns in _ADDED_COLUMNS.items():
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def put(self, objects: Iterable[Mapping[str, Any]]) -> Enqueued:
        """Queue the object versions not queued or sent before, durably, in one transaction."""
        added = skipped = 0
        with self._transaction() as db:
            for obj in objects:
                key = (str(obj["id"]), version(obj))
                if db.execute("SELECT 1 FROM journal WHERE id = ? AND version = ?", key).fetchone():
                    skipped += 1
                    continue
                cursor = db.execute(
                    "INSERT OR IGNORE INTO queued (id, version, body) VALUES (?, ?, ?)",
                    (*key, orjson.dumps(obj)),
                )
                added += cursor.rowcount
                skipped += 1 - cursor.rowcount
        return Enqueued(added, skipped)

    def pending(self) -> int:
        count: int = self._db.execute("SELECT count(*) FROM queued").fetchone()[0]
        return count

    def journal(self) -> list[Outcome]:
        """Every outcome the hub gave, in no particular order."""
        rows = self._db.execute("SELECT id, version, ok, message FROM journal").fetchall()
        return [Outcome(i, v, bool(ok), m) for i, v, ok, m in rows]

    def totals(self) -> Totals:
        queued, awaiting = self._db.execute(
            "SELECT count(*) - count(status_id), count(status_id) FROM queued"
        ).fetchone()
        accepted, refused_ = self._db.execute(
            "SELECT coalesce(sum(ok), 0), count(*) - coalesce(sum(ok), 0) FROM journal"
        ).fetchone()
        return Totals(queued, awaiting, accepted, refused_)

    def entries(self, states: Iterable[str]) -> Iterator[Entry]:
        """The object versions in these states (queued, sent, accepted, refused), oldest
        first within each."""
        wanted = set(states)
        if wanted & {"queued", "sent"}:
            for i, v, status_id in self._db.execute(
                "SELECT id, version, status_id FROM queued ORDER BY seq"
            ):
                state = "sent" if status_id else "queued"
                if state in wanted:
                    yield Entry(i, v, state, f"status {status_id}" if status_id else "", "")
        if wanted & {"accepted", "refused"}:
            for i, v, ok, message, when in self._db.execute(
                "SELECT id, version, ok, message, coalesce(settled_at, '') FROM journal"
                " ORDER BY settled_at, rowid"
            ):
                state = "accepted" if ok else "refused"
                if state in wanted:
                    yield Entry(i, v, state, message, when)

    def retry(self, ids: Iterable[str] = ()) -> tuple[int, int]:
        """Queue again the refused objects (those with these ids, or all): (how many were
        queued again, how many refused ones could not be, their content not kept)."""
        only = set(ids)
        again = lost = 0
        with self._transaction() as db:
            rows = db.execute("SELECT id, version, body FROM journal WHERE ok = 0").fetchall()
            for i, v, body in rows:
                if only and i not in only:
                    continue
                if body is None:
                    lost += 1
                    continue
                db.execute(
                    "INSERT OR IGNORE INTO queued (id, version, body) VALUES (?, ?, ?)",
                    (i, v, body),
                )
                db.execute("DELETE FROM journal WHERE id = ? AND version = ?", (i, v))
                again += 1
        return again, lost

    def meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_meta(self, name: str, value: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    @contextmanager
    def sender(self) -> Iterator[None]:
        """Held while sending: one sender per queue, across processes."""
        fd = os.open(self.folder / "send.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise QueueBusy(
                    say(
                        "another process is sending %(folder)s; the queued objects go with it",
                        folder=self.folder,
                    )
                ) from exc
            yield
        finally:
            os.close(fd)

    async def drain(
        self, client: HubClient, report: Callable[[list[Outcome]], None] = lambda _: None
    ) -> int:
        """Send everything queued, oldest first, until the queue is empty; how many outcomes.

        Retries for as long as the client's backoff allows; a request the hub refuses as a
        whole (say, one object over max_content_length) puts its objects in the journal as
        refused, with the hub's words, instead of blocking the queue behind them.
        """
        done = 0
        with self.sender():
            if client.link.rate is None and self.meta("rate"):
                client.link.rate = float(self.meta("rate") or 0) or None
            await self._resume(client, report)
            cap = client.max_objects
            while True:
                rows = self._db.execute(
                    "SELECT seq, body FROM queued WHERE status_id IS NULL ORDER BY seq LIMIT ?",
                    (cap,),
                ).fetchall()
                if not rows:
                    return done + await self._resume(client, report)
                bodies = {seq: orjson.loads(body) for seq, body in rows}
                batch = next(chunks(list(bodies.values()), await client.request_bytes(), cap))
                seqs = list(bodies)[: len(batch)]
                try:
                    status = await client.post(batch)
                except Refused as exc:
                    if not exc.about_the_request:
                        raise  # the account or the hub is wrong, not what is queued
                    if exc.status == 413 and len(batch) > 1:
                        cap = max(1, len(batch) // 2)  # fewer per request, then try again
                        continue
                    done += self._settle(seqs, refused(batch, exc), report)
                    continue
                cap = client.max_objects
                self._mark_sent(seqs, status["id"])
                if client.link.rate:
                    self.set_meta("rate", f"{client.link.rate:.0f}")
                done += await self._finish(client, status["id"], report)

    def _mark_sent(self, seqs: list[int], status_id: str) -> None:
        with self._transaction() as db:
            db.executemany(
                "UPDATE queued SET status_id = ? WHERE seq = ?", [(status_id, s) for s in seqs]
            )

    async def _resume(self, client: HubClient, report: Callable[[list[Outcome]], None]) -> int:
        """Wait for the requests a previous run posted and did not see complete."""
        done = 0
        status_ids = [
            r[0]
            for r in self._db.execute(
                "SELECT DISTINCT status_id FROM queued WHERE status_id IS NOT NULL"
            ).fetchall()
        ]
        for status_id in status_ids:
            done += await self._finish(client, status_id, report)
        return done

    async def _finish(
        self, client: HubClient, status_id: str, report: Callable[[list[Outcome]], None]
    ) -> int:
        rows = self._db.execute(
            "SELECT seq, id, version FROM queued WHERE status_id = ?", (status_id,)
        ).fetchall()
        try:
            found = await client.outcomes_of(status_id, [(i, v) for _, i, v in rows])
        except Refused as exc:
            if exc.status != 404:
                raise
            # The hub does not know the request (its view was rebuilt): send it again.
            with self._transaction() as db:
                db.execute("UPDATE queued SET status_id = NULL WHERE status_id = ?", (status_id,))
            return 0
        return self._settle([seq for seq, _, _ in rows], found, report)

    def _settle(
        self, seqs: list[int], found: list[Outcome], report: Callable[[list[Outcome]], None]
    ) -> int:
        """Move objects from the queue to the journal with their outcomes, in one transaction."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._transaction() as db:
            for seq, outcome in zip(seqs, found, strict=True):
                body = None
                if not outcome.ok:
                    row = db.execute("SELECT body FROM queued WHERE seq = ?", (seq,)).fetchone()
                    body = row[0] if row else None
                db.execute(
                    "INSERT OR REPLACE INTO journal (id, version, ok, message, body, settled_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (outcome.id, outcome.version, int(outcome.ok), outcome.message, body, now),
                )
                db.execute("DELETE FROM queued WHERE seq = ?", (seq,))
        report(found)
        return len(found)
