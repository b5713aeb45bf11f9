"""Refusals of whole intake records, as `rejected` entries and statuses that fit the bus.

A refused record's bytes travel in its entry so it can be inspected and replayed, but an
entry larger than the bus takes would never commit, and the pipeline would try it forever.
So a record's copy is whole up to half the bus's record limit (16 MiB); past that the
entry holds its size, SHA-256 and first 64 KiB, and says so.
"""

from __future__ import annotations

from hub.bus import Message, Record
from hub.model import RefusalCode, Submission
from hub.pipeline.receipts import position, receipt
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
) -> list[list[Message]]:
    """The refusal of a record whose output (a feed record, its status, a refusal) is larger
    than the bus takes, as what to commit instead, the first that fits: its `rejected` entry
    with a status failing every object (when it has one) and the receipt saying so; the
    entry with a receipt naming the reason alone; the entry alone."""
    why = (
        f"what the hub would write for this record is larger than the bus takes "
        f"({record_limit:,} bytes a record): nothing of it was delivered"
    )
    reason = RefusalCode.OUTPUT_TOO_LARGE
    entry = rejected_record(topics, record, reason, why, is_json=False, record_limit=record_limit)
    told = receipt(topics, position(record), reason=reason, message=why)
    alternatives = [[entry, *([told] if told else [])], [entry]]
    if submission is None:
        return alternatives
    failed = f"not processed: {reason} (see the record's entry in rejected)"
    status = complete_status(
        submission.status_id,
        submission.received,
        ((i.id, i.version, failed) for i in submission.items),
    )
    final = StatusRecord(submission.member, status, delivered=()).to_message(topics)
    receipted = receipt(topics, position(record), status=status)
    return [[entry, final, *([receipted] if receipted else [])], *alternatives]
