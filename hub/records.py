"""The records the hub writes on its topics: one frozen dataclass per kind, with the one
place that knows its key, value and header names (hub/topics.py names the topics).

Every kind reads what earlier releases wrote: a hub of the previous release and this one
read each other's topics. Header names are the constants below and nowhere else.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from hub.bus import Headers, Message, Position, Record
from hub.model import AlertResponse
from hub.topics import Topics

# Feed records (and held deliveries, which carry a feed record's headers).
CONTENT_TYPE = "content-type"
SUBMITTER = "submitter"
DATE_ADDED = "date-added"
RECEIVED = "received"
STATUS_ID = "status-id"
ACCOUNTS = "accounts"
ONWARD_SHARING = "onward-sharing"
# Held deliveries and the releaser's markers.
COLLECTION = "collection"
RELEASE_AT = "release-at"
RELEASED = "released"
# Decisions and audit records; statuses.
SENDER = "sender"
MEMBER = "member"
DELIVERED = "delivered"
# Intake: the API's MAC, a member's own record signature, account and request id.
INTAKE_MAC = "cirt-hub-intake-mac"
SIGNATURE = "cirt-hub-signature"
ACCOUNT = "cirt-hub-account"
REQUEST_ID = "request-id"

STIX_MEDIA_TYPE = b"application/stix+json;version=2.1"
JSON_MEDIA_TYPE = b"application/json"
JWKS_MEDIA_TYPE = b"application/jwk-set+json"
# A member record whose value is a JWS (RFC 7515 section 9.2): compact, or JSON.
JOSE_MEDIA_TYPE = b"application/jose"
JOSE_JSON_MEDIA_TYPE = b"application/jose+json"
ANONYMOUS = "anonymous"  # the submitter of a sender that asked not to be named
# What alerts written before this release name as their submitter; the hub's id since.
EARLIER_HUB_SUBMITTER = "hub"
INTAKE_VERSION = 1
_MEMBER_RECORD_NAMESPACE = uuid.UUID("3b0e6d0c-6a55-4d7e-9d7c-51f0a3e9a8b2")


class RecordError(ValueError):
    """A record that does not hold what its kind must; the message says what is missing."""


def _text(value: bytes | None, default: str = "") -> str:
    return value.decode("utf-8", "replace") if value is not None else default


def _optional(value: bytes | None) -> str | None:
    return None if value is None else _text(value)


def _first(headers: Headers) -> dict[str, bytes]:
    """Each header's first value by name (as Record.header reads it), in one pass."""
    return dict(reversed(headers))


# --- intake ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntakeRecord:
    """What the hub's API writes for an accepted POST (`"v": 1`), MACed in INTAKE_MAC by
    hub.signing.intake; keyed by member, on the member's intake topic (or `intake`)."""

    status_id: str
    member: str
    account: str
    received: str
    request_id: str
    objects: Sequence[Any]

    def value(self) -> bytes:
        return orjson.dumps(
            {
                "v": INTAKE_VERSION,
                "status_id": self.status_id,
                "member": self.member,
                "account": self.account,
                "received": self.received,
                "request_id": self.request_id,
                "objects": self.objects,
            }
        )

    def to_message(self, topic: str, mac: tuple[str, bytes]) -> Message:
        """The record on `topic`, with `mac` (IntakeKeys.header over value()) as its header."""
        return Message(topic, self.value(), key=self.member.encode(), headers=(mac,))

    @classmethod
    def from_doc(cls, data: Mapping[str, Any]) -> IntakeRecord:
        """The record from its parsed value; RecordError for another version or a lack."""
        if data["v"] != INTAKE_VERSION:
            raise RecordError(f"intake record version {data['v']!r} is unknown")
        fields = ("status_id", "member", "account", "received", "request_id")
        missing = [f for f in fields if not isinstance(data.get(f), str)]
        if missing or not isinstance(data.get("objects"), list):
            raise RecordError(f"intake record lacks {missing or ['objects']}")
        return cls(**{f: data[f] for f in fields}, objects=data["objects"])


def encode_intake(
    *,
    status_id: str,
    member: str,
    account: str,
    received: str,
    request_id: str,
    objects: list[Any],
) -> bytes:
    """The value of the intake record for an accepted request (what decode reads back)."""
    return IntakeRecord(status_id, member, account, received, request_id, objects).value()


def member_status_id(topic: str, partition: int, offset: int) -> str:
    """The TAXII status id of a member's Kafka record, from where the record landed: the same
    on a redelivery, and computable by the producer from what the broker acknowledged."""
    return str(uuid.uuid5(_MEMBER_RECORD_NAMESPACE, intake_position_key(topic, partition, offset)))


@dataclass(frozen=True, slots=True)
class MemberIntakeRecord:
    """What a member's own Kafka producer writes on its intake topic: a STIX bundle or TAXII
    envelope as `value`, signed (a detached JWS over the value) in SIGNATURE."""

    member: str
    value: bytes
    signature: bytes | None  # as sent: the reader checks it, and says what is wrong with it
    account: str | None = None  # one of the member's submit accounts; None: its first
    request_id: str | None = None

    def headers(self) -> Headers:
        headers: list[tuple[str, bytes]] = []
        if self.signature is not None:
            headers.append((SIGNATURE, self.signature))
        headers.append((CONTENT_TYPE, STIX_MEDIA_TYPE))
        return _with_sender(headers, self.account, self.request_id)

    def to_message(self, topics: Topics) -> Message:
        return _member_message(topics, self.member, self.value, self.headers())

    @classmethod
    def from_record(cls, record: Record, member: str) -> MemberIntakeRecord:
        return cls(
            member,
            record.value,
            record.header(SIGNATURE),
            _optional(record.header(ACCOUNT)),
            _optional(record.header(REQUEST_ID)),
        )


def _with_sender(
    headers: list[tuple[str, bytes]], account: str | None, request_id: str | None
) -> Headers:
    """`headers` and, when the member's tool set them, its account and request id."""
    if account is not None:
        headers.append((ACCOUNT, account.encode()))
    if request_id is not None:
        headers.append((REQUEST_ID, request_id.encode()))
    return tuple(headers)


def _member_message(topics: Topics, member: str, value: bytes, headers: Headers) -> Message:
    # Keyed by the member: its records stay in one partition, so in the order sent.
    return Message(topics.member_intake(member), value, key=member.encode(), headers=headers)


@dataclass(frozen=True, slots=True)
class MemberJwsRecord:
    """A member's own record whose value is itself a JWS (RFC 7515, compact or flattened
    JSON, alg EdDSA, one of the member's keys) with a bundle, an envelope or one STIX object
    as its payload: what any JOSE tool makes of a file. No SIGNATURE header."""

    member: str
    value: bytes
    account: str | None = None  # as in MemberIntakeRecord
    request_id: str | None = None

    def headers(self) -> Headers:
        json_form = self.value.lstrip()[:1] == b"{"
        headers = [(CONTENT_TYPE, JOSE_JSON_MEDIA_TYPE if json_form else JOSE_MEDIA_TYPE)]
        return _with_sender(headers, self.account, self.request_id)

    def to_message(self, topics: Topics) -> Message:
        return _member_message(topics, self.member, self.value, self.headers())

    @classmethod
    def from_record(cls, record: Record, member: str) -> MemberJwsRecord:
        return cls(
            member,
            record.value,
            _optional(record.header(ACCOUNT)),
            _optional(record.header(REQUEST_ID)),
        )


# --- feeds and held deliveries -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedRecord:
    """One delivery on `feed.<collection>`: keyed by the delivered id, the object as delivered
    (JSON bytes, signed unless it is a predefined one), and who sent it."""

    collection: str
    object_id: str
    value: bytes
    # A member id, ANONYMOUS, or the hub's id for the hub's own objects (TLP definitions,
    # alerts); alerts written before this release say EARLIER_HUB_SUBMITTER.
    submitter: str
    date_added: str
    received: str | None = None  # when the hub received it (not for predefined objects)
    status_id: str | None = None  # not for anonymous senders, nor for the hub's own
    accounts: tuple[str, ...] = ()  # TLP:RED: only these reader accounts; () = every reader
    onward_sharing: bool = True  # False for AMBER+STRICT and RED

    def headers(self) -> Headers:
        headers: list[tuple[str, bytes]] = [
            (CONTENT_TYPE, STIX_MEDIA_TYPE),
            (SUBMITTER, self.submitter.encode()),
            (DATE_ADDED, self.date_added.encode()),
        ]
        if self.received is not None:
            headers.append((RECEIVED, self.received.encode()))  # for end-to-end latency
        if self.status_id is not None:
            headers.append((STATUS_ID, self.status_id.encode()))
        if self.accounts:
            headers.append((ACCOUNTS, ",".join(self.accounts).encode()))
        if not self.onward_sharing:
            headers.append((ONWARD_SHARING, b"no"))
        return tuple(headers)

    def to_message(self, topics: Topics) -> Message:
        return Message(
            topics.feed(self.collection),
            self.value,
            key=self.object_id.encode(),
            headers=self.headers(),
        )

    @classmethod
    def from_record(cls, record: Record, collection: str) -> FeedRecord:
        headers = _first(record.headers)
        accounts = headers.get(ACCOUNTS)
        return cls(
            collection=collection,
            object_id=_text(record.key),
            value=record.value,
            submitter=_text(headers.get(SUBMITTER)),
            date_added=_text(headers.get(DATE_ADDED)),
            received=_optional(headers.get(RECEIVED)),
            status_id=_optional(headers.get(STATUS_ID)),
            accounts=tuple(accounts.decode().split(",")) if accounts else (),
            onward_sharing=headers.get(ONWARD_SHARING) != b"no",
        )


@dataclass(frozen=True, slots=True)
class HeldRecord:
    """A delivery under embargo, on `held` until `release_at` (RFC 3339): the feed record it
    becomes, dated when it was routed."""

    feed: FeedRecord
    release_at: str

    def to_message(self, topics: Topics) -> Message:
        held = ((COLLECTION, self.feed.collection.encode()), (RELEASE_AT, self.release_at.encode()))
        return Message(
            topics.held,
            self.feed.value,
            key=self.feed.object_id.encode(),
            headers=held + self.feed.headers(),
        )

    @staticmethod
    def release_at_of(record: Record) -> str:
        """Only the time a held record is due (the releaser asks of each one every round)."""
        return _text(record.header(RELEASE_AT))

    @classmethod
    def from_record(cls, record: Record) -> HeldRecord:
        collection = _text(record.header(COLLECTION))
        return cls(FeedRecord.from_record(record, collection), _text(record.header(RELEASE_AT)))


@dataclass(frozen=True, slots=True)
class ReleasedMarker:
    """On `held`: the delivery at `offset` was released ahead of one held before it."""

    offset: int
    key: bytes | None

    def to_message(self, topics: Topics) -> Message:
        return Message(
            topics.held, b"{}", key=self.key, headers=((RELEASED, str(self.offset).encode()),)
        )

    @classmethod
    def from_record(cls, record: Record) -> ReleasedMarker | None:
        """The marker `record` is, or None for a held delivery."""
        marker = record.header(RELEASED)
        return None if marker is None else cls(int(marker), record.key)


# --- decisions, audit, observations ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a decision put one variant: its collection, the reader accounts it is limited
    to (TLP:RED), and the embargo's end."""

    collection: str
    accounts: tuple[str, ...] = ()
    release_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "accounts": list(self.accounts),
            "release_at": self.release_at,
        }


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One routing decision on `decisions`, keyed by object id, as the audit chain records
    it. Kept as the document it is on the topic: the chain hashes every field of it, those
    of a later release included."""

    doc: Mapping[str, Any]

    @classmethod
    def of(
        cls,
        *,
        object_id: str,
        version: str | None,
        type: str | None,
        sender: str,
        account: str,
        status_id: str,
        received: str,
        routed_at: str,
        policy_version: str,
        verdicts: Sequence[Mapping[str, Any]],
        placements: Sequence[Placement],
    ) -> DecisionRecord:
        return cls(
            {
                "v": 1,
                "object_id": object_id,
                "version": version,
                "type": type,
                "sender": sender,
                "account": account,
                "status_id": status_id,
                "received": received,
                "routed_at": routed_at,
                "policy_version": policy_version,
                "verdicts": list(verdicts),
                "deliveries": [p.as_dict() for p in placements],
            }
        )

    @property
    def object_id(self) -> str:
        return str(self.doc.get("object_id"))

    @property
    def sender(self) -> str | None:
        sender = self.doc.get("sender")
        return sender if isinstance(sender, str) else None

    @property
    def allowed(self) -> tuple[str, ...]:
        """The members whose verdict allowed the object."""
        return tuple(v["member"] for v in self.doc.get("verdicts", []) if v.get("allowed"))

    @property
    def placements(self) -> tuple[Placement, ...]:
        return tuple(
            Placement(d["collection"], tuple(d["accounts"]), d.get("release_at"))
            for d in self.doc.get("deliveries", [])
        )

    def to_message(self, topics: Topics) -> Message:
        return Message(
            topics.decisions,
            orjson.dumps(self.doc),
            key=self.object_id.encode(),
            headers=((SENDER, str(self.sender).encode()),),
        )

    @classmethod
    def from_record(cls, record: Record) -> DecisionRecord:
        return cls(orjson.loads(record.value))


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One link of the audit chain on `audit`: a decision with `seq`, `prev` and `hash`
    (hub.audit.chain), keyed and headed as the decision was."""

    doc: Mapping[str, Any]

    @property
    def seq(self) -> int:
        return int(self.doc["seq"])

    @property
    def hash(self) -> str:
        return str(self.doc["hash"])

    @property
    def sender(self) -> str:
        return str(self.doc["sender"])

    @property
    def object_id(self) -> str:
        return str(self.doc["object_id"])

    def to_message(self, topics: Topics) -> Message:
        return Message(
            topics.audit,
            orjson.dumps(self.doc),
            key=self.object_id.encode(),
            headers=((SENDER, self.sender.encode()),),
        )

    @classmethod
    def from_record(cls, record: Record) -> AuditRecord:
        return cls(orjson.loads(record.value))


@dataclass(frozen=True, slots=True)
class ObservationRecord:
    """What the correlator counts of one routed object, on `observations`: keyed
    observables (never values), what it sights, and who received it by which id."""

    object_id: str
    version: str | None
    sender: str
    country: str
    regions: tuple[str, ...]
    received: str
    keys: tuple[str, ...]
    sighting_of: str | None
    visible: tuple[tuple[str, str], ...]  # (member, the id it received the object by)
    named: bool = False  # a sighting whose sender chose to be named in alerts
    response: AlertResponse | None = None  # a recipient's state on one of its alerts

    def to_message(self, topics: Topics) -> Message:
        doc: dict[str, Any] = {
            "object_id": self.object_id,
            "version": self.version,
            "sender": self.sender,
            "country": self.country,
            "regions": list(self.regions),
            "received": self.received,
            "keys": list(self.keys),
            "sighting_of": self.sighting_of,
            "visible": dict(self.visible),
        }
        if self.named:
            doc["named"] = True
        if self.response is not None:
            doc["response"] = {
                "alert": self.response.alert,
                "state": self.response.state,
                "named": self.response.named,
            }
        return Message(topics.observations, orjson.dumps(doc), key=self.object_id.encode())

    @classmethod
    def from_record(cls, record: Record) -> ObservationRecord:
        doc = orjson.loads(record.value)
        sighting_of = doc.get("sighting_of")
        response = doc.get("response")
        return cls(
            object_id=str(doc["object_id"]),
            version=doc.get("version"),
            sender=str(doc["sender"]),
            country=str(doc["country"]),
            regions=tuple(doc.get("regions") or ()),
            received=str(doc["received"]),
            keys=tuple(doc.get("keys") or ()),
            sighting_of=str(sighting_of) if sighting_of is not None else None,
            visible=tuple(dict(doc["visible"]).items()),
            named=doc.get("named") is True,
            response=(
                AlertResponse(
                    str(response["alert"]), str(response["state"]), response.get("named") is True
                )
                if isinstance(response, dict)
                else None
            ),
        )


# --- statuses ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """A TAXII status resource (hub.status) on `status`, keyed by its id: the API's pending
    one, or the pipeline's final one naming what each view must hold before showing it."""

    member: str
    doc: Mapping[str, Any]
    # Final only: (collection, delivered id, version) each view holds before it shows the
    # status complete; None for a pending status.
    delivered: tuple[tuple[str, str, str], ...] | None = None

    @property
    def status_id(self) -> str:
        return str(self.doc["id"])

    @property
    def complete(self) -> bool:
        return self.doc.get("status") == "complete"

    def to_message(self, topics: Topics) -> Message:
        headers: Headers = ((MEMBER, self.member.encode()),)
        if self.delivered is not None:
            headers += ((DELIVERED, orjson.dumps([list(d) for d in self.delivered])),)
        return Message(
            topics.status, orjson.dumps(self.doc), key=self.status_id.encode(), headers=headers
        )

    @classmethod
    def from_record(cls, record: Record) -> StatusRecord:
        delivered = record.header(DELIVERED)
        return cls(
            member=_text(record.header(MEMBER)),
            doc=orjson.loads(record.value),
            delivered=(
                tuple((c, i, v) for c, i, v in orjson.loads(delivered))
                if delivered is not None
                else None
            ),
        )


# --- rejected ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefusedObject:
    """One object a stage refused, as sent (so it can be inspected and replayed), on
    `rejected`, keyed by its submission's status id."""

    status_id: str
    member: str
    account: str
    received: str
    index: int
    object_id: str
    reason: str
    message: str
    obj: Any

    def to_message(self, topics: Topics) -> Message:
        doc = {
            "status_id": self.status_id,
            "member": self.member,
            "account": self.account,
            "received": self.received,
            "index": self.index,
            "id": self.object_id,
            "reason": self.reason,
            "message": self.message,
            "object": self.obj,
        }
        return Message(topics.rejected, orjson.dumps(doc), key=self.status_id.encode())


class Copy(StrEnum):
    """How a refused record's value travels in its `rejected` entry."""

    JSON = "json"  # spliced in as is: no escaping, no growth
    BASE64 = "base64"
    HEAD = "head"  # too large to copy: its size, SHA-256 and first HEAD_BYTES


HEAD_BYTES = 64 * 1024  # of a record too large to copy whole: enough to see what it is


@dataclass(frozen=True, slots=True)
class RefusedRecord:
    """A whole intake record refused, on `rejected` under the record's own key, with where
    it was read and its bytes (or, too large to copy, what identifies them)."""

    reason: str
    message: str
    topic: str
    partition: int
    offset: int
    member: str | None  # the member whose intake topic it was read from
    key: bytes | None
    value: bytes
    copy: Copy

    def to_message(self, topics: Topics) -> Message:
        entry: dict[str, object] = {
            "reason": self.reason,
            "message": self.message,
            "intake": {"topic": self.topic, "partition": self.partition, "offset": self.offset},
        }
        if self.member is not None:
            entry["member"] = self.member
        if self.copy is Copy.HEAD:
            entry |= {
                "record_bytes": len(self.value),
                "record_sha256": hashlib.sha256(self.value).hexdigest(),
                "record_head_base64": base64.b64encode(self.value[:HEAD_BYTES]).decode(),
                "record_truncated": True,
            }
            return Message(topics.rejected, orjson.dumps(entry), key=self.key)
        head = orjson.dumps(entry)[:-1]
        raw = (
            b',"record":' + self.value
            if self.copy is Copy.JSON
            else b',"record_base64":"' + base64.b64encode(self.value) + b'"'
        )
        return Message(topics.rejected, head + raw + b"}", key=self.key)


@dataclass(frozen=True, slots=True)
class RejectedEntry:
    """A `rejected` record as read back (either kind), as the document it is."""

    doc: Mapping[str, Any]

    @property
    def whole_record(self) -> bool:
        """A whole intake record refused (RefusedRecord), not one object (RefusedObject)."""
        return "intake" in self.doc

    @property
    def member(self) -> str | None:
        member = self.doc.get("member")
        record = self.doc.get("record")
        if member is None and isinstance(record, Mapping):
            member = record.get("member")  # an API record refused before topics were named
        return member if isinstance(member, str) else None

    @classmethod
    def from_record(cls, record: Record) -> RejectedEntry:
        return cls(orjson.loads(record.value))


# --- receipts and keys ---------------------------------------------------------------------


def intake_position_key(topic: str, partition: int, offset: int) -> str:
    """Where an intake record landed, as `<topic>/<partition>/<offset>`: its receipt's key
    (and what its status id is derived from, member_status_id)."""
    return f"{topic}/{partition}/{offset}"


@dataclass(frozen=True, slots=True)
class ReceiptRecord:
    """What became of one record of a member's intake topic, on that member's
    `receipts.member-<id>`, keyed by where the record landed: its final TAXII status, or
    the reason it was refused whole (then it has no status)."""

    member: str
    intake: Position
    status: Mapping[str, Any] | None = None  # the TAXII status resource, as the API says it
    reason: str | None = None  # refused whole: the `rejected` reason and message
    message: str | None = None

    @property
    def key(self) -> str:
        return intake_position_key(*self.intake)

    def value(self) -> bytes:
        topic, partition, offset = self.intake
        doc: dict[str, Any] = {
            "v": 1,
            "intake": {"topic": topic, "partition": partition, "offset": offset},
        }
        if self.status is not None:
            doc |= {"outcome": "complete", "status": self.status}
        else:
            doc |= {"outcome": "refused", "reason": self.reason, "message": self.message}
        return orjson.dumps(doc)

    def to_message(self, topics: Topics) -> Message:
        headers: list[tuple[str, bytes]] = [(CONTENT_TYPE, JSON_MEDIA_TYPE)]
        if self.status is not None:
            headers.append((STATUS_ID, str(self.status["id"]).encode()))
        return Message(
            topics.receipts(self.member), self.value(), self.key.encode(), tuple(headers)
        )

    @classmethod
    def from_record(cls, record: Record, member: str) -> ReceiptRecord:
        return cls.from_value(record.value, member)

    @classmethod
    def from_value(cls, value: bytes, member: str) -> ReceiptRecord:
        """The receipt a record value holds (what a member's own consumer reads)."""
        doc = orjson.loads(value)
        intake = doc["intake"]
        return cls(
            member,
            Position(str(intake["topic"]), int(intake["partition"]), int(intake["offset"])),
            doc.get("status"),
            doc.get("reason"),
            doc.get("message"),
        )


HUB_KEYS = "hub"  # the keys topic's key of the hub's own JWKS


def member_keys_key(member: str) -> str:
    """The keys topic's key of one member's public keys."""
    return f"member-{member}"


@dataclass(frozen=True, slots=True)
class KeysRecord:
    """A JWK Set on the compacted `keys` topic: the hub's (key HUB_KEYS, each key marked
    current or retired) or one member's public keys (key `member-<id>`); the latest record
    of a key is what holds. A member no longer listed has an empty set."""

    name: str
    jwks: Mapping[str, Any]

    def to_message(self, topics: Topics) -> Message:
        return Message(
            topics.keys,
            orjson.dumps(self.jwks),
            self.name.encode(),
            ((CONTENT_TYPE, JWKS_MEDIA_TYPE),),
        )

    @classmethod
    def from_record(cls, record: Record) -> KeysRecord:
        return cls(_text(record.key), orjson.loads(record.value))
