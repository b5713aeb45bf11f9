"""decode: an intake record → a Submission (or a refusal of the whole record)."""

from __future__ import annotations

from typing import Any

import orjson

from hub.bus import Record
from hub.pipeline.submission import Item, Submission

INTAKE_VERSION = 1


class UndecodableRecord(ValueError):
    """The intake record is not a submission this hub wrote or understands."""

    def __init__(self, message: str, *, is_json: bool = True) -> None:
        super().__init__(message)
        self.is_json = is_json


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


def decode(record: Record) -> Submission:
    """Read one intake record; raises UndecodableRecord saying what is wrong."""
    try:
        data = orjson.loads(record.value)
    except orjson.JSONDecodeError as exc:
        raise UndecodableRecord(f"intake record is not JSON: {exc}", is_json=False) from exc
    if not isinstance(data, dict) or data.get("v") != INTAKE_VERSION:
        raise UndecodableRecord("intake record is not a version-1 submission")
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
        items=tuple(Item(i, obj) for i, obj in enumerate(data["objects"])),
    )
