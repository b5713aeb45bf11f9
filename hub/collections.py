"""The TAXII collections the federation implies, and who may read or write each.

`inbox` takes submissions; `public` is readable by every member; each region has a feed
its members read; each member has its own feed (everything routed to that member alone,
AMBER and RED addressed to it included); `alerts` holds the hub's major-incident alerts.
A collection's TAXII id is a UUID derived from the hub and the alias, so every node of
one hub names it the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub.federation import Account, Federation

INBOX = "inbox"
PUBLIC = "public"
ALERTS = "alerts"
_NAMESPACE = uuid.UUID("9d1c1b0e-4d1f-4c8e-9a43-2f1b7c0e5a61")


@dataclass(frozen=True)
class Collection:
    alias: str
    id: str
    title: str
    description: str
    readers: frozenset[str]  # member ids
    writable: bool = False
    # The region or member a feed is for (its name, for titles in other languages).
    subject: str = ""

    def can_read(self, account: Account) -> bool:
        return account.can("read") and account.member in self.readers

    def can_write(self, account: Account) -> bool:
        return self.writable and account.can("submit") and account.member is not None

    def visible_to(self, account: Account) -> bool:
        """Listed for this account: it may read or write here."""
        return self.can_read(account) or self.can_write(account)

    def known_to(self, account: Account) -> bool:
        """Addressable by this account: visible, or the inbox of its own member (so a reader
        that posts there learns it lacks the submit role rather than that the inbox is gone)."""
        return self.visible_to(account) or (self.writable and account.member is not None)


def region_alias(region_id: str) -> str:
    return f"region-{region_id}"


def member_alias(member_id: str) -> str:
    return f"member-{member_id}"


def build_collections(federation: Federation) -> dict[str, Collection]:
    """Every collection of the hub, by alias."""

    def make(
        alias: str, title: str, description: str, readers: frozenset[str], **kw: Any
    ) -> Collection:
        cid = str(uuid.uuid5(_NAMESPACE, f"{federation.hub.id}/{alias}"))
        return Collection(alias, cid, title, description, readers, **kw)

    found = [
        make(
            INBOX,
            "Inbox",
            "Where member CIRTs submit STIX 2.1 content; routed by each sender's rules.",
            frozenset(),
            writable=True,
        )
    ]
    found.append(
        make(
            PUBLIC,
            "Public",
            "TLP:CLEAR content every member may read, and the hub's public definitions.",
            frozenset(m.id for m in federation.members),
        )
    )
    found.append(
        make(
            ALERTS,
            "Alerts",
            "Major-incident alerts the hub raises from what members share.",
            frozenset(m.id for m in federation.members),
        )
    )
    for region in federation.regions:
        members = frozenset(m.id for m in federation.members_of(region.id))
        found.append(
            make(
                region_alias(region.id),
                f"{region.name} feed",
                f"Content shared with the members of {region.name}.",
                members,
                subject=region.name,
            )
        )
    for member in federation.members:
        found.append(
            make(
                member_alias(member.id),
                f"{member.name} feed",
                f"Content routed to {member.name} alone.",
                frozenset({member.id}),
                subject=member.name,
            )
        )
    return {c.alias: c for c in found}


def feed_aliases(collections: dict[str, Collection]) -> list[str]:
    """Collections that are fed by routing (all but the inbox)."""
    return [alias for alias in collections if alias != INBOX]


@dataclass(frozen=True)
class Reading:
    """What one account may read: the collections, and the name under which the view's
    rows addressed to named accounts (TLP:RED) admit it. Every read of the view goes
    through one, so TAXII, the stream and the console cannot disagree."""

    reader: str
    collections: Mapping[str, Collection]  # alias → a collection it may read

    def may_read(self, collection: Collection) -> bool:
        return collection.alias in self.collections


def reading(account: Account, collections: Mapping[str, Collection]) -> Reading:
    """The one decision of what `account` may read among the hub's `collections`."""
    return Reading(account.username, {a: c for a, c in collections.items() if c.can_read(account)})
