"""Taking a member's objects onto the bus: the intake record (MACed) and its pending status
in one atomic commit, then the 202. TAXII's Add Objects and an alert response both take a
submission this way, so a 202 means the same durable thing whichever door it came in by."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from aiohttp import web

from hub.api.accepted import Accepted
from hub.api.keys import ACCEPTED, BUS, INTAKE_GATE, INTAKE_KEYS, REQUEST_ID, SETTINGS
from hub.api.media import taxii_response
from hub.bus import BusError, Message, MessageTooLarge
from hub.errors import PayloadTooLarge, Unavailable
from hub.federation import Account
from hub.records import StatusRecord, encode_intake
from hub.signing.intake import IntakeKeys
from hub.status import pending_status
from hub.stix.timestamps import rfc3339_now

log = logging.getLogger(__name__)


def intake_keys(request: web.Request) -> IntakeKeys:
    """The keys that MAC intake records; 503 until a pipeline node has made them."""
    keys = request.app[INTAKE_KEYS].read()
    if keys is None:
        raise Unavailable(
            "the hub cannot authenticate submissions yet (no intake key: a pipeline node "
            "makes it at its first start); retry later",
            retry_after=5,
        )
    return keys


async def accept(
    request: web.Request, account: Account, objects: list[dict[str, Any]], keys: IntakeKeys
) -> web.Response:
    """Make `objects` durable as `account`'s submission; 202 with its pending status."""
    assert account.member is not None  # only member accounts submit
    settings = request.app[SETTINGS]
    status_id, received = str(uuid.uuid4()), rfc3339_now()
    topics = settings.topics
    intake = encode_intake(
        status_id=status_id,
        member=account.member,
        account=account.username,
        received=received,
        request_id=request[REQUEST_ID],
        objects=objects,
    )
    status_message = StatusRecord(
        account.member, pending_status(status_id, received, objects)
    ).to_message(topics)
    try:
        # The member's own intake topic, keyed by member: its submissions keep their order,
        # and wait behind its own alone, not behind other members' (hub.pipeline.worker).
        topic = topics.intake if settings.shared_intake else topics.member_intake(account.member)
        # One atomic commit: the intake record and its pending status are durable together
        # (the status ahead of the pipeline's final one on its partition), or neither is.
        positions = await request.app[BUS].publish(
            [
                Message(
                    topic,
                    intake,
                    key=account.member.encode(),
                    # The pipeline believes nothing on intake that the hub's API did not MAC.
                    headers=(keys.header(intake),),
                ),
                status_message,
            ]
        )
    except MessageTooLarge as exc:
        raise PayloadTooLarge(f"the submission is larger than the bus accepts: {exc}") from exc
    except BusError as exc:
        log.warning("intake not durable, answering 503: %s", exc)
        request.app[INTAKE_GATE].publish_failed(exc)  # issue 22: says so if the disk is full
        raise Unavailable("the hub cannot store submissions right now; retry later") from exc
    # Durable from here on. The 202 does not wait for this node's view to read the status
    # back: until it does, the status endpoint answers it from here.
    pending = status_message.value
    request.app[ACCEPTED].add(status_id, Accepted(account.member, pending, positions[1]))
    log.info(
        "submission accepted",
        extra={"member": account.member, "status_id": status_id, "objects": len(objects)},
    )
    return taxii_response(pending, status=202)
