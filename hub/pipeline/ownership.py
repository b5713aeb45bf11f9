"""ownership: only the member that first published an object id may publish its later versions.

STIX lets only an object's creator make new versions of it or revoke it. `created_by_ref`
cannot tell who that is (a member writes what it likes there, or leaves it out), so the hub
goes by what it has seen: an id belongs to the member whose object with that id was routed
first, in the one order of the `decisions` topic (DeliveryHistory), third-party content too
(the member that first relayed it). What the hub publishes itself is the hub's: its identity,
its extension-definitions (provenance, responses) and the creator they name, and every alert
it made.
Two exceptions, each guarded elsewhere: the standard TLP marking-definitions (immutable, and
provenance refuses any other content under their ids) and observables (an SCO's id is derived
from its value, so members reporting the same address send the same id; they have no
versions, only a claimed revocation is checked). A refusal never says who owns the id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hub.federation import Federation
from hub.model import Item, RefusalCode, Submission
from hub.pipeline.history import HUB
from hub.pipeline.provenance import defines_new_sco, hub_identities
from hub.stix.markings import tlp_by_marking_id
from hub.stix.predefined import extension_definitions
from hub.stix.validation import SCO_TYPES


class Owners(Protocol):
    def owner(self, object_id: str) -> str | None:
        """The member that first published the id (HUB for the hub's own); None if nobody."""


@dataclass(frozen=True)
class Ownership:
    federation: Federation
    owners: Owners
    _hub: frozenset[str] = field(init=False, repr=False, compare=False)
    _fixed: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_hub", hub_identities(self.federation) | extension_definitions().keys()
        )
        object.__setattr__(self, "_fixed", frozenset(tlp_by_marking_id()))

    def _owner(self, obj: Mapping[str, Any], object_id: str) -> str | None:
        if object_id in self._fixed:
            return None
        if _is_sco(obj) and obj.get("revoked") is not True:
            return None
        return HUB if object_id in self._hub else self.owners.owner(object_id)

    def __call__(self, submission: Submission) -> Submission:
        sender = submission.member
        member = submission.sender
        # A member's own identity is its own, whoever sent that id before it joined; no one
        # else may publish it (provenance).
        own = member.identity if member is not None else None

        def check(item: Item) -> Item:
            if item.id == own:
                return item
            owner = self._owner(item.obj, item.id)
            if owner is None or owner == sender:
                return item
            where = f"objects[{item.index}] ({item.id})"
            if owner == HUB:
                return item.refuse(
                    RefusalCode.NOT_OWNER,
                    f"{where}: the hub publishes this object itself (its identity, its "
                    "extension-definitions, a major-incident alert), and no member "
                    "may publish new versions of it or revoke it",
                )
            return item.refuse(
                RefusalCode.NOT_OWNER,
                f"{where}: this id was first published through the hub by another member, "
                "and only that member may publish new versions of it or revoke it (in STIX, "
                "only an object's creator may). If you are relaying third-party content "
                "(e.g. MITRE ATT&CK) that another member shared first, the hub carries it "
                "from that member already; to share a version of your own, give it an id "
                "of its own",
            )

        return submission.map_accepted(check)


def _is_sco(obj: Mapping[str, Any]) -> bool:
    return obj.get("type") in SCO_TYPES or defines_new_sco(obj)
