"""What was delivered before, for routing that depends on it: revocations and references.

Built from the `decisions` topic (every node's routing decisions, in one order), and
brought up to the topic's end before each batch, so a revocation or a reference routed
anywhere sees every decision committed before its batch began. Held in memory: a pipeline
node reads the topic once at start.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from hub.bus import Bus, Reader, read_to
from hub.collections import member_alias
from hub.pipeline.submission import Submission

MEMBER_PREFIX = member_alias("")


class DeliveryHistory:
    def __init__(self, bus: Bus, topic: str) -> None:
        self._bus = bus
        self._topic = topic
        self._reader: Reader | None = None
        # The pipeline's units record on their threads while catch_up() reads on the loop:
        # each change is a read-modify-write of a set, made whole under this lock.
        self._lock = threading.Lock()
        self._received: dict[str, frozenset[str]] = {}
        # (object id, member) → accounts, where a delivery was limited to named accounts
        self._accounts: dict[tuple[str, str], tuple[str, ...]] = {}
        self._collections: dict[str, frozenset[str]] = {}

    def received(self, object_id: str) -> frozenset[str]:
        """The members that received (or are due to receive) any version of the object."""
        return self._received.get(object_id, frozenset())

    def accounts(self, object_id: str, member: str) -> tuple[str, ...]:
        return self._accounts.get((object_id, member), ())

    def collections(self, object_id: str) -> frozenset[str]:
        return self._collections.get(object_id, frozenset())

    def _add(
        self, object_id: str, members: Iterable[str], limited: Iterable[tuple[str, list[str]]]
    ) -> None:
        found = self._received.get(object_id, frozenset())
        self._received[object_id] = found | frozenset(members)
        for collection, accounts in limited:
            found_in = self._collections.get(object_id, frozenset())
            self._collections[object_id] = found_in | {collection}
            if accounts and collection.startswith(MEMBER_PREFIX):
                key = (object_id, collection[len(MEMBER_PREFIX) :])
                self._accounts[key] = tuple(dict.fromkeys((*self.accounts(*key), *accounts)))

    def record_decision(self, decision: Mapping[str, Any]) -> None:
        allowed = (v["member"] for v in decision.get("verdicts", []) if v.get("allowed"))
        limited = ((d["collection"], d["accounts"]) for d in decision.get("deliveries", []))
        with self._lock:
            self._add(str(decision.get("object_id")), allowed, limited)

    def record(self, submission: Submission) -> None:
        """A submission just routed: later ones (of any unit of this node) must see it."""
        with self._lock:
            for item in submission.items:
                if item.accepted:
                    allowed = (v.member for v in item.verdicts if v.allowed)
                    limited = ((d.collection, list(d.accounts)) for d in item.deliveries)
                    self._add(item.id, allowed, limited)

    async def catch_up(self) -> None:
        """Read every decision committed so far."""
        ends = await self._bus.end_offsets([self._topic])
        if self._reader is None:
            self._reader = self._bus.reader([self._topic], {tp: 0 for tp in ends})
            await self._reader.start()
        for record in await read_to(self._reader, ends):
            self.record_decision(orjson.loads(record.value))

    async def stop(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.stop()
