"""`GET /api/v1/explain/{object-id}`: why a sender's own object went where it went.

The answer is the audit chain's records of the routing decisions on that object (one per
version routed): per member, allowed or denied and the rule that decided, the collections
it was delivered to, and the policy version in force. Only the sending member's accounts
see them, and only the records of its own submissions; for anyone else the object has no
explanation here (404, as for a typo).

A sender sees its own routing, not what others sent. A revocation reaches whoever had any
earlier version of the object id, and another member may have sent one under the same id:
where a decision rests on that (members, feeds or TLP:RED accounts none of the sender's
own earlier versions reached), the sender is shown what its own rules decided instead.
Likewise where the object refers to objects other members sent (a note about an indicator
it received): whether a recipient held those decided what it got, so the sender is shown
the outcome on its own terms, and not where the object went.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from hub.api.access import caller
from hub.api.keys import COLLECTIONS, VIEW
from hub.collections import PUBLIC, Collection, member_alias, region_alias
from hub.errors import BadRequest, NotFound

RECEIVE_RULES = "sharing.receive"  # a recipient's own filter (its types, regions, confidence)
REVOCATION = "revocation"
_STIX_ID = re.compile(r"[a-z0-9][a-z0-9-]*--[0-9a-fA-F-]{36}")
# The rules that put an object of that level in a shared feed at all.
_FEED_RULES = {PUBLIC: "tlp.clear", region_alias(""): "sharing.recipients.green"}
# Shown for a revocation verdict recorded before decisions kept what the rules said.
_DEPENDS_NOTE = (
    " (on your own terms: the object refers to objects other members sent, so what this "
    "member received also depends on whether it had those, which is theirs to tell)"
)
_RULES_DENIED = {"allowed": False, "rule": "sharing", "reason": "not a recipient of the sender"}


async def explain(request: web.Request) -> web.Response:
    account = await caller(request)
    object_id = request.match_info["object_id"]
    if not _STIX_ID.fullmatch(object_id):
        raise BadRequest(f"{object_id!r} is not a STIX identifier")
    member = account.member
    records = [] if member is None else await request.app[VIEW].decisions(object_id, member)
    if not records:
        raise NotFound(f"no routing decision on {object_id} is visible to {account.username!r}")
    collections = request.app[COLLECTIONS]
    own = _OwnRouting(member or "", collections)
    decisions = [own.shown(orjson.loads(r)) for r in records]
    body = orjson.dumps({"object_id": object_id, "decisions": decisions})
    return web.Response(body=body, content_type="application/json")


@dataclass
class _OwnRouting:
    """What the sender's own decisions on one object told it so far, oldest first."""

    sender: str
    collections: Mapping[str, Collection]
    members: set[str] = field(default_factory=set)  # members its versions reached
    feeds: set[str] = field(default_factory=set)  # collections its versions went to
    accounts: dict[str, set[str]] = field(default_factory=dict)  # member → RED accounts

    def shown(self, record: dict[str, Any]) -> dict[str, Any]:
        """`record` as its sender may see it; what it shows is then known for later ones."""
        hidden: set[str] = set()
        verdicts = []
        masked = False
        for verdict in record.get("verdicts", []):
            member = str(verdict.get("member"))
            if "own_rules" in verdict:
                # The outcome hung on objects other members sent (the object refers to
                # them): shown on the sender's own terms, and where it went is not shown,
                # or the sender would learn who holds those objects.
                masked = True
                hidden.add(member)
                terms = verdict["own_rules"]
                verdict = {**terms, "reason": f"{terms.get('reason', '')}{_DEPENDS_NOTE}"}
            revoked = verdict.get("rule") == REVOCATION or "overridden" in verdict
            if revoked and member not in self.members | {self.sender}:
                # Reached through someone else's earlier version: the sender's rules denied it.
                hidden.add(member)
                verdict = {"member": member, **(verdict.get("overridden") or _RULES_DENIED)}
            verdict = {k: v for k, v in verdict.items() if k not in ("overridden", "own_rules")}
            if str(verdict.get("rule", "")).startswith(RECEIVE_RULES):
                # A recipient's own filter is its business: the sender learns only that it
                # declined, not what it says.
                verdict = {**verdict, "rule": RECEIVE_RULES, "reason": "the recipient's own filter"}
            verdicts.append(verdict)
        by_member = {str(v["member"]): v for v in verdicts}
        deliveries = [
            d
            for d in (self._delivery(d, by_member, hidden) for d in record.get("deliveries", []))
            if d is not None and (not masked or d.get("collection") == member_alias(self.sender))
        ]
        for v in verdicts:
            if v.get("allowed"):
                self.members.add(str(v["member"]))
        for d in deliveries:
            self.feeds.add(d["collection"])
            owner = self._member_of(d["collection"])
            if owner is not None and d.get("accounts"):
                self.accounts.setdefault(owner, set()).update(d["accounts"])
        return {**record, "verdicts": verdicts, "deliveries": deliveries}

    def _member_of(self, collection: str) -> str | None:
        prefix = member_alias("")
        return collection[len(prefix) :] if collection.startswith(prefix) else None

    def _delivery(
        self, delivery: dict[str, Any], verdicts: Mapping[str, dict[str, Any]], hidden: set[str]
    ) -> dict[str, Any] | None:
        collection = str(delivery.get("collection"))
        member = self._member_of(collection)
        if member is not None:
            if member in hidden:
                return None
            verdict = verdicts.get(member, {})
            if verdict.get("rule") == REVOCATION and delivery.get("accounts"):
                # Limited to the accounts earlier versions reached: only the sender's own.
                known = self.accounts.get(member, set())
                delivery = {**delivery, "accounts": [a for a in delivery["accounts"] if a in known]}
            return delivery
        if collection in self.feeds or self._ruled_feed(collection, verdicts):
            return delivery
        return None

    def _ruled_feed(self, collection: str, verdicts: Mapping[str, dict[str, Any]]) -> bool:
        """A shared feed the sender's own rules account for: the object's level puts it in
        such a feed, and every other reader of it was allowed by those rules."""
        kind = PUBLIC if collection == PUBLIC else region_alias("")
        if not collection.startswith(kind) or not any(
            v.get("rule") == _FEED_RULES[kind] for v in verdicts.values()
        ):
            return False
        feed = self.collections.get(collection)
        readers = feed.readers - {self.sender} if feed is not None else frozenset()
        return all(
            verdicts.get(m, {}).get("allowed") and verdicts[m].get("rule") != REVOCATION
            for m in readers
        )
