"""What was delivered before, for routing that depends on it (revocations and references),
and who first published each object id, for the stages that let only its owner version it.

Built from the `decisions` topic (every node's routing decisions, in one order), and
brought up to the topic's end before each unit of work starts, so a revocation or a
reference routed anywhere sees every decision committed before its unit began. Held in
memory: a pipeline node reads the topic once at start, so a restarted or rebuilt node knows
as much as before.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Sequence

from hub.bus import Bus, Reader, read_to
from hub.collections import member_alias
from hub.model import Submission
from hub.records import DecisionRecord

MEMBER_PREFIX = member_alias("")
HUB = "(the hub)"  # the owner of what the hub publishes itself; never a member id (a slug)


class DeliveryHistory:
    def __init__(self, bus: Bus, topic: str, hub_feeds: Sequence[str] = ()) -> None:
        """`topic` holds the decisions; every record key on `hub_feeds` (the alerts feed) is
        the id of an object the hub published itself."""
        self._bus = bus
        self._topic = topic
        self._hub_feeds = frozenset(hub_feeds)
        self._reader: Reader | None = None
        # The pipeline's units record on their threads while catch_up() reads on the loop:
        # each change is a read-modify-write, made whole under this lock.
        self._lock = threading.Lock()
        self._received: dict[str, frozenset[str]] = {}
        # (object id, member) → accounts, where a delivery was limited to named accounts
        self._accounts: dict[tuple[str, str], tuple[str, ...]] = {}
        self._collections: dict[str, frozenset[str]] = {}
        # object id → the sender of the first decision on it, in the topic's one order
        self._owners: dict[str, str] = {}
        # First publications routed by this node's units, not read back from the topic yet:
        # the topic decides at the first catch-up after their unit ended (another node may
        # have committed first, or the unit never committed). Units of other members run
        # meanwhile, so an entry stays until its own unit is over (settled()).
        self._pending: dict[str, str] = {}
        self._settled: set[str] = set()

    def received(self, object_id: str) -> frozenset[str]:
        """The members that received (or are due to receive) any version of the object."""
        return self._received.get(object_id, frozenset())

    def accounts(self, object_id: str, member: str) -> tuple[str, ...]:
        return self._accounts.get((object_id, member), ())

    def collections(self, object_id: str) -> frozenset[str]:
        return self._collections.get(object_id, frozenset())

    def owner(self, object_id: str) -> str | None:
        """The member that first published the id (HUB for the hub's own); None if nobody."""
        return self._owners.get(object_id) or self._pending.get(object_id)

    def _add(
        self,
        object_id: str,
        members: Iterable[str],
        limited: Iterable[tuple[str, Sequence[str]]],
    ) -> None:
        found = self._received.get(object_id, frozenset())
        self._received[object_id] = found | frozenset(members)
        for collection, accounts in limited:
            found_in = self._collections.get(object_id, frozenset())
            self._collections[object_id] = found_in | {collection}
            if accounts and collection.startswith(MEMBER_PREFIX):
                key = (object_id, collection[len(MEMBER_PREFIX) :])
                self._accounts[key] = tuple(dict.fromkeys((*self.accounts(*key), *accounts)))

    def record_decision(self, decision: DecisionRecord) -> None:
        limited = ((p.collection, p.accounts) for p in decision.placements)
        object_id, sender = decision.object_id, decision.sender
        with self._lock:
            self._add(object_id, decision.allowed, limited)
            if sender is not None and object_id not in self._owners:
                self._owners[object_id] = sys.intern(sender)  # a few senders, millions of ids

    def record(self, submission: Submission) -> None:
        """A submission just routed: the units of this node that start later must see it."""
        with self._lock:
            for item in submission.items:
                if item.accepted:
                    allowed = (v.member for v in item.verdicts if v.allowed)
                    limited = ((d.collection, d.accounts) for d in item.deliveries)
                    self._add(item.id, allowed, limited)
                    if item.id not in self._owners:
                        self._pending.setdefault(item.id, submission.member)

    def settled(self, submissions: Iterable[Submission]) -> None:
        """The unit that routed `submissions` is over (committed, or not): the next catch-up
        reads what became of their first publications and forgets them as pending."""
        with self._lock:
            for submission in submissions:
                self._settled.update(
                    i.id
                    for i in submission.items
                    if i.accepted and self._pending.get(i.id) == submission.member
                )

    async def catch_up(self) -> None:
        """Read every decision (and every object the hub published) committed so far."""
        topics = [self._topic, *sorted(self._hub_feeds)]
        with self._lock:
            settled = set(self._settled)  # units over before the topic's ends are read
        ends = await self._bus.end_offsets(topics)
        if self._reader is None:
            self._reader = self._bus.reader(topics, {tp: 0 for tp in ends})
            await self._reader.start()
        for record in await read_to(self._reader, ends):
            if record.topic in self._hub_feeds:
                if record.key:
                    with self._lock:
                        self._owners[record.key.decode(errors="replace")] = HUB
            else:
                self.record_decision(DecisionRecord.from_record(record))
        # What this node's units that are over routed is on the topic now, in its place in
        # the one order, or was never committed (a rebalance): either way the topic says.
        # Units still in the works keep their first publications pending.
        with self._lock:
            for object_id in settled:
                self._pending.pop(object_id, None)
            self._settled -= settled

    async def stop(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.stop()
