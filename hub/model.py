"""The values that travel through the hub: a submission, its objects, what the stages
decided about each (verdicts, deliveries, a refusal and its code), and what signing verified.

Pipeline, policy and signing all speak in these; this module imports none of them (only
the federation's `Member`, which a submission carries as its sender).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from hub.federation import Member

MAX_MESSAGE = 2000  # characters of a refusal's message


class RefusalCode(StrEnum):
    """Why an object or a whole intake record was refused: stable short codes for metrics,
    `rejected` entries and filters (docs: the refusal codes of intake and signatures)."""

    # An object, refused by a stage; its siblings go on.
    INVALID_STIX = "invalid-stix"
    TOO_LARGE = "too-large"
    UNMARKED = "unmarked"
    FORGED_PROVENANCE = "forged-provenance"
    FORGED_MARKING = "forged-marking"
    NOT_OWNER = "not-owner"
    UNKNOWN_MEMBER = "unknown-member"
    RED_WITHOUT_RECIPIENTS = "red-without-recipients"
    INTERNAL_ERROR = "internal-error"
    # A member signature, on an object or on a member's own record.
    MEMBER_SIGNATURE_MISSING = "member-signature-missing"
    MEMBER_SIGNATURE_MALFORMED = "member-signature-malformed"
    MEMBER_SIGNATURE_WRONG_MEMBER = "member-signature-wrong-member"
    MEMBER_SIGNATURE_UNKNOWN_KEY = "member-signature-unknown-key"
    MEMBER_SIGNATURE_INVALID = "member-signature-invalid"
    CHAIN_BROKEN = "chain-broken"  # what `cirt-hub verify` finds of a relayed object
    # A whole intake record.
    UNDECODABLE = "undecodable"
    TOO_DEEP = "too-deep"
    WRONG_TOPIC = "wrong-topic"
    INTAKE_REPLAYED = "intake-replayed"
    NOT_AUTHORIZED = "not-authorized"
    OUTPUT_TOO_LARGE = "output-too-large"
    INTAKE_MAC_MISSING = "intake-mac-missing"
    INTAKE_MAC_MALFORMED = "intake-mac-malformed"
    INTAKE_MAC_UNKNOWN_KEY = "intake-mac-unknown-key"
    INTAKE_MAC_INVALID = "intake-mac-invalid"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one object was not accepted, in words a CIRT analyst understands."""

    reason: RefusalCode
    message: str


@dataclass(frozen=True, slots=True)
class MemberSignature:
    """A member signature the hub verified: the JWS, its key, and what it covered."""

    jws: str
    kid: str
    member: str
    payload_sha256: bytes


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision for one recipient: allowed or denied, the rule that decided, and why."""

    member: str
    allowed: bool
    rule: str  # the deciding rule, as named in the federation file ("sharing.recipients.amber")
    reason: str  # in words a CIRT analyst understands
    withheld: tuple[str, ...] = ()  # properties this recipient gets the object without
    # What the sender's rules alone decided, where a revocation overrode it: the sender's
    # explanation shows this when the earlier version came from someone else.
    overridden: Verdict | None = None
    # What the sender's rules and its own objects alone decided, where the object refers
    # (itself or through the submission) to another member's objects: what a recipient
    # then got depends on whether that member gave it those, which is not the sender's to
    # learn, so the sender's explanation shows this instead.
    own_rules: Verdict | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "member": self.member,
            "allowed": self.allowed,
            "rule": self.rule,
            "reason": self.reason,
        }
        if self.withheld:
            out["withheld"] = list(self.withheld)
        if self.overridden is not None:
            out["overridden"] = self.overridden.as_dict()
        if self.own_rules is not None:
            out["own_rules"] = self.own_rules.as_dict()
        return out


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
class AlertResponse:
    """A recipient's state on one of its alerts (a response note, hub.correlate.responses)."""

    alert: str  # the alert's id, as its recipient received it
    state: str
    named: bool  # the responder chose to be named to the alert's other recipients


@dataclass(frozen=True, slots=True)
class Observation:
    """What the correlator learns of one routed object: keyed observables (no raw values),
    what it sights, and each member that received it with the id it received it by."""

    keys: tuple[str, ...]
    sighting_of: str | None
    visible: tuple[tuple[str, str], ...]  # (member, delivered object id)
    country: str  # the sender's
    regions: tuple[str, ...]  # the sender's
    named: bool = False  # a sighting whose sender chose to be named in alerts
    response: AlertResponse | None = None


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

    def refuse(self, reason: RefusalCode, message: str) -> Item:
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
    # The sending member as the federation in force knows it, looked up once (by decode);
    # None for an id that is no member's (authenticate's and route's refusals say so).
    sender: Member | None = None

    def map_accepted(self, decide: Callable[[Item], Item]) -> Submission:
        """Apply `decide` to every object still accepted; refused ones pass through as they are."""
        return replace(self, items=tuple(decide(i) if i.accepted else i for i in self.items))


Stage = Callable[[Submission], Submission]
