"""Refusals of whole intake records, as `rejected` entries and statuses that fit the bus.

A refused record's bytes travel in its entry so it can be inspected and replayed, but an
entry larger than the bus takes would never commit, and the pipeline would try it forever.
So a record's copy is whole up to half the bus's record limit (16 MiB); past that the
entry holds its size, SHA-256 and first 64 KiB, and says so.
"""

from __future__ import annotations

import base64
import hashlib

import orjson

from hub.bus import Message, Record
from hub.pipeline.submission import Submission
from hub.status import complete_status
from hub.topics import Topics

HEAD_BYTES = 64 * 1024  # of a record too large to copy whole: enough to see what it is
OUTPUT_TOO_LARGE = "output-too-large"


def rejected_record(
    topics: Topics,
    record: Record,
    reason: str,
    message: str,
    *,
    is_json: bool,
    record_limit: int,
) -> Message:
    """A whole intake record refused; its raw value travels along (or, when too large to,
    what identifies it) so it can be inspected and replayed."""
    entry: dict[str, object] = {
        "reason": reason,
        "message": message,
        "intake": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
    }
    # A member's topic names who wrote there (its ACL), so `rejected list --member` finds it.
    if (member := topics.intake_member(record.topic)) is not None:
        entry["member"] = member
    # JSON is spliced in as is (no escaping, no growth); anything else goes as base64.
    copy_bytes = len(record.value) if is_json else -(-len(record.value) // 3) * 4
    if copy_bytes > record_limit // 2:
        entry |= {
            "record_bytes": len(record.value),
            "record_sha256": hashlib.sha256(record.value).hexdigest(),
            "record_head_base64": base64.b64encode(record.value[:HEAD_BYTES]).decode(),
            "record_truncated": True,
        }
        return Message(topics.rejected, orjson.dumps(entry), key=record.key)
    head = orjson.dumps(entry)[:-1]
    raw = (
        b',"record":' + record.value
        if is_json
        else b',"record_base64":"' + base64.b64encode(record.value) + b'"'
    )
    return Message(topics.rejected, head + raw + b"}", key=record.key)


def output_too_large(
    topics: Topics, record: Record, submission: Submission | None, record_limit: int
) -> tuple[Message, Message | None]:
    """The refusal of a record whose output (a feed record, its status, a refusal) is larger
    than the bus takes: its `rejected` entry, and a status failing every object (None when
    the record was refused whole already, and has no status)."""
    why = (
        f"what the hub would write for this record is larger than the bus takes "
        f"({record_limit:,} bytes a record): nothing of it was delivered"
    )
    entry = rejected_record(
        topics, record, OUTPUT_TOO_LARGE, why, is_json=False, record_limit=record_limit
    )
    if submission is None:
        return entry, None
    failed = f"not processed: {OUTPUT_TOO_LARGE} (see the record's entry in rejected)"
    status = complete_status(
        submission.status_id,
        submission.received,
        ((i.id, i.version, failed) for i in submission.items),
    )
    return entry, Message(
        topics.status,
        orjson.dumps(status),
        key=submission.status_id.encode(),
        headers=(("member", submission.member.encode()), ("delivered", b"[]")),
    )
