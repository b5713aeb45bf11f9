"""decode: an intake record → a Submission (or a refusal of the whole record).

Two kinds of record, each on its own topics:
- `<prefix>intake`: what the hub's API wrote (`"v": 1`), with an HMAC over the record value
  in the `cirt-hub-intake-mac` header, made with the hub's intake key (hub.signing.intake).
  Only the hub's principal may write there; the MAC proves it whatever the ACLs turn out to
  be, and the record's time on the bus shows a copy written again later (a replay).
- `<prefix>intake.member-<id>`: a STIX bundle or TAXII envelope that member's own producer
  wrote, with a detached JWS over the record value in the `cirt-hub-signature` header, made
  with one of the member's `public_keys`. Kafka ACLs let only the member write its topic;
  the signature proves at the hub who wrote it, whatever the ACLs turn out to be.

Either way the body gets the checks a POST gets (hub.stix.envelope), and each object larger
than `hub.limits.max_object_bytes` arrives refused: the others go on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from hub.bus import Record
from hub.errors import HubError, InvalidStix
from hub.federation import Account, Federation, Limits, Member
from hub.pipeline.submission import Item, Submission
from hub.signing.intake import MAC_HEADER, IntakeKeyError, IntakeKeys, IntakeMacError
from hub.signing.members import MemberKeys, MemberSignatureError
from hub.stix import timestamps
from hub.stix.envelope import TooDeep, check_depth, envelope_objects, parse_body
from hub.topics import Topics

INTAKE_VERSION = 1
SIGNATURE_HEADER = "cirt-hub-signature"
ACCOUNT_HEADER = "cirt-hub-account"
_RECORD_NAMESPACE = uuid.UUID("3b0e6d0c-6a55-4d7e-9d7c-51f0a3e9a8b2")
# How long after its `received` an API record may land on intake. The API publishes within
# its publish timeout (seconds); the rest allows for clocks apart between API nodes and the
# bus. A copy written again later (a replay) lands later than this, and is refused.
REPLAY_WINDOW = timedelta(minutes=5)
_NOT_PARSED = object()


class UndecodableRecord(ValueError):
    """An intake record refused whole: `reason` is a stable short code, the message says why."""

    def __init__(self, message: str, *, is_json: bool = True, reason: str = "undecodable") -> None:
        super().__init__(message)
        self.is_json = is_json
        self.reason = reason


def member_status_id(topic: str, partition: int, offset: int) -> str:
    """The TAXII status id of a member's Kafka record, from where the record landed: the same
    on a redelivery, and computable by the producer from what the broker acknowledged."""
    return str(uuid.uuid5(_RECORD_NAMESPACE, f"{topic}/{partition}/{offset}"))


def encode_intake(
    *,
    status_id: str,
    member: str,
    account: str,
    received: str,
    request_id: str,
    objects: list[Any],
) -> bytes:
    """The intake record for an accepted request: what decode() reads back."""
    return orjson.dumps(
        {
            "v": INTAKE_VERSION,
            "status_id": status_id,
            "member": member,
            "account": account,
            "received": received,
            "request_id": request_id,
            "objects": objects,
        }
    )


def _from_hub(data: dict[str, Any], limits: Limits) -> Submission:
    if data["v"] != INTAKE_VERSION:
        raise UndecodableRecord(f"intake record version {data['v']!r} is unknown")
    fields = ("status_id", "member", "account", "received", "request_id")
    missing = [f for f in fields if not isinstance(data.get(f), str)]
    if missing or not isinstance(data.get("objects"), list):
        raise UndecodableRecord(f"intake record lacks {missing or ['objects']}")
    return Submission(
        status_id=data["status_id"],
        member=data["member"],
        account=data["account"],
        received=data["received"],
        request_id=data["request_id"],
        items=_items(data["objects"], limits),
    )


def _items(objects: Sequence[Any], limits: Limits) -> tuple[Item, ...]:
    """Each object as an Item; one larger than `max_object_bytes` arrives refused."""
    items = []
    for i, obj in enumerate(objects):
        item = Item(i, obj)
        # Measured as the hub stores and delivers it: compact JSON, whatever the sender's spacing.
        size = len(orjson.dumps(obj))
        if size > limits.max_object_bytes:
            item = item.refuse(
                "too-large",
                f"objects[{i}] ({item.id or 'no id'}): {size:,} bytes as JSON; this hub accepts "
                f"{limits.max_object_bytes:,} bytes per object (hub.limits.max_object_bytes)",
            )
        items.append(item)
    return tuple(items)


def _parsed(value: bytes, limits: Limits) -> tuple[Any, HubError | None]:
    """The body checks of a POST on a record value: its JSON, or the refusal it gets."""
    try:
        return parse_body(value, limits.max_depth), None
    except HubError as exc:
        return _NOT_PARSED, exc


def _spliceable(refusal: HubError | None) -> bool:
    # A refused record's value is spliced into its `rejected` entry only when it is JSON that
    # readers of `rejected` can parse again (not too deep); otherwise it goes as base64.
    return refusal is None or isinstance(refusal, InvalidStix)


def _body_refused(exc: HubError) -> UndecodableRecord:
    """A record refused for what a POST of its value would be refused for."""
    if isinstance(exc, TooDeep):
        return UndecodableRecord(
            f"intake record refused: {exc.description}", is_json=False, reason="too-deep"
        )
    return UndecodableRecord(f"intake record refused: {exc.description}")


def _unparsable(exc: HubError) -> UndecodableRecord:
    """A record whose value parse_body refused: not JSON, too deep, or integers too large."""
    if isinstance(exc, TooDeep | InvalidStix):
        return _body_refused(exc)
    return UndecodableRecord(f"intake record is not JSON: {exc.description}", is_json=False)


def _not_json(exc: orjson.JSONDecodeError) -> UndecodableRecord:
    return UndecodableRecord(f"intake record is not JSON: {exc}", is_json=False)


@dataclass(frozen=True)
class Decode:
    """An intake record → a Submission, or UndecodableRecord saying what is wrong.

    A record is read only on the topic its kind belongs to (module docstring), so a member
    that may write its own topic cannot pass for the hub or for another member.
    """

    federation: Federation
    topics: Topics = field(default_factory=Topics)
    # The hub's intake keys as they are now (None before any node made them).
    intake_keys: Callable[[], IntakeKeys | None] = field(kw_only=True)
    keys: MemberKeys = field(init=False, repr=False, compare=False)
    members: dict[str, Member] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", MemberKeys.from_federation(self.federation))
        object.__setattr__(self, "members", {m.id: m for m in self.federation.members})

    @property
    def limits(self) -> Limits:
        return self.federation.hub.limits

    def __call__(self, record: Record) -> Submission:
        member = self.topics.intake_member(record.topic)
        if member is not None:
            return self._from_member(record, member)
        return self._from_api(record)

    def _from_api(self, record: Record) -> Submission:
        keys = self.intake_keys()
        if keys is None:
            # Not a refusal: the records are sound, the hub is not; read them once it is.
            raise IntakeKeyError(
                "no intake key: a hub node makes it at its first start, in the keys dir"
            )
        # Written before any node could authenticate it (an upgrade's backlog): read as then.
        backlog = keys.predates(record.topic, record.partition, record.offset)
        if not backlog:
            try:
                keys.check(record.header(MAC_HEADER), record.value)
            except IntakeMacError as exc:
                raise self._unauthenticated(record, exc) from exc
        try:
            data = orjson.loads(record.value)
        except orjson.JSONDecodeError as exc:
            raise _not_json(exc) from exc
        if not (isinstance(data, dict) and "v" in data):
            raise self._wrong_topic(record)
        if backlog:
            # The API before the intake key did not check nesting: the check it makes now.
            try:
                check_depth(data, self.limits.max_depth)
            except TooDeep as exc:
                raise _body_refused(exc) from exc
        submission = _from_hub(data, self.limits)
        if not backlog:
            self._check_fresh(record, submission)
        return submission

    def _unauthenticated(self, record: Record, exc: IntakeMacError) -> UndecodableRecord:
        data, refusal = _parsed(record.value, self.limits)
        if exc.reason == "intake-mac-missing" and isinstance(data, dict) and "v" not in data:
            return self._wrong_topic(record)  # a member's own record: say where it belongs
        return UndecodableRecord(
            f"intake record refused: {exc.message}",
            is_json=_spliceable(refusal),
            reason=exc.reason,
        )

    def _wrong_topic(self, record: Record) -> UndecodableRecord:
        return UndecodableRecord(
            f"a member's own records do not belong on {record.topic!r} (the hub's API "
            f"writes there): produce them to {self.topics.member_intake('<member-id>')!r}, "
            f"signed in the {SIGNATURE_HEADER!r} header",
            is_json=_spliceable(_parsed(record.value, self.limits)[1]),
            reason="wrong-topic",
        )

    @staticmethod
    def _check_fresh(record: Record, submission: Submission) -> None:
        """The record landed on the bus soon after the API received it, or it is a copy."""
        appended = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
        late = appended - timestamps.parse(submission.received)
        if late > REPLAY_WINDOW:
            raise UndecodableRecord(
                f"intake record refused: written to {record.topic!r} {late} after the hub's "
                f"API received it ({submission.received}), which writes it at once: a copy "
                f"written again (a replay), not processed twice (status {submission.status_id})",
                reason="intake-replayed",
            )

    def _from_member(self, record: Record, member: str) -> Submission:
        data, refusal = _parsed(record.value, self.limits)
        # Nothing on a member's topic is believed before its signature is checked.
        self._authenticate(record, member, is_json=_spliceable(refusal))
        if refusal is not None:
            raise _unparsable(refusal) from refusal
        if isinstance(data, dict) and "v" in data:
            raise UndecodableRecord(
                f"{record.topic!r} is the intake topic of {member!r}: it takes STIX bundles "
                'and TAXII envelopes; the hub\'s own intake records (with a "v") are refused',
                reason="wrong-topic",
            )
        account = self._account(record, member)
        try:
            # The same checks, in the same words, as a POST to the inbox gets.
            objects = envelope_objects(data, self.limits.max_objects)
        except HubError as exc:
            raise _body_refused(exc) from exc
        # The same record read twice (a redelivery) must make the same status, not a second.
        status_id = member_status_id(record.topic, record.partition, record.offset)
        received = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
        return Submission(
            status_id=status_id,
            member=member,
            account=account.username,
            received=received.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            request_id=(record.header("request-id") or status_id.encode()).decode(
                "utf-8", "replace"
            ),
            items=_items(objects, self.limits),
        )

    def _authenticate(self, record: Record, member: str, *, is_json: bool) -> None:
        """The record value is signed by one of `member`'s keys, or UndecodableRecord says how
        it is not (the reasons are those of object signatures, README "Member signatures")."""
        if member not in self.members:
            raise UndecodableRecord(
                f"{record.topic!r} is the intake topic of {member!r}, which the federation "
                "file does not list",
                is_json=is_json,
                reason="unknown-member",
            )
        raw = record.header(SIGNATURE_HEADER)
        if raw is None:
            raise UndecodableRecord(
                f"unsigned: a record on {record.topic!r} needs the {SIGNATURE_HEADER!r} header, "
                f"a detached JWS (EdDSA) over the record value made with one of {member!r}'s "
                "public_keys",
                is_json=is_json,
                reason="member-signature-missing",
            )
        try:
            self.keys.check(raw.decode("ascii"), record.value, member)
        except UnicodeDecodeError as exc:
            raise UndecodableRecord(
                f"the record signature is not usable: the {SIGNATURE_HEADER!r} header is not ASCII",
                is_json=is_json,
                reason="member-signature-malformed",
            ) from exc
        except MemberSignatureError as exc:
            # check() speaks of objects; what it checked here is the whole record value.
            message = exc.message.replace("the object", "the record value")
            raise UndecodableRecord(
                f"record signature refused: {message}", is_json=is_json, reason=exc.reason
            ) from exc

    def _account(self, record: Record, member: str) -> Account:
        """The account the status and the audit name: the header's, else the member's first
        account with the submit role. Either way one of `member`'s own."""
        raw = record.header(ACCOUNT_HEADER)
        if raw is None:
            found = next(
                (a for a in self.members[member].accounts if a.can("submit") and not a.disabled),
                None,
            )
            if found is None:
                raise UndecodableRecord(
                    f"member {member!r} has no enabled account with the submit role",
                    reason="not-authorized",
                )
            return found
        username = raw.decode("utf-8", "replace")
        account = self.federation.account(username)
        if (
            account is None
            or account.disabled
            or account.member != member
            or not account.can("submit")
        ):
            raise UndecodableRecord(
                f"account {username!r} may not submit for {member!r} (the {ACCOUNT_HEADER!r} "
                "header must name one of the member's own accounts with the submit role)",
                reason="not-authorized",
            )
        return account
