"""provenance: an object may speak only for its sender, or for a third party outside the hub.

`created_by_ref` may name the submitting member's identity, or an identity that is not a
member's (content a member relays: a vendor report, MITRE ATT&CK). Absent, the hub sets
the sender's identity, so every object says who vouches for it (not on SCOs, and not on
identity objects, which describe themselves). Claiming another member or the hub (its
identity, or the creator its extension-definition names) is refused; so is publishing
another member's (or the hub's) identity object, and giving a TLP marking-definition id
another meaning. Who may version an object id is the ownership stage's to say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from hub.federation import Federation, Member
from hub.model import Item, RefusalCode, Submission
from hub.stix.markings import tlp_by_marking_id, tlp_definition_problem
from hub.stix.predefined import extension_definition
from hub.stix.validation import SCO_TYPES


def hub_identities(federation: Federation) -> frozenset[str]:
    """The identities the hub speaks as: its own, and the creator its extension-definition
    names (the cirt-hub project, the same on every hub)."""
    return frozenset({federation.hub.identity, extension_definition()["created_by_ref"]})


@dataclass(frozen=True)
class Provenance:
    federation: Federation
    _hub: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hub", hub_identities(self.federation))

    def _owner(self, identity: str) -> str | None:
        """Who an identity id belongs to inside the hub, in words; None for third parties."""
        if identity in self._hub:
            return "the hub"
        member = self.federation.member_by_identity(identity)
        return f"member {member.id!r}" if member else None

    def _check(self, item: Item, sender: Member) -> Item:
        obj = item.obj
        kind = obj.get("type")
        where = f"objects[{item.index}] ({item.id})"
        if kind == "identity" and item.id != sender.identity:
            owner = self._owner(item.id)
            if owner:
                return item.refuse(
                    RefusalCode.FORGED_PROVENANCE,
                    f"{where}: only {owner} may publish its identity object",
                )
        if kind == "marking-definition" and item.id in tlp_by_marking_id():
            problem = tlp_definition_problem(obj)
            if problem:
                return item.refuse(RefusalCode.FORGED_MARKING, f"{where}: {problem}")
            return item  # a standard TLP definition: nobody's claim, leave it as it is
        creator = obj.get("created_by_ref")
        if creator is None:
            if kind in SCO_TYPES or defines_new_sco(obj) or kind == "identity":
                # SCOs carry no created_by_ref; an identity without one describes itself
                # (a relayed one keeps the signatures that came with it valid).
                return item
            return replace(item, obj={**obj, "created_by_ref": sender.identity})
        if creator != sender.identity:
            owner = self._owner(str(creator))
            if owner:
                return item.refuse(
                    RefusalCode.FORGED_PROVENANCE,
                    f"{where}: property 'created_by_ref' names {owner} ({creator}); "
                    f"{sender.id} may name itself ({sender.identity}) or a third party "
                    "outside the hub",
                )
        return item

    def __call__(self, submission: Submission) -> Submission:
        sender = submission.sender
        if sender is None:
            return submission.map_accepted(
                lambda i: i.refuse(
                    RefusalCode.UNKNOWN_MEMBER, f"{submission.member!r} is not a member"
                )
            )
        return submission.map_accepted(lambda item: self._check(item, sender))


def defines_new_sco(obj: Mapping[str, object]) -> bool:
    extensions = obj.get("extensions")
    return isinstance(extensions, Mapping) and any(
        isinstance(v, Mapping) and v.get("extension_type") == "new-sco" for v in extensions.values()
    )
