"""Refusals of whole intake records, as `rejected` entries and statuses that fit the bus.

A refused record's bytes travel in its entry so it can be inspected and replayed, but an
entry larger than the bus takes would never commit, and the pipeline would try it forever.
So a record's copy is whole up to half the bus's record limit (16 MiB); past that the
entry holds its size, SHA-256 and first 64 KiB, and says so.
"""

from __future__ import annotations

from hub.bus import Message, Record
from hub.model import RefusalCode, Submission
from hub.records import Copy, RefusedRecord, StatusRecord
from hub.status import complete_status
from hub.topics import Topics


def rejected_record(
    topics: Topics,
    record: Record,
    reason: RefusalCode,
    message: str,
    *,
    is_json: bool,
    record_limit: int,
) -> Message:
    """A whole intake record refused; its raw value travels along (or, when too large to,
    what identifies it) so it can be inspected and replayed."""
    # JSON is spliced in as is (no escaping, no growth); anything else goes as base64.
    copy_bytes = len(record.value) if is_json else -(-len(record.value) // 3) * 4
    copy = Copy.HEAD if copy_bytes > record_limit // 2 else Copy.JSON if is_json else Copy.BASE64
    return RefusedRecord(
        reason=reason,
        message=message,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        # A member's topic names who wrote there (its ACL), so `rejected list --member` finds it.
        member=topics.intake_member(record.topic),
        key=record.key,
        value=record.value,
        copy=copy,
    ).to_message(topics)


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
        topics, record, RefusalCode.OUTPUT_TOO_LARGE, why, is_json=False, record_limit=record_limit
    )
    if submission is None:
        return entry, None
    failed = f"not processed: {RefusalCode.OUTPUT_TOO_LARGE} (see the record's entry in rejected)"
    status = complete_status(
        submission.status_id,
        submission.received,
        ((i.id, i.version, failed) for i in submission.items),
    )
    return entry, StatusRecord(submission.member, status, delivered=()).to_message(topics)
