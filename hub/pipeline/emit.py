"""emit: a routed submission → the bus messages that carry it on (feeds, status, rejected)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from hub.bus import Message
from hub.pipeline.submission import Submission
from hub.status import complete_status
from hub.topics import Topics

STIX_MEDIA_TYPE = b"application/stix+json;version=2.1"


def rfc3339_now() -> str:
    """Now, as TAXII timestamps are written (UTC, millisecond precision, `Z`)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def emit(submission: Submission, topics: Topics, date_added: str) -> list[Message]:
    """Feed records for each accepted object and collection, refusals, and the final status."""
    messages: list[Message] = []
    status_key = submission.status_id.encode()
    for item in submission.items:
        if item.refusal is None:
            value = orjson.dumps(item.obj)
            headers = (
                ("content-type", STIX_MEDIA_TYPE),
                ("submitter", submission.member.encode()),
                ("date-added", date_added.encode()),
                ("status-id", status_key),
            )
            messages.extend(
                Message(topics.feed(c), value, key=item.id.encode(), headers=headers)
                for c in item.collections
            )
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
        [collection, item.id, item.version or ""]
        for item in submission.items
        if item.refusal is None
        for collection in item.collections
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
