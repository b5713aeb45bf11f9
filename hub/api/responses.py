"""`POST /api/v1/alerts/{alert-id}/responses`: a recipient records its state on an alert.

The body is `{"state": "<one of STATES>", "note": "<optional text>", "named": false}`.
The hub writes the response note (hub.correlate.responses) in the member's name and puts it
on the member's intake like a TAXII submission, so it goes through the same pipeline: the
answer is the TAXII status (202) to follow it by. Only a member account with the `submit`
role may respond, and only to an alert one of its member's reader accounts received: any
other alert id answers 404, as an unknown one does, so no member learns whose alerts exist.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson
from aiohttp import web

from hub.api import ratelimit
from hub.api.access import caller
from hub.api.bodies import read_body
from hub.api.keys import BUS, FOLLOWER, INTAKE_GATE, INTAKE_KEYS, REQUEST_ID, SETTINGS, VIEW
from hub.api.media import taxii_response
from hub.bus import BusError, Message
from hub.collections import ALERTS
from hub.correlate.responses import STATES, response_note
from hub.errors import BadRequest, Forbidden, NotFound, Unavailable
from hub.federation import Account
from hub.records import encode_intake
from hub.status import pending_status
from hub.stix.timestamps import rfc3339_now

log = logging.getLogger(__name__)

MAX_NOTE = 4000  # characters: a line for the other analysts, not a report
_FIELDS = frozenset({"state", "note", "named"})


def _parsed(raw: bytes) -> tuple[str, str | None, bool]:
    """The state, note and naming choice of a response body, or a 400 saying what is wrong."""
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest('the body is a JSON object: {"state": …, "note": …, "named": …}')
    if unknown := sorted(set(body) - _FIELDS):
        listed = ", ".join(unknown)
        raise BadRequest(f"unknown field(s) {listed}: a response has state, note, named")
    state, note, named = body.get("state"), body.get("note"), body.get("named", False)
    if state not in STATES:
        raise BadRequest(f"state: {state!r} is not one of {', '.join(STATES)}")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        raise BadRequest(f"note: a string of at most {MAX_NOTE} characters")
    if not isinstance(named, bool):
        raise BadRequest("named: true or false (whether the other recipients may know it is you)")
    return state, note or None, named


async def alert_received(request: web.Request, member_id: str, alert_id: str) -> bool:
    """Whether a reader account of the member has the alert (this node's view)."""
    if not alert_id.startswith("grouping--"):
        return False
    member = request.app[SETTINGS].federation.member(member_id)
    for reader in (a.username for a in member.accounts if a.can("read")):
        if await request.app[VIEW].present([alert_id], [ALERTS], reader):
            return True
    return False


async def enqueue(
    request: web.Request, account: Account, objects: list[dict[str, Any]]
) -> dict[str, Any]:
    """Put objects the hub wrote in `account`'s member's name on its intake, as a TAXII
    submission of theirs; the pending TAXII status to follow them by."""
    assert account.member is not None
    request.app[INTAKE_GATE].check(account.member)
    intake_keys = request.app[INTAKE_KEYS].read()
    if intake_keys is None:
        raise Unavailable(
            "the hub cannot take submissions yet (no intake key); retry later", retry_after=5
        )
    settings = request.app[SETTINGS]
    await ratelimit.charge(request, account, len(objects))
    status_id, received = str(uuid.uuid4()), rfc3339_now()
    intake = encode_intake(
        status_id=status_id,
        member=account.member,
        account=account.username,
        received=received,
        request_id=request[REQUEST_ID],
        objects=objects,
    )
    topics = settings.topics
    topic = topics.intake if settings.shared_intake else topics.member_intake(account.member)
    status = pending_status(status_id, received, objects)
    try:
        # The pipeline believes nothing on intake that the hub's API did not MAC.
        mac = intake_keys.header(intake)
        await request.app[BUS].publish(
            [Message(topic, intake, key=account.member.encode(), headers=(mac,))]
        )
    except BusError as exc:
        log.warning("submission not durable, answering 503: %s", exc)
        request.app[INTAKE_GATE].publish_failed(exc)
        raise Unavailable("the hub cannot store submissions right now; retry later") from exc
    try:
        status_message = Message(
            topics.status,
            orjson.dumps(status),
            key=status_id.encode(),
            headers=(("member", account.member.encode()),),
        )
        positions = await request.app[BUS].publish([status_message])
        if FOLLOWER in request.app:
            await request.app[FOLLOWER].wait_for(positions, settings.status_visible_timeout)
    except BusError as exc:
        log.warning("pending status for %s not published: %s", status_id, exc)
    return status


async def respond(request: web.Request) -> web.Response:
    """Record the caller's member's state on one of its alerts (202 with the TAXII status)."""
    account = await caller(request)
    if account.member is None or not account.can("submit"):
        raise Forbidden(f"account {account.username!r} may not respond (it needs 'submit')")
    ratelimit.admit(request, account)
    alert_id = request.match_info["alert_id"]
    state, note, named = _parsed(await read_body(request))
    if not await alert_received(request, account.member, alert_id):
        raise NotFound(f"no alert {alert_id!r} was sent to {account.member!r}")
    author = request.app[SETTINGS].federation.member(account.member).identity
    status = await enqueue(request, account, [response_note(alert_id, state, note, named, author)])
    return taxii_response(status, status=202)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/alerts/{alert_id}/responses", respond)
