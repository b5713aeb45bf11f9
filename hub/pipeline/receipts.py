"""Receipts: what became of each record of a member's intake topic, on the member's own
`receipts.member-<id>`, written in the transaction that commits the record's outcome.

A member on Kafka alone reads there what the TAXII status says (or why the record was
refused whole), keyed by where its record landed. Records on `<prefix>intake` (written by
API nodes of earlier releases, for every member) get none: they name no member's topic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.bus import Message, Position, Record
from hub.records import ReceiptRecord
from hub.topics import Topics


def position(record: Record) -> Position:
    """Where `record` landed."""
    return Position(record.topic, record.partition, record.offset)


def receipt(
    topics: Topics,
    intake: Position,
    *,
    status: Mapping[str, Any] | None = None,
    reason: str | None = None,
    message: str | None = None,
) -> Message | None:
    """The receipt of the record at `intake`: its final `status`, or the `reason` and
    `message` it was refused whole for; None when no member's topic holds it."""
    member = topics.intake_member(intake.topic)
    if member is None:
        return None
    return ReceiptRecord(member, intake, status, reason, message).to_message(topics)
