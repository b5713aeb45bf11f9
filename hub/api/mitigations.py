"""`POST /api/v1/alerts/{alert-id}/mitigations`: a recipient shares a mitigation of an alert.

The body is `{"name": "...", "description": "...", "tlp": "green", "targets": [...]}`
(description, tlp and targets optional). The hub writes a course-of-action in the member's
name and a `mitigates` relationship to each target (hub.correlate.mitigations) and takes them
as the member's submission: the same pipeline, and the member's own sharing rules for that
TLP decide who receives them. Targets are among what the alert refers to that a course of
action mitigates (indicators, malware, ...); by default all of them. As for a response, only
a member account with `submit` may, and only on an alert its member received (any other id
answers 404, as an unknown one).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from aiohttp import web

from hub.api import ratelimit
from hub.api.access import caller, reading
from hub.api.bodies import json_fields, read_body
from hub.api.keys import COLLECTIONS, SETTINGS, VIEW
from hub.api.responses import submit_for
from hub.collections import ALERTS
from hub.correlate.mitigations import MAX_TARGETS, MITIGABLE, mitigation_objects
from hub.errors import BadRequest, Forbidden, NotFound
from hub.federation import Account
from hub.stix.markings import Tlp, tlp2_id

MAX_NAME = 200
MAX_DESCRIPTION = 10_000  # characters: steps to take, not a report
LEVELS = ("clear", "green", "amber", "amber+strict", "red")
DEFAULT_TLP = "green"  # reaches what the sender's rules give TLP:GREEN (by default its regions)
_FIELDS = frozenset({"name", "description", "tlp", "targets"})


@dataclass(frozen=True)
class MitigationRequest:
    """What a member asks the hub to share on an alert."""

    name: str
    description: str | None
    tlp: str
    targets: tuple[str, ...] | None  # None: everything of the alert a mitigation may target


def checked(
    name: object, description: object, tlp: object, targets: object = None
) -> MitigationRequest:
    """The request, or a 400 naming the field that is wrong."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise BadRequest(f"name: a non-empty string of at most {MAX_NAME} characters")
    if description is not None and (
        not isinstance(description, str) or len(description) > MAX_DESCRIPTION
    ):
        raise BadRequest(f"description: a string of at most {MAX_DESCRIPTION} characters")
    if tlp not in LEVELS:
        raise BadRequest(f"tlp: {tlp!r} is not one of {', '.join(LEVELS)}")
    if targets is not None and (
        not isinstance(targets, list)
        or not targets
        or len(targets) > MAX_TARGETS
        or not all(isinstance(t, str) for t in targets)
    ):
        raise BadRequest(f"targets: a list of 1 to {MAX_TARGETS} ids the alert refers to")
    return MitigationRequest(
        name.strip(),
        description.strip() or None if isinstance(description, str) else None,
        str(tlp),
        tuple(dict.fromkeys(targets)) if isinstance(targets, list) else None,
    )


def _parsed(raw: bytes) -> MitigationRequest:
    example = '{"name": …, "description": …, "tlp": …}'
    body = json_fields(raw, _FIELDS, example, "a mitigation")
    return checked(
        body.get("name"), body.get("description"), body.get("tlp", DEFAULT_TLP), body.get("targets")
    )


async def alert_targets(request: web.Request, member_id: str, alert_id: str) -> list[str] | None:
    """What the member's alert refers to that a mitigation may target, as the member's read
    accounts have it; None when none of them received the alert."""
    if not alert_id.startswith("grouping--"):
        return None
    view, collections = request.app[VIEW], request.app[COLLECTIONS]
    member = request.app[SETTINGS].federation.member(member_id)
    for account in (a for a in member.accounts if a.can("read")):
        scope = reading(account, collections)
        found = await view.present([alert_id], [ALERTS], account.username)
        raw = await view.body(found[0].seq) if found else None
        if raw is None:
            continue
        refs = orjson.loads(raw).get("object_refs", [])
        refs = [r for r in refs if isinstance(r, str) and r.split("--")[0] in MITIGABLE]
        readable = await view.present(
            refs[: MAX_TARGETS * 4], list(scope.collections), account.username
        )
        return sorted({a.id for a in readable if a.type in MITIGABLE})[:MAX_TARGETS]
    return None


async def share_mitigation(
    request: web.Request, account: Account, alert_id: str, wanted: MitigationRequest
) -> web.Response:
    """Write the mitigation in `account`'s member's name and submit it (the 202), or 404 /
    400 when the alert is not the member's or has nothing the mitigation may target."""
    assert account.member is not None
    targets = await alert_targets(request, account.member, alert_id)
    if targets is None:
        raise NotFound(f"no alert {alert_id!r} was sent to {account.member!r}")
    if wanted.targets is not None:
        if unknown := [t for t in wanted.targets if t not in targets]:
            raise BadRequest(
                f"targets: {', '.join(unknown)} is not among what alert {alert_id} refers to "
                f"that a course of action mitigates ({', '.join(MITIGABLE)})"
            )
        targets = list(wanted.targets)
    if not targets:
        raise BadRequest(
            f"alert {alert_id} refers to nothing you received that a course of action "
            f"mitigates ({', '.join(MITIGABLE)})"
        )
    author = request.app[SETTINGS].federation.member(account.member).identity
    marking = tlp2_id(Tlp.named(wanted.tlp))
    objects = mitigation_objects(wanted.name, wanted.description, targets, author, marking)
    return await submit_for(request, account, objects)


async def mitigate(request: web.Request) -> web.Response:
    """Share a mitigation of one of the caller's member's alerts (202 with the TAXII status)."""
    account = await caller(request)
    if account.member is None or not account.can("submit"):
        raise Forbidden(
            f"account {account.username!r} may not share mitigations (it needs 'submit')"
        )
    ratelimit.admit(request, account)
    wanted = _parsed(await read_body(request))
    return await share_mitigation(request, account, request.match_info["alert_id"], wanted)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/alerts/{alert_id}/mitigations", mitigate)
