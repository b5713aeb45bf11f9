"""emit: a routed submission → the bus messages that carry it on (feeds, status, rejected).

Each delivery is written as it is: its content, to its collection's feed, or to `held`
while an embargo lasts. Headers say who sent it (or "anonymous"), which reader accounts
alone may read it (TLP:RED), and whether it may be passed on.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import orjson

from hub.bus import Message, Position
from hub.model import Item, RefusalCode, Submission
from hub.pipeline.receipts import receipt
from hub.records import (
    ANONYMOUS,
    DecisionRecord,
    FeedRecord,
    HeldRecord,
    ObservationRecord,
    Placement,
    RefusedObject,
    StatusRecord,
)
from hub.status import complete_status
from hub.topics import Topics

log = logging.getLogger(__name__)

# What a bus record holds besides its key, value and headers (Kafka's batch and record
# framing is under a hundred bytes): room kept below the bus's limit.
RECORD_FRAMING = 1024


def delivery_messages(
    item: Item, submission: Submission, topics: Topics, date_added: str
) -> list[Message]:
    """One message per delivery of `item`: to the feed, or to `held` under embargo."""
    messages = []
    for delivery in item.deliveries:
        feed = FeedRecord(
            collection=delivery.collection,
            # The delivered id: a pseudonymised SCO's original id would let a reader confirm
            # a guessed address (it is derived from the value).
            object_id=str(delivery.obj.get("id", item.id)),
            value=orjson.dumps(delivery.obj),
            submitter=ANONYMOUS if delivery.anonymous else submission.member,
            date_added=date_added,
            received=submission.received,
            status_id=None if delivery.anonymous else submission.status_id,
            accounts=delivery.accounts,
            onward_sharing=delivery.onward_sharing,
        )
        if delivery.release_at is not None:
            messages.append(HeldRecord(feed, delivery.release_at).to_message(topics))
        else:
            messages.append(feed.to_message(topics))
    return messages


def _record_size(message: Message) -> int:
    return (
        len(message.value)
        + len(message.key or b"")
        + sum(len(k) + len(v) for k, v in message.headers)
    )


def fit(submission: Submission, topics: Topics, record_limit: int, date_added: str) -> Submission:
    """`submission` with what would not fit in a bus record taken out, since a record that
    could never commit would hold back every unit behind it: an object refused (`too-large`)
    when one of its deliveries would be larger than the bus takes (marking, signing and
    pseudonyms make an object larger than it came), and an observation larger than that
    left out (the object is delivered, but not counted in alerts)."""
    room = record_limit - RECORD_FRAMING

    def check(item: Item) -> Item:
        for message in delivery_messages(item, submission, topics, date_added):
            if (size := _record_size(message)) > room:
                return item.refuse(
                    RefusalCode.TOO_LARGE,
                    f"objects[{item.index}] ({item.id or 'no id'}): as delivered (marked, "
                    f"signed, personal data pseudonymised) it is {size:,} bytes; the bus takes "
                    f"{room:,} bytes a record",
                )
        observed = observation_message(item, submission, topics)
        if observed is not None and _record_size(observed) > room:
            log.warning(
                "%s holds %d observables, more than one record takes: not counted in alerts",
                item.id,
                len(item.observation.keys) if item.observation else 0,
            )
            return replace(item, observation=None)
        return item

    return submission.map_accepted(check)


def decision(item: Item, submission: Submission, routed_at: str) -> DecisionRecord:
    """The routing decision for one object, as the audit chain records it."""
    return DecisionRecord.of(
        object_id=item.id,
        version=item.version,
        type=item.obj.get("type"),
        sender=submission.member,
        account=submission.account,
        status_id=submission.status_id,
        received=submission.received,
        routed_at=routed_at,
        policy_version=submission.policy_version,
        verdicts=[v.as_dict() for v in item.verdicts],
        placements=[Placement(d.collection, d.accounts, d.release_at) for d in item.deliveries],
    )


def observation_message(item: Item, submission: Submission, topics: Topics) -> Message | None:
    """The correlator's record of one routed object (none when it has nothing to count)."""
    seen = item.observation
    if seen is None:
        return None
    return ObservationRecord(
        object_id=item.id,
        version=item.version,
        sender=submission.member,
        country=seen.country,
        regions=seen.regions,
        received=submission.received,
        keys=seen.keys,
        sighting_of=seen.sighting_of,
        visible=seen.visible,
        named=seen.named,
        response=seen.response,
    ).to_message(topics)


def emit(
    submission: Submission, topics: Topics, date_added: str, intake: Position | None = None
) -> list[Message]:
    """Feed records for each accepted object and collection, refusals, the final status,
    and the receipt of the intake record at `intake` (when a member's topic holds it)."""
    messages: list[Message] = []
    for item in submission.items:
        if item.refusal is None:
            messages.extend(delivery_messages(item, submission, topics, date_added))
            messages.append(decision(item, submission, date_added).to_message(topics))
            observed = observation_message(item, submission, topics)
            if observed is not None:
                messages.append(observed)
        else:
            # The object travels as sent, so a refusal can be inspected and replayed.
            refused = RefusedObject(
                status_id=submission.status_id,
                member=submission.member,
                account=submission.account,
                received=submission.received,
                index=item.index,
                object_id=item.id,
                reason=item.refusal.reason,
                message=item.refusal.message,
                obj=item.obj,
            )
            messages.append(refused.to_message(topics))
    status = complete_status(
        submission.status_id,
        submission.received,
        ((i.id, i.version, i.refusal.message if i.refusal else None) for i in submission.items),
    )
    # What each view must hold before it shows this status complete (read-your-writes).
    delivered = tuple(
        # A delivered variant may carry its own id (a pseudonymised SCO's id is rewritten).
        (delivery.collection, str(delivery.obj.get("id", item.id)), item.version or "")
        for item in submission.items
        if item.refusal is None
        for delivery in item.deliveries
        if delivery.release_at is None  # embargoed ones arrive later; the status need not wait
    )
    messages.append(StatusRecord(submission.member, status, delivered).to_message(topics))
    if intake is not None and (done := receipt(topics, intake, status=status)) is not None:
        messages.append(done)
    return messages
