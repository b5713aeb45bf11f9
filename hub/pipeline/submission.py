"""The values that travel through the pipeline: a submission and its objects' outcomes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from hub.policy.entitlement import Verdict
from hub.signing.members import MemberSignature

MAX_MESSAGE = 2000  # characters of a refusal's message


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one object was not accepted, in words a CIRT analyst understands."""

    reason: str  # short code, stable for metrics and filters: "invalid-stix", ...
    message: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one collection receives of one object: the exact content, as emit writes it.

    Content differs per recipient (redaction, pseudonymisation, anonymity), so each
    delivery carries its own variant; a later stage (signing) maps over them.
    """

    collection: str
    obj: Mapping[str, Any]
    accounts: tuple[str, ...] = ()  # TLP:RED: only these reader accounts; () = every reader
    onward_sharing: bool = True  # False for AMBER+STRICT and RED: not to be passed on
    release_at: str | None = None  # embargo: RFC 3339 time before which no one receives it
    anonymous: bool = False  # the sender is not to be named to this collection's readers


@dataclass(frozen=True, slots=True)
class Observation:
    """What the correlator learns of one routed object: keyed observables (no raw values),
    what it sights, and each member that received it with the id it received it by."""

    keys: tuple[str, ...]
    sighting_of: str | None
    visible: tuple[tuple[str, str], ...]  # (member, delivered object id)
    country: str  # the sender's
    regions: tuple[str, ...]  # the sender's


@dataclass(frozen=True, slots=True)
class Item:
    """One STIX object of a submission, as sent, with what the stages decided about it."""

    index: int
    obj: Mapping[str, Any]
    refusal: Refusal | None = None
    member_signature: MemberSignature | None = None  # verified by authenticate, carried by sign
    chain: tuple[str, ...] = ()  # a relayed object's earlier signatures, carried by sign
    redacted: bool = False  # a policy stage removed properties; sign says so in the provenance
    deliveries: tuple[Delivery, ...] = ()
    verdicts: tuple[Verdict, ...] = ()  # per member, why it may or may not receive the object
    observation: Observation | None = None  # for the correlator (set by observe)

    @property
    def id(self) -> str:
        value = self.obj.get("id") if isinstance(self.obj, Mapping) else None
        return value if isinstance(value, str) else ""

    @property
    def version(self) -> str | None:
        """The object's version for TAXII: `modified`, else `created`; None for SCOs."""
        if not isinstance(self.obj, Mapping):
            return None
        value = self.obj.get("modified") or self.obj.get("created")
        return value if isinstance(value, str) and value else None

    @property
    def collections(self) -> tuple[str, ...]:
        """Every collection the object is delivered to (now or after an embargo)."""
        return tuple(dict.fromkeys(d.collection for d in self.deliveries))

    @property
    def accepted(self) -> bool:
        return self.refusal is None

    def refuse(self, reason: str, message: str) -> Item:
        if len(message) > MAX_MESSAGE:
            # A message may quote a value (a timestamp of 8 MB): its reader needs the reason,
            # and the status and `rejected` records must stay within what the bus takes.
            message = f"{message[:MAX_MESSAGE]}… ({len(message):,} characters in all)"
        return replace(self, refusal=Refusal(reason, message))


@dataclass(frozen=True, slots=True)
class Submission:
    """A member's bundle on its way from intake to the feeds."""

    status_id: str
    member: str
    account: str
    received: str  # RFC 3339, when the hub accepted the request
    request_id: str
    items: tuple[Item, ...]
    policy_version: str = ""  # the hash of the rules that routed it (set by route)

    def map_accepted(self, decide: Callable[[Item], Item]) -> Submission:
        """Apply `decide` to every object still accepted; refused ones pass through as they are."""
        return replace(self, items=tuple(decide(i) if i.accepted else i for i in self.items))


Stage = Callable[[Submission], Submission]


def compose(*stages: Stage) -> Stage:
    """The pipeline: `stages` applied in order, read top to bottom in one place."""

    def pipeline(submission: Submission) -> Submission:
        for stage in stages:
            submission = stage(submission)
        return submission

    return pipeline
