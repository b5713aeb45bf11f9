"""`POST /api/v1/alerts/{alert-id}/responses`: a recipient records its state on an alert.

The body is `{"state": "<one of STATES>", "note": "<optional text>", "named": false}`.
The hub writes the response note (hub.correlate.responses) in the member's name and puts it
on the member's intake like a TAXII submission, so it goes through the same pipeline: the
answer is the TAXII status (202) to follow it by. Only a member account with the `submit`
role may respond, and only to an alert one of its member's reader accounts received: any
other alert id answers 404, as an unknown one does, so no member learns whose alerts exist.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.api import ratelimit
from hub.api.access import caller
from hub.api.bodies import json_fields, read_body
from hub.api.intake import accept, intake_keys
from hub.api.keys import INTAKE_GATE, SETTINGS, VIEW
from hub.collections import ALERTS
from hub.correlate.responses import STATES, response_note
from hub.errors import BadRequest, Forbidden, NotFound
from hub.federation import Account

MAX_NOTE = 4000  # characters: a line for the other analysts, not a report
_FIELDS = frozenset({"state", "note", "named"})


def _parsed(raw: bytes) -> tuple[str, str | None, bool]:
    """The state, note and naming choice of a response body, or a 400 saying what is wrong."""
    body = json_fields(raw, _FIELDS, '{"state": …, "note": …, "named": …}', "a response")
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
    return await submit_for(request, account, [response_note(alert_id, state, note, named, author)])


async def submit_for(
    request: web.Request, account: Account, objects: list[dict[str, Any]]
) -> web.Response:
    """Objects the hub wrote in `account`'s member's name (a response, the console's
    sighting), taken as that account's submission: gate, charge, intake; the 202."""
    assert account.member is not None
    request.app[INTAKE_GATE].check(account.member)
    keys = intake_keys(request)
    await ratelimit.charge(request, account, len(objects))
    return await accept(request, account, objects, keys)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/alerts/{alert_id}/responses", respond)
