"""emit: a routed submission → the bus messages that carry it on (feeds, status, rejected).

Each delivery is written as it is: its content, to its collection's feed, or to `held`
while an embargo lasts. Headers say who sent it (or "anonymous"), which reader accounts
alone may read it (TLP:RED), and whether it may be passed on.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

import orjson

from hub.bus import Headers, Message
from hub.pipeline.submission import Delivery, Item, Submission
from hub.status import complete_status
from hub.topics import Topics

log = logging.getLogger(__name__)

STIX_MEDIA_TYPE = b"application/stix+json;version=2.1"
# What a bus record holds besides its key, value and headers (Kafka's batch and record
# framing is under a hundred bytes): room kept below the bus's limit.
RECORD_FRAMING = 1024


def rfc3339_now() -> str:
    """Now, as TAXII timestamps are written (UTC, millisecond precision, `Z`)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def delivery_headers(delivery: Delivery, submission: Submission, date_added: str) -> Headers:
    headers: list[tuple[str, bytes]] = [
        ("content-type", STIX_MEDIA_TYPE),
        ("submitter", b"anonymous" if delivery.anonymous else submission.member.encode()),
        ("date-added", date_added.encode()),
        ("received", submission.received.encode()),  # for end-to-end latency
    ]
    if not delivery.anonymous:
        headers.append(("status-id", submission.status_id.encode()))
    if delivery.accounts:
        headers.append(("accounts", ",".join(delivery.accounts).encode()))
    if not delivery.onward_sharing:
        headers.append(("onward-sharing", b"no"))
    return tuple(headers)


def delivery_messages(
    item: Item, submission: Submission, topics: Topics, date_added: str
) -> list[Message]:
    """One message per delivery of `item`: to the feed, or to `held` under embargo."""
    messages = []
    for delivery in item.deliveries:
        value = orjson.dumps(delivery.obj)
        # The delivered id: a pseudonymised SCO's original id would let a reader confirm a
        # guessed address (it is derived from the value).
        key = str(delivery.obj.get("id", item.id)).encode()
        headers = delivery_headers(delivery, submission, date_added)
        if delivery.release_at is not None:
            held = (
                ("collection", delivery.collection.encode()),
                ("release-at", delivery.release_at.encode()),
            )
            messages.append(Message(topics.held, value, key=key, headers=held + headers))
        else:
            messages.append(
                Message(topics.feed(delivery.collection), value, key=key, headers=headers)
            )
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
                    "too-large",
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


def decision(item: Item, submission: Submission, routed_at: str) -> dict[str, object]:
    """The routing decision for one object, as the audit chain records it."""
    return {
        "v": 1,
        "object_id": item.id,
        "version": item.version,
        "type": item.obj.get("type"),
        "sender": submission.member,
        "account": submission.account,
        "status_id": submission.status_id,
        "received": submission.received,
        "routed_at": routed_at,
        "policy_version": submission.policy_version,
        "verdicts": [v.as_dict() for v in item.verdicts],
        "deliveries": [
            {"collection": d.collection, "accounts": list(d.accounts), "release_at": d.release_at}
            for d in item.deliveries
        ],
    }


def observation_message(item: Item, submission: Submission, topics: Topics) -> Message | None:
    """The correlator's record of one routed object (none when it has nothing to count)."""
    seen = item.observation
    if seen is None:
        return None
    doc = {
        "object_id": item.id,
        "version": item.version,
        "sender": submission.member,
        "country": seen.country,
        "regions": list(seen.regions),
        "received": submission.received,
        "keys": list(seen.keys),
        "sighting_of": seen.sighting_of,
        "visible": dict(seen.visible),
    }
    return Message(topics.observations, orjson.dumps(doc), key=item.id.encode())


def emit(submission: Submission, topics: Topics, date_added: str) -> list[Message]:
    """Feed records for each accepted object and collection, refusals, and the final status."""
    messages: list[Message] = []
    status_key = submission.status_id.encode()
    for item in submission.items:
        if item.refusal is None:
            messages.extend(delivery_messages(item, submission, topics, date_added))
            messages.append(
                Message(
                    topics.decisions,
                    orjson.dumps(decision(item, submission, date_added)),
                    key=item.id.encode(),
                    headers=(("sender", submission.member.encode()),),
                )
            )
            observed = observation_message(item, submission, topics)
            if observed is not None:
                messages.append(observed)
        else:
            # The object travels as sent, so a refusal can be inspected and replayed.
            refusal = {
                "status_id": submission.status_id,
                "member": submission.member,
                "account": submission.account,
                "received": submission.received,
                "index": item.index,
                "id": item.id,
                "reason": item.refusal.reason,
                "message": item.refusal.message,
                "object": item.obj,
            }
            messages.append(Message(topics.rejected, orjson.dumps(refusal), key=status_key))
    status = complete_status(
        submission.status_id,
        submission.received,
        ((i.id, i.version, i.refusal.message if i.refusal else None) for i in submission.items),
    )
    # What each view must hold before it shows this status complete (read-your-writes).
    delivered = [
        # A delivered variant may carry its own id (a pseudonymised SCO's id is rewritten).
        [delivery.collection, str(delivery.obj.get("id", item.id)), item.version or ""]
        for item in submission.items
        if item.refusal is None
        for delivery in item.deliveries
        if delivery.release_at is None  # embargoed ones arrive later; the status need not wait
    ]

    messages.append(
        Message(
            topics.status,
            orjson.dumps(status),
            key=status_key,
            headers=(
                ("member", submission.member.encode()),
                ("delivered", orjson.dumps(delivered)),
            ),
        )
    )
    return messages
