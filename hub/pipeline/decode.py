"""decode: an intake record → a Submission (or a refusal of the whole record)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from hub.bus import Record
from hub.errors import HubError
from hub.federation import Federation
from hub.pipeline.submission import Item, Submission
from hub.stix.envelope import envelope_objects, parse_body

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


ACCOUNT_HEADER = "cirt-hub-account"
_RECORD_NAMESPACE = uuid.UUID("3b0e6d0c-6a55-4d7e-9d7c-51f0a3e9a8b2")


def _from_hub(data: dict[str, Any]) -> Submission:
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


@dataclass(frozen=True)
class Decode:
    """An intake record → a Submission, or UndecodableRecord saying what is wrong.

    Two kinds of record reach `intake`: what the hub's API wrote (`"v": 1`), and a STIX
    envelope or bundle a member's own Kafka producer wrote, naming its account in the
    `cirt-hub-account` header (Kafka ACLs decide who may write to the topic at all).
    """

    federation: Federation

    def __call__(self, record: Record) -> Submission:
        try:
            data = orjson.loads(record.value)
        except orjson.JSONDecodeError as exc:
            raise UndecodableRecord(
                f"intake record is not JSON: the request body is not JSON: {exc}", is_json=False
            ) from exc
        if isinstance(data, dict) and "v" in data:
            if data["v"] != INTAKE_VERSION:
                raise UndecodableRecord(f"intake record version {data['v']!r} is unknown")
            return _from_hub(data)
        return self._from_member(record, data)

    def _from_member(self, record: Record, data: Any) -> Submission:
        raw_account = record.header(ACCOUNT_HEADER)
        if raw_account is None:
            raise UndecodableRecord(
                f"a member's intake record needs the {ACCOUNT_HEADER!r} header naming its account"
            )
        username = raw_account.decode("utf-8", "replace")
        account = self.federation.account(username)
        if account is None or account.member is None or not account.can("submit"):
            raise UndecodableRecord(f"account {username!r} may not submit")
        try:
            # The same checks, in the same words, as a POST to the inbox gets.
            parse_body(record.value)
            objects = envelope_objects(data, self.federation.hub.limits.max_objects)
        except HubError as exc:
            raise UndecodableRecord(f"intake record refused: {exc.description}") from exc
        # The same record read twice (a redelivery) must make the same status, not a second.
        status_id = str(
            uuid.uuid5(_RECORD_NAMESPACE, f"{record.topic}/{record.partition}/{record.offset}")
        )
        received = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
        return Submission(
            status_id=status_id,
            member=account.member,
            account=account.username,
            received=received.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            request_id=(record.header("request-id") or status_id.encode()).decode(
                "utf-8", "replace"
            ),
            items=tuple(Item(i, obj) for i, obj in enumerate(objects)),
        )
