"""Each record kind of the hub's topics: written and read back the same, and records as the
previous release wrote them (literal below, byte for byte) still read, so a running hub's
topics stay readable across the upgrade and a hub of either release reads the other's."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace

import orjson
import pytest

from hub.bus import Message, Record
from hub.records import (
    AuditRecord,
    Copy,
    DecisionRecord,
    FeedRecord,
    HeldRecord,
    IntakeRecord,
    MemberIntakeRecord,
    MemberJwsRecord,
    ObservationRecord,
    Placement,
    RecordError,
    RefusedObject,
    RefusedRecord,
    RejectedEntry,
    ReleasedMarker,
    StatusRecord,
    member_status_id,
)
from hub.topics import Topics

TOPICS = Topics("t.")
STIX = b"application/stix+json;version=2.1"
OBJ = {"type": "indicator", "id": "indicator--1", "modified": "2026-12-01T00:00:00.000Z"}


def as_read(message: Message, offset: int = 7) -> Record:
    """`message` as a consumer gets it back from the bus."""
    return Record(
        message.topic, 0, offset, message.key, message.value, message.headers, 1_765_000_000_000
    )


def test_an_intake_record_reads_back_and_as_the_previous_release_wrote_it() -> None:
    received = "2026-12-01T00:00:00.000Z"
    record = IntakeRecord("s-1", "ng-cert", "ng-cert-submit", received, "r", [OBJ])
    message = record.to_message(TOPICS.member_intake("ng-cert"), ("cirt-hub-intake-mac", b"k.m"))
    assert message.key == b"ng-cert" and message.headers == (("cirt-hub-intake-mac", b"k.m"),)
    assert IntakeRecord.from_doc(orjson.loads(message.value)) == record
    previous = (
        b'{"v":1,"status_id":"s-1","member":"ng-cert","account":"ng-cert-submit",'
        b'"received":"2026-12-01T00:00:00.000Z","request_id":"r","objects":[' + orjson.dumps(OBJ)
    ) + b"]}"
    assert message.value == previous
    assert IntakeRecord.from_doc(orjson.loads(previous)) == record


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ({"v": 2}, "intake record version 2 is unknown"),
        ({"v": 1, "status_id": "s"}, "intake record lacks ['member', 'account', 'received'"),
        (
            {"v": 1, "status_id": "s", "member": "m", "account": "a", "received": "r"}
            | {"request_id": "q"},
            "intake record lacks ['objects']",
        ),
    ],
)
def test_an_intake_record_that_lacks_something_says_what(doc: dict, says: str) -> None:
    with pytest.raises(RecordError, match=says.replace("[", r"\[")):
        IntakeRecord.from_doc(doc)


def test_a_member_jws_record_is_keyed_by_its_member_and_typed_as_a_jws() -> None:
    compact = MemberJwsRecord("ng-cert", b"eyJh.eyJi.c2ln", "ng-cert-submit", "req-1")
    message = compact.to_message(TOPICS)
    assert message.topic == "t.intake.member-ng-cert" and message.key == b"ng-cert"
    assert ("content-type", b"application/jose") in message.headers
    assert "cirt-hub-signature" not in dict(message.headers)
    assert MemberJwsRecord.from_record(as_read(message), "ng-cert") == compact
    flattened = MemberJwsRecord("ng-cert", b'{"payload": "eyJi"}').to_message(TOPICS)
    assert flattened.headers == (("content-type", b"application/jose+json"),)


def test_a_member_record_reads_back_and_as_the_previous_connector_wrote_it() -> None:
    record = MemberIntakeRecord("ng-cert", b'{"type":"bundle"}', b"jws", "ng-cert-submit")
    message = record.to_message(TOPICS)
    assert message.topic == "t.intake.member-ng-cert" and message.key == b"ng-cert"
    assert MemberIntakeRecord.from_record(as_read(message), "ng-cert") == record
    previous = Record(
        "t.intake.member-ng-cert",
        0,
        3,
        b"ng-cert",
        b'{"type":"bundle"}',
        (
            ("cirt-hub-signature", b"jws"),
            ("content-type", STIX),
            ("cirt-hub-account", b"ng-cert-submit"),
        ),
        0,
    )
    assert message.headers == previous.headers
    assert MemberIntakeRecord.from_record(previous, "ng-cert") == record
    unsigned = MemberIntakeRecord.from_record(replace(previous, headers=()), "ng-cert")
    assert unsigned.signature is None and unsigned.account is None
    with_request = replace(record, request_id="req-9")
    assert MemberIntakeRecord.from_record(as_read(with_request.to_message(TOPICS)), "ng-cert") == (
        with_request
    )
    # The status id a producer computes from where the broker put its record: unchanged.
    assert member_status_id("t.intake.member-ng-cert", 0, 3) == (
        "f38df35a-3449-52de-ab57-718be07ce58c"
    )
    # docs/connectors/kafka-native.md's example.
    assert member_status_id("cirt-hub.intake.member-ng-cert", 0, 3) == (
        "07e6c8ba-0bb1-5ac5-a240-b3d8d49c4296"
    )


def feed(**changes: object) -> FeedRecord:
    record = FeedRecord(
        collection="member-gh-cert",
        object_id="indicator--1",
        value=orjson.dumps(OBJ),
        submitter="ng-cert",
        date_added="2026-12-01T00:00:01.000000Z",
        received="2026-12-01T00:00:00.000Z",
        status_id="s-1",
    )
    return replace(record, **changes)


@pytest.mark.parametrize(
    "record",
    [
        feed(),
        feed(accounts=("gh-cert-read", "gh-cert-soc"), onward_sharing=False),
        feed(submitter="anonymous", status_id=None),
        feed(collection="public", submitter="hub-west", received=None, status_id=None),
    ],
    ids=["member", "red", "anonymous", "predefined"],
)
def test_a_feed_record_reads_back(record: FeedRecord) -> None:
    message = record.to_message(TOPICS)
    assert message.topic == f"t.feed.{record.collection}" and message.key == b"indicator--1"
    assert FeedRecord.from_record(as_read(message), record.collection) == record


# What the previous release wrote on feeds, from its four writers (headers in their order).
PREVIOUS_FEEDS = {
    "pipeline": (
        ("content-type", STIX),
        ("submitter", b"ng-cert"),
        ("date-added", b"2026-12-01T00:00:01.000000Z"),
        ("received", b"2026-12-01T00:00:00.000Z"),
        ("status-id", b"s-1"),
        ("accounts", b"gh-cert-read"),
        ("onward-sharing", b"no"),
    ),
    # The releaser put `date-added` last.
    "released": (
        ("content-type", STIX),
        ("submitter", b"ng-cert"),
        ("received", b"2026-12-01T00:00:00.000Z"),
        ("status-id", b"s-1"),
        ("accounts", b"gh-cert-read"),
        ("onward-sharing", b"no"),
        ("date-added", b"2026-12-01T00:00:01.000000Z"),
    ),
}


@pytest.mark.parametrize("writer", sorted(PREVIOUS_FEEDS))
def test_feed_records_of_the_previous_release_read(writer: str) -> None:
    previous = Record(
        "t.feed.member-gh-cert",
        0,
        1,
        b"indicator--1",
        orjson.dumps(OBJ),
        PREVIOUS_FEEDS[writer],
        0,
    )
    read = FeedRecord.from_record(previous, "member-gh-cert")
    assert read == feed(accounts=("gh-cert-read",), onward_sharing=False)
    # Written again by this release: the same headers, in the pipeline's order.
    assert read.to_message(TOPICS).headers == PREVIOUS_FEEDS["pipeline"]


def test_the_previous_releases_alerts_and_definitions_read_with_their_submitter() -> None:
    """Alerts said `hub`, the TLP definitions the hub's id; both read as written (this
    release writes the hub's id on both)."""
    alert = Record(
        "t.feed.alerts",
        0,
        0,
        b"grouping--1",
        b"{}",
        (
            ("content-type", STIX),
            ("submitter", b"hub"),
            ("date-added", b"2026-12-01T00:00:02.000Z"),
            ("received", b"2026-12-01T00:00:00.000Z"),
            ("accounts", b"ng-cert-read,gh-cert-read"),
        ),
        0,
    )
    read = FeedRecord.from_record(alert, "alerts")
    assert read.submitter == "hub" and read.accounts == ("ng-cert-read", "gh-cert-read")
    assert read.status_id is None and read.onward_sharing
    assert read.to_message(TOPICS).headers == alert.headers
    definition = Record(
        "t.feed.public",
        0,
        0,
        b"marking-definition--1",
        b"{}",
        (
            ("content-type", STIX),
            ("submitter", b"hub-west"),
            ("date-added", b"2026-12-01T00:00:02.000Z"),
        ),
        0,
    )
    read = FeedRecord.from_record(definition, "public")
    assert (read.submitter, read.received, read.status_id) == ("hub-west", None, None)
    assert read.to_message(TOPICS).headers == definition.headers


def test_a_held_delivery_reads_back_and_as_the_previous_release_wrote_it() -> None:
    held = HeldRecord(feed(), "2026-12-02T00:00:00Z")
    message = held.to_message(TOPICS)
    assert message.topic == "t.held" and message.value == orjson.dumps(OBJ)
    assert HeldRecord.from_record(as_read(message)) == held
    assert HeldRecord.release_at_of(as_read(message)) == "2026-12-02T00:00:00Z"
    assert ReleasedMarker.from_record(as_read(message)) is None
    previous = (
        ("collection", b"member-gh-cert"),
        ("release-at", b"2026-12-02T00:00:00Z"),
        *PREVIOUS_FEEDS["pipeline"][:5],
    )
    assert message.headers == previous
    assert HeldRecord.from_record(replace(as_read(message), headers=previous)) == held


def test_a_release_marker_reads_back_and_as_the_previous_release_wrote_it() -> None:
    marker = ReleasedMarker(41, b"indicator--1")
    message = marker.to_message(TOPICS)
    previous = Message("t.held", b"{}", key=b"indicator--1", headers=(("released", b"41"),))
    assert message == previous
    assert ReleasedMarker.from_record(as_read(previous)) == marker


def decision() -> DecisionRecord:
    return DecisionRecord.of(
        object_id="indicator--1",
        version="2026-12-01T00:00:00.000Z",
        type="indicator",
        sender="ng-cert",
        account="ng-cert-submit",
        status_id="s-1",
        received="2026-12-01T00:00:00.000Z",
        routed_at="2026-12-01T00:00:01.000Z",
        policy_version="p",
        verdicts=[
            {"member": "gh-cert", "allowed": True, "rule": "r", "reason": "why"},
            {"member": "sn-cert", "allowed": False, "rule": "r", "reason": "why not"},
        ],
        placements=[Placement("member-gh-cert", ("gh-cert-read",), None)],
    )


PREVIOUS_DECISION = (
    b'{"v":1,"object_id":"indicator--1","version":"2026-12-01T00:00:00.000Z",'
    b'"type":"indicator","sender":"ng-cert","account":"ng-cert-submit","status_id":"s-1",'
    b'"received":"2026-12-01T00:00:00.000Z","routed_at":"2026-12-01T00:00:01.000Z",'
    b'"policy_version":"p","verdicts":[{"member":"gh-cert","allowed":true,"rule":"r",'
    b'"reason":"why"},{"member":"sn-cert","allowed":false,"rule":"r","reason":"why not"}],'
    b'"deliveries":[{"collection":"member-gh-cert","accounts":["gh-cert-read"],'
    b'"release_at":null}]}'
)


def test_a_decision_reads_back_and_as_the_previous_release_wrote_it() -> None:
    message = decision().to_message(TOPICS)
    assert message == Message(
        "t.decisions", PREVIOUS_DECISION, key=b"indicator--1", headers=(("sender", b"ng-cert"),)
    )
    read = DecisionRecord.from_record(as_read(message))
    assert read == decision()
    assert read.allowed == ("gh-cert",) and read.sender == "ng-cert"
    assert read.placements == (Placement("member-gh-cert", ("gh-cert-read",)),)


def test_a_decision_keeps_fields_it_does_not_know_for_the_audit_chain() -> None:
    later = orjson.loads(PREVIOUS_DECISION) | {"v": 2, "added_later": [1, 2]}
    read = DecisionRecord.from_record(as_read(Message("t.decisions", orjson.dumps(later))))
    assert read.doc == later and read.to_message(TOPICS).value == orjson.dumps(later)


def test_an_audit_record_reads_back_and_as_the_previous_chainer_wrote_it() -> None:
    doc = orjson.loads(PREVIOUS_DECISION) | {"seq": 3, "prev": "0" * 64, "hash": "a" * 64}
    message = AuditRecord(doc).to_message(TOPICS)
    assert message == Message(
        "t.audit", orjson.dumps(doc), key=b"indicator--1", headers=(("sender", b"ng-cert"),)
    )
    read = AuditRecord.from_record(as_read(message))
    assert (read.seq, read.hash, read.sender, read.object_id) == (
        3,
        "a" * 64,
        "ng-cert",
        "indicator--1",
    )


def test_an_observation_reads_back_and_as_the_previous_release_wrote_it() -> None:
    seen = ObservationRecord(
        object_id="indicator--1",
        version="2026-12-01T00:00:00.000Z",
        sender="ng-cert",
        country="NG",
        regions=("west-africa",),
        received="2026-12-01T00:00:00.000Z",
        keys=("domain-name:abc",),
        sighting_of=None,
        visible=(("gh-cert", "indicator--1"),),
    )
    message = seen.to_message(TOPICS)
    previous = (
        b'{"object_id":"indicator--1","version":"2026-12-01T00:00:00.000Z","sender":"ng-cert",'
        b'"country":"NG","regions":["west-africa"],"received":"2026-12-01T00:00:00.000Z",'
        b'"keys":["domain-name:abc"],"sighting_of":null,"visible":{"gh-cert":"indicator--1"}}'
    )
    assert message == Message("t.observations", previous, key=b"indicator--1")
    assert ObservationRecord.from_record(as_read(message)) == seen


STATUS = {"id": "s-1", "status": "complete", "total_count": 1}


def test_statuses_read_back_and_as_the_previous_release_wrote_them() -> None:
    final = StatusRecord("ng-cert", STATUS, (("member-gh-cert", "indicator--1", "v1"),))
    message = final.to_message(TOPICS)
    assert message == Message(
        "t.status",
        orjson.dumps(STATUS),
        key=b"s-1",
        headers=(
            ("member", b"ng-cert"),
            ("delivered", b'[["member-gh-cert","indicator--1","v1"]]'),
        ),
    )
    assert StatusRecord.from_record(as_read(message)) == final
    assert final.complete and final.status_id == "s-1"
    # The API's pending status: no `delivered`.
    pending_doc = {**STATUS, "status": "pending"}
    pending = Message(
        "t.status", orjson.dumps(pending_doc), key=b"s-1", headers=(("member", b"ng-cert"),)
    )
    read = StatusRecord.from_record(as_read(pending))
    assert read == StatusRecord("ng-cert", pending_doc) and not read.complete
    assert read.to_message(TOPICS) == pending
    # A refused record's status: nothing delivered.
    nothing = StatusRecord("ng-cert", STATUS, ()).to_message(TOPICS)
    assert nothing.headers == (("member", b"ng-cert"), ("delivered", b"[]"))


def test_a_refused_object_reads_back_and_as_the_previous_release_wrote_it() -> None:
    refused = RefusedObject(
        "s-1", "ng-cert", "ng-cert-submit", "r", 2, "indicator--1", "unmarked", "why", OBJ
    )
    message = refused.to_message(TOPICS)
    previous = (
        b'{"status_id":"s-1","member":"ng-cert","account":"ng-cert-submit","received":"r",'
        b'"index":2,"id":"indicator--1","reason":"unmarked","message":"why","object":'
        + orjson.dumps(OBJ)
        + b"}"
    )
    assert message == Message("t.rejected", previous, key=b"s-1")
    entry = RejectedEntry.from_record(as_read(message))
    assert not entry.whole_record and entry.member == "ng-cert" and entry.doc["object"] == OBJ


@pytest.mark.parametrize("copy", list(Copy))
def test_a_refused_record_reads_back_and_as_the_previous_release_wrote_it(copy: Copy) -> None:
    value = b'{"type": "bundle"}'
    refused = RefusedRecord(
        "wrong-topic", "why", "t.intake.member-ng-cert", 0, 5, "ng-cert", b"ng-cert", value, copy
    )
    message = refused.to_message(TOPICS)
    head = (
        b'{"reason":"wrong-topic","message":"why","intake":{"topic":"t.intake.member-ng-cert",'
        b'"partition":0,"offset":5},"member":"ng-cert"'
    )
    previous = {
        Copy.JSON: head + b',"record":' + value + b"}",
        Copy.BASE64: head + b',"record_base64":"' + base64.b64encode(value) + b'"}',
        Copy.HEAD: head
        + b',"record_bytes":18,"record_sha256":"'
        + hashlib.sha256(value).hexdigest().encode()
        + b'","record_head_base64":"'
        + base64.b64encode(value)
        + b'","record_truncated":true}',
    }[copy]
    assert message == Message("t.rejected", previous, key=b"ng-cert")
    entry = RejectedEntry.from_record(as_read(message))
    assert entry.whole_record and entry.member == "ng-cert"
    assert entry.doc["intake"] == {"topic": "t.intake.member-ng-cert", "partition": 0, "offset": 5}


def test_a_record_refused_on_the_shared_intake_names_its_member_from_the_record() -> None:
    """Refused before topics were named: the member is in the API record copied along."""
    previous = Record(
        "t.rejected",
        0,
        0,
        None,
        b'{"reason":"r","message":"m","intake":{"partition":0,"offset":1},'
        b'"record":{"v":1,"member":"gh-cert"}}',
        (),
        0,
    )
    assert RejectedEntry.from_record(previous).member == "gh-cert"
