"""Reachability checks: does each member's 24/7 contact answer, and how fast.

An operator starts a check; every member gets it: each of its points of contact a one-time
link (a random token, only its SHA-256 kept, expiring with the check), and its read accounts
a banner in the console. The first acknowledgement of a member, by link or console, is its
answer: who answered, by which way, and when. The hub keeps checks and answers on the bus
(`<prefix>reachability`, one partition, kept for ever), so every API node sees the same
checks, an answer may reach any node, and a restart keeps them; each node's `Book` follows
the topic from where it last read.

Sending the links is a seam (`Courier`): without e-mail delivery the console's banner is
the message, and an operator may ask for the links to send them by hand.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson

from hub.bus import Bus, BusError, Message, Position, TopicPartition, read_to
from hub.errors import Unavailable
from hub.federation import Federation
from hub.stix import timestamps

DEFAULT_OVERDUE_DAYS = 3.0
DEFAULT_EXPIRES_DAYS = 7.0
MAX_DAYS = 90.0
REFRESH_SECONDS = 1.0
KEPT_CHECKS = 50  # the latest checks a node keeps in memory (the topic keeps them all)


def token_hash(token: str) -> str:
    """What the hub keeps of a link's token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Invitation:
    """One contact's one-time link (the token in clear exists only until it is sent)."""

    check: str
    member: str
    contact: str  # the contact's e-mail address
    token: str


@dataclass(frozen=True)
class Answer:
    """A member's acknowledgement of a check."""

    member: str
    by: str  # the contact's e-mail (link) or the console account's username
    via: str  # "link" or "console"
    at: datetime

    @property
    def at_stamp(self) -> str:
        return timestamps.format_micros(self.at)


@dataclass
class Check:
    """One reachability check, as the bus records it, with the answers so far."""

    id: str
    started: datetime
    by: str
    overdue_days: float
    expires: datetime
    members: tuple[str, ...]
    tokens: dict[str, tuple[str, str]]  # token hash → (member, contact e-mail)
    answers: dict[str, Answer] = field(default_factory=dict)  # the first, per member

    @property
    def started_stamp(self) -> str:
        return timestamps.format_micros(self.started)

    @property
    def expires_stamp(self) -> str:
        return timestamps.format_micros(self.expires)

    def open_at(self, now: datetime) -> bool:
        return now < self.expires

    def overdue(self, now: datetime) -> list[str]:
        """Members that have not answered after the check's `overdue_days`."""
        if now - self.started < timedelta(days=self.overdue_days):
            return []
        return [m for m in self.members if m not in self.answers]


def _record(doc: Mapping[str, Any]) -> bytes:
    return orjson.dumps(doc)


def new_check(
    federation: Federation,
    by: str,
    now: datetime,
    overdue_days: float = DEFAULT_OVERDUE_DAYS,
    expires_days: float = DEFAULT_EXPIRES_DAYS,
) -> tuple[dict[str, Any], list[Invitation]]:
    """A check of every member (the record to publish) and each contact's invitation."""
    check_id = f"check-{uuid.uuid4()}"
    invitations = [
        Invitation(check_id, m.id, c.email, secrets.token_urlsafe(32))
        for m in federation.members
        for c in m.contacts
    ]
    doc = {
        "kind": "check",
        "id": check_id,
        "started": timestamps.format_micros(now),
        "by": by,
        "overdue_days": overdue_days,
        "expires": timestamps.format_micros(now + timedelta(days=expires_days)),
        "members": [m.id for m in federation.members],
        "tokens": [
            {"member": i.member, "contact": i.contact, "hash": token_hash(i.token)}
            for i in invitations
        ],
    }
    return doc, invitations


def answer_record(check: str, member: str, by: str, via: str, now: datetime) -> dict[str, Any]:
    return {
        "kind": "answer",
        "check": check,
        "member": member,
        "by": by,
        "via": via,
        "at": timestamps.format_micros(now),
    }


class Courier(Protocol):
    """Sends each contact its link (e-mail, when the hub has it); the console needs none."""

    async def send(self, invitations: Iterable[Invitation], link_base: str) -> int:
        """Send what it can; how many it sent."""


class ConsoleOnly:
    """No e-mail: members learn of a check from the console's banner."""

    async def send(self, invitations: Iterable[Invitation], link_base: str) -> int:
        return 0


class Book:
    """This node's copy of the checks on the bus, read on from where it stopped."""

    def __init__(self, bus: Bus, topic: str) -> None:
        self._bus, self._topic = bus, topic
        self._position: dict[TopicPartition, int] = {}
        self._checks: dict[str, Check] = {}
        self._tokens: dict[str, str] = {}  # token hash → check id
        self._lock = asyncio.Lock()
        self._looked = -REFRESH_SECONDS  # monotonic time of the last look at the bus

    async def refresh(self, written: Position | None = None) -> None:
        """Read what the topic gained since the last refresh (at least up to `written`, which
        a broker's offsets may not show yet right after it was written); 503 when the bus
        does not answer."""
        try:
            await self._refresh(written)
        except BusError as exc:
            raise Unavailable(f"the hub's bus does not answer: {exc}", retry_after=5) from exc

    async def _refresh(self, written: Position | None) -> None:
        async with self._lock:
            # At most one look at the bus a second however many pages ask (a link's page
            # needs no account): answers written on another node show within a second.
            now = time.monotonic()
            if written is None and now - self._looked < REFRESH_SECONDS:
                return
            self._looked = now
            ends = await self._bus.end_offsets([self._topic])
            if written is not None:
                tp = TopicPartition(written.topic, written.partition)
                ends[tp] = max(ends.get(tp, 0), written.offset + 1)
            if all(self._position.get(tp, 0) >= end for tp, end in ends.items()):
                return
            start = {tp: self._position.get(tp, 0) for tp in ends}
            reader = self._bus.reader([self._topic], start)
            await reader.start()
            try:
                records = await read_to(reader, ends, timeout=10)
            finally:
                await reader.stop()
            for record in records:
                if record.offset < ends.get(record.tp, 0):
                    self._apply(orjson.loads(record.value))
            self._position = dict(ends)

    def _apply(self, doc: Mapping[str, Any]) -> None:
        if doc.get("kind") == "check":
            check = Check(
                id=str(doc["id"]),
                started=timestamps.parse(str(doc["started"])),
                by=str(doc["by"]),
                overdue_days=float(doc["overdue_days"]),
                expires=timestamps.parse(str(doc["expires"])),
                members=tuple(doc["members"]),
                tokens={t["hash"]: (t["member"], t["contact"]) for t in doc["tokens"]},
            )
            self._checks[check.id] = check
            self._tokens.update(dict.fromkeys(check.tokens, check.id))
            while len(self._checks) > KEPT_CHECKS:
                oldest = self._checks.pop(next(iter(self._checks)))
                for token in oldest.tokens:
                    self._tokens.pop(token, None)
        elif doc.get("kind") == "answer":
            found = self._checks.get(str(doc["check"]))
            member = str(doc["member"])
            if found is not None and member in found.members:
                answer = Answer(
                    member, str(doc["by"]), str(doc["via"]), timestamps.parse(doc["at"])
                )
                found.answers.setdefault(member, answer)

    async def publish(self, doc: Mapping[str, Any]) -> None:
        try:
            [written] = await self._bus.publish([Message(self._topic, _record(doc))])
        except BusError as exc:
            raise Unavailable(f"the hub's bus does not answer: {exc}", retry_after=5) from exc
        await self.refresh(written)

    def check(self, check_id: str) -> Check | None:
        return self._checks.get(check_id)

    def latest(self) -> Check | None:
        return next(reversed(self._checks.values()), None)

    def by_token(self, token: str) -> tuple[Check, str, str] | None:
        """The check, member and contact a link's token is for; None if unknown."""
        digest = token_hash(token)
        check = self._checks.get(self._tokens.get(digest, ""))
        if check is None:
            return None
        member, contact = check.tokens[digest]
        return check, member, contact

    def pending_for(self, member: str, now: datetime) -> Check | None:
        """The latest open check the member has not answered."""
        check = self.latest()
        if check is None or not check.open_at(now) or member not in check.members:
            return None
        return None if member in check.answers else check
