"""decode: an intake record → a Submission (or a refusal of the whole record).

Two kinds of record:
- what the hub's API wrote (`"v": 1`), with an HMAC over the record value in the
  `cirt-hub-intake-mac` header, made with the hub's intake key (hub.signing.intake). The API
  writes a member's submission to that member's own topic (`<prefix>intake.member-<id>`:
  one queue per member, hub.pipeline.worker); API nodes of earlier releases wrote them all
  to `<prefix>intake`, which is read still. Only the hub's principal may write there; the
  MAC proves it whatever the ACLs turn out to be, the record's time on the bus shows a copy
  written again later (a replay), and on a member's topic it must be that member's.
- on `<prefix>intake.member-<id>` without a MAC: a STIX bundle or TAXII envelope that
  member's own producer wrote, with a detached JWS over the record value in the
  `cirt-hub-signature` header, made with one of the member's `public_keys`. Kafka ACLs let
  only the member (and the hub) write its topic; the signature proves at the hub who wrote
  it, whatever the ACLs turn out to be. Or, without that header, a record whose value is
  itself a JWS (compact or flattened JSON serialization, alg EdDSA, one of the member's
  keys) with the STIX content as its payload, verified before the payload is parsed. It
  may be no larger than a POST's body; a single STIX object may stand for a bundle.

Either way the body gets the checks a POST gets (hub.stix.envelope), and each object larger
than `hub.limits.max_object_bytes` arrives refused: the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from hub.bus import Record
from hub.errors import HubError, InvalidStix
from hub.federation import Account, Federation, Limits, Member
from hub.model import Item, RefusalCode, Submission
from hub.records import (
    ACCOUNT,
    INTAKE_MAC,
    SIGNATURE,
    IntakeRecord,
    MemberIntakeRecord,
    MemberJwsRecord,
    RecordError,
    member_status_id,
)
from hub.signing.intake import IntakeKeyError, IntakeKeys, IntakeMacError
from hub.signing.jws import MalformedJws, looks_compact, looks_flattened, parse_attached
from hub.signing.members import MemberKeys, MemberSignatureError
from hub.stix import timestamps
from hub.stix.envelope import TooDeep, check_depth, parse_body, record_objects
from hub.topics import Topics

# How long after its `received` an API record may land on intake. The API publishes within
# its publish timeout (seconds); the rest allows for clocks apart between API nodes and the
# bus. A copy written again later (a replay) lands later than this, and is refused.
REPLAY_WINDOW = timedelta(minutes=5)
_NOT_PARSED = object()


class UndecodableRecord(ValueError):
    """An intake record refused whole: `reason` is a stable short code, the message says why."""

    def __init__(
        self, message: str, *, is_json: bool = True, reason: RefusalCode = RefusalCode.UNDECODABLE
    ) -> None:
        super().__init__(message)
        self.is_json = is_json
        self.reason = reason


def _from_hub(data: dict[str, Any], limits: Limits, members: Mapping[str, Member]) -> Submission:
    try:
        intake = IntakeRecord.from_doc(data)
    except RecordError as exc:
        raise UndecodableRecord(str(exc)) from exc
    return Submission(
        status_id=intake.status_id,
        member=intake.member,
        account=intake.account,
        received=intake.received,
        request_id=intake.request_id,
        items=_items(intake.objects, limits),
        sender=members.get(intake.member),
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
                RefusalCode.TOO_LARGE,
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
            f"intake record refused: {exc.description}", is_json=False, reason=RefusalCode.TOO_DEEP
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
        if member is None:
            return self._from_api(record)
        if record.header(INTAKE_MAC) is not None:
            return self._from_api(record, member)
        return self._from_member(record, member)

    def _from_api(self, record: Record, member: str | None = None) -> Submission:
        """A record the hub's API wrote: on `<prefix>intake`, or on `member`'s own topic."""
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
                keys.check(record.header(INTAKE_MAC), record.value)
            except IntakeMacError as exc:
                if member is not None:
                    # Written by whoever can write the member's topic, claiming to be the
                    # hub: refused without being read further.
                    raise UndecodableRecord(
                        f"intake record refused: {exc.message}", is_json=False, reason=exc.reason
                    ) from exc
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
        submission = _from_hub(data, self.limits, self.members)
        if member is not None and submission.member != member:
            raise UndecodableRecord(
                f"intake record refused: a submission of {submission.member!r} on "
                f"{record.topic!r}, the intake topic of {member!r}",
                reason=RefusalCode.WRONG_TOPIC,
            )
        if not backlog:
            self._check_fresh(record, submission)
        return submission

    def _unauthenticated(self, record: Record, exc: IntakeMacError) -> UndecodableRecord:
        data, refusal = _parsed(record.value, self.limits)
        if (
            exc.reason is RefusalCode.INTAKE_MAC_MISSING
            and isinstance(data, dict)
            and "v" not in data
        ):
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
            f"signed in the {SIGNATURE!r} header",
            is_json=_spliceable(_parsed(record.value, self.limits)[1]),
            reason=RefusalCode.WRONG_TOPIC,
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
                reason=RefusalCode.INTAKE_REPLAYED,
            )

    def _from_member(self, record: Record, member: str) -> Submission:
        limit = self.limits.max_content_length
        if len(record.value) > limit:
            # Refused as a POST of that body is (413), before anything reads it.
            raise UndecodableRecord(
                f"intake record refused: it is {len(record.value):,} bytes; max_content_length "
                f"is {limit:,} (hub.limits.max_content_length)",
                is_json=False,
                reason=RefusalCode.TOO_LARGE,
            )
        data, refusal = _parsed(record.value, self.limits)
        if record.header(SIGNATURE) is None and (
            looks_flattened(data) or (refusal is not None and looks_compact(record.value))
        ):
            try:
                return self._from_jws(record, MemberJwsRecord.from_record(record, member), data)
            except UndecodableRecord as exc:
                # Its `rejected` entry copies the record as sent: a compact JWS is no JSON.
                exc.is_json = exc.is_json and _spliceable(refusal)
                raise
        sent = MemberIntakeRecord.from_record(record, member)
        # Nothing on a member's topic is believed before its signature is checked.
        self._authenticate(record, sent, sent.signature, record.value, is_json=_spliceable(refusal))
        return self._submission(record, sent, data, refusal)

    def _from_jws(self, record: Record, sent: MemberJwsRecord, doc: Any) -> Submission:
        """A record whose value is a JWS: its signature checked before its payload is read."""
        try:
            jws = parse_attached(record.value, doc)
        except MalformedJws as exc:
            self._check_member(record, sent.member, is_json=True)
            raise UndecodableRecord(
                f"record JWS refused: the member signature is not usable: {exc}",
                reason=RefusalCode.MEMBER_SIGNATURE_MALFORMED,
            ) from exc
        self._authenticate(record, sent, jws.detached.encode(), jws.payload, is_json=True)
        data, refusal = _parsed(jws.payload, self.limits)
        if refusal is not None:
            words = "refused" if isinstance(refusal, TooDeep | InvalidStix) else "not JSON"
            raise UndecodableRecord(
                f"the record's JWS payload is {words}: {refusal.description}",
                reason=_unparsable(refusal).reason,
            ) from refusal
        return self._submission(record, sent, data, None)

    def _submission(
        self,
        record: Record,
        sent: MemberIntakeRecord | MemberJwsRecord,
        data: Any,
        refusal: HubError | None,
    ) -> Submission:
        """The authenticated record's body as a Submission, checked as a POST's body is."""
        member = sent.member
        if refusal is not None:
            raise _unparsable(refusal) from refusal
        if isinstance(data, dict) and "v" in data and "type" not in data:
            raise UndecodableRecord(
                f"{record.topic!r} is the intake topic of {member!r}: it takes STIX bundles, "
                "TAXII envelopes and single STIX objects; the hub's own intake records (with "
                f'a "v") are refused without the {INTAKE_MAC!r} the hub\'s API puts on them',
                reason=RefusalCode.WRONG_TOPIC,
            )
        account = self._account(sent)
        try:
            # The same checks, in the same words, as a POST to the inbox gets.
            objects = record_objects(data, self.limits.max_objects)
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
            request_id=sent.request_id if sent.request_id is not None else status_id,
            items=_items(objects, self.limits),
            sender=self.members.get(member),
        )

    def _check_member(self, record: Record, member: str, *, is_json: bool) -> None:
        if member not in self.members:
            raise UndecodableRecord(
                f"{record.topic!r} is the intake topic of {member!r}, which the federation "
                "file does not list",
                is_json=is_json,
                reason=RefusalCode.UNKNOWN_MEMBER,
            )

    def _authenticate(
        self,
        record: Record,
        sent: MemberIntakeRecord | MemberJwsRecord,
        raw: bytes | None,
        payload: bytes,
        *,
        is_json: bool,
    ) -> None:
        """`payload` (the record value, or its JWS's payload) is signed by one of the
        member's keys in `raw`, or UndecodableRecord says how it is not (the reasons are
        those of object signatures, README "Member signatures")."""
        member = sent.member
        self._check_member(record, member, is_json=is_json)
        if raw is None:
            raise UndecodableRecord(
                f"unsigned: a record on {record.topic!r} needs the {SIGNATURE!r} header, "
                f"a detached JWS (EdDSA) over the record value made with one of {member!r}'s "
                "public_keys, or must itself be such a JWS (compact or flattened JSON) with "
                "the STIX content as its payload",
                is_json=is_json,
                reason=RefusalCode.MEMBER_SIGNATURE_MISSING,
            )
        signed = "the record value" if isinstance(sent, MemberIntakeRecord) else "the payload"
        where = "record signature" if isinstance(sent, MemberIntakeRecord) else "record JWS"
        try:
            self.keys.check(raw.decode("ascii"), payload, member)
        except UnicodeDecodeError as exc:
            raise UndecodableRecord(
                f"the record signature is not usable: the {SIGNATURE!r} header is not ASCII",
                is_json=is_json,
                reason=RefusalCode.MEMBER_SIGNATURE_MALFORMED,
            ) from exc
        except MemberSignatureError as exc:
            # check() speaks of objects; what it checked here is the whole record value.
            message = exc.message.replace("the object", signed)
            raise UndecodableRecord(
                f"{where} refused: {message}", is_json=is_json, reason=exc.reason
            ) from exc

    def _account(self, sent: MemberIntakeRecord | MemberJwsRecord) -> Account:
        """The account the status and the audit name: the header's, else the member's first
        account with the submit role. Either way one of the member's own."""
        member, username = sent.member, sent.account
        if username is None:
            found = next(
                (a for a in self.members[member].accounts if a.can("submit") and not a.disabled),
                None,
            )
            if found is None:
                raise UndecodableRecord(
                    f"member {member!r} has no enabled account with the submit role",
                    reason=RefusalCode.NOT_AUTHORIZED,
                )
            return found
        account = self.federation.account(username)
        if (
            account is None
            or account.disabled
            or account.member != member
            or not account.can("submit")
        ):
            raise UndecodableRecord(
                f"account {username!r} may not submit for {member!r} (the {ACCOUNT!r} "
                "header must name one of the member's own accounts with the submit role)",
                reason=RefusalCode.NOT_AUTHORIZED,
            )
        return account
