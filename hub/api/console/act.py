"""Acting from the console on what a reader reads: its CIRT's response to an alert, and
"seen here too" (a STIX sighting) of an indicator, malware or observed-data.

Both are writes in the member's name, so they need what the API needs: an account with the
`submit` role. A console session is a read account's; the console offers the forms only to
an account the federation file gives both `read` and `submit`, so each member decides which
of its analysts may speak for it, and a leaked read-only secret still writes nothing. A
read-only session sees the alert's counts and is told why it has no form. Forms are taken
only from the console's own pages (hub.api.sessions.from_own_page), as login and logout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from hub.api.console.common import Reader, not_found, reader_of
from hub.api.console.login import safe_next
from hub.api.console.render import HEADERS, ROOT, Language, language_of, page
from hub.api.keys import SETTINGS, VIEW
from hub.api.mitigations import DEFAULT_TLP, checked, share_mitigation
from hub.api.responses import MAX_NOTE, submit_for
from hub.api.sessions import from_own_page
from hub.collections import ALERTS
from hub.correlate.responses import STATES, response_note, sighting_of
from hub.errors import BadRequest
from hub.store.view import Arrival

SIGHTABLE = frozenset({"indicator", "malware", "observed-data"})
DONE = ("responded", "sighted", "mitigated")


def may_act(reader: Reader) -> bool:
    """Whether this session may write in its member's name (responses, sightings)."""
    return reader.account.member is not None and reader.account.can("submit")


def state_label(state: str, say: Callable[[str], str]) -> str:
    """A response state in the reader's language."""
    labels = {
        "acknowledged": say("Acknowledged"),
        "investigating": say("Investigating"),
        "affected": say("Affected"),
        "not-affected": say("Not affected"),
        "mitigated": say("Mitigated"),
    }
    return labels.get(state, state)


@dataclass(frozen=True)
class Named:
    """A member that chose to be named in the alert's responses."""

    name: str
    identity: str
    state: str  # in the reader's language; empty if it only sighted it
    sighted: bool


@dataclass(frozen=True)
class AlertSummary:
    """What an alert's version says of the responses, for its page."""

    state: str  # active, quiet or revoked (hub.api.console.browse.alert_state)
    members: int
    countries: int
    counts: tuple[tuple[str, int], ...]  # (state in the reader's language, how many)
    sighted: int
    since_first_report: float | None
    first_acknowledged: str | None
    to_first_acknowledgement: float | None
    named: tuple[Named, ...]
    sight_target: str | None  # a report of the alert the reader may sight


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def alert_summary(
    fields: Mapping[str, Any], state: str, referred: list[Arrival], language: Language
) -> AlertSummary:
    """The alert's responses as its `x_cirt_hub_alert` gives them (counts, never who but
    for those that chose to be named)."""
    say = language.say
    responses = fields.get("responses")
    counts = responses if isinstance(responses, Mapping) else {}
    listed = fields.get("named")
    named = tuple(
        Named(
            str(n.get("name", "")),
            str(n.get("identity", "")),
            state_label(str(n["state"]), say) if isinstance(n.get("state"), str) else "",
            n.get("sighted") is True,
        )
        for n in (listed if isinstance(listed, list) else [])
        if isinstance(n, Mapping)
    )
    first_ack = fields.get("first_acknowledged")
    return AlertSummary(
        state=state,
        members=_count(fields.get("members")),
        countries=_count(fields.get("countries")),
        counts=tuple((state_label(s, say), _count(counts.get(s))) for s in STATES),
        sighted=_count(fields.get("sighted")),
        since_first_report=_number(fields.get("seconds_since_first_report")),
        first_acknowledged=first_ack if isinstance(first_ack, str) else None,
        to_first_acknowledgement=_number(fields.get("seconds_to_first_acknowledgement")),
        named=named,
        sight_target=next((a.id for a in referred if a.type in SIGHTABLE), None),
    )


def _refused(request: web.Request, reader: Reader, message: str, status: int) -> web.Response:
    return page(request, "refused.html", {"reader": reader, "message": message}, status=status)


def _not_allowed(request: web.Request, reader: Reader) -> web.Response | None:
    """The refusal page when this post may not act; None when it may."""
    say = language_of(request).say
    if not from_own_page(request):
        return _refused(request, reader, say("Send this form from the console's own page."), 403)
    if not may_act(reader):
        message = say(
            "This account may only read: responding and sightings are sent with an account "
            "of your CIRT that also has the submit role."
        )
        return _refused(request, reader, message, 403)
    return None


async def _readable(request: web.Request, reader: Reader, object_id: str) -> Arrival | None:
    collections = list(reader.scope.collections)
    found = await request.app[VIEW].present([object_id], collections, reader.scope.reader)
    return found[0] if found else None


def _back(target: str, done: str) -> web.HTTPSeeOther:
    where = safe_next(target)
    return web.HTTPSeeOther(f"{where}{'&' if '?' in where else '?'}done={done}", headers=HEADERS)


async def respond(request: web.Request) -> web.StreamResponse:
    """The reader's CIRT's state on an alert it received, with an optional note."""
    reader = reader_of(request)
    if (refusal := _not_allowed(request, reader)) is not None:
        return refusal
    alert_id = request.match_info["object_id"]
    found = await _readable(request, reader, alert_id)
    if found is None or found.collection != ALERTS:
        return not_found(request, reader)
    form = await request.post()
    state, note = str(form.get("state", "")), str(form.get("note", "")).strip()
    say = language_of(request).say
    if state not in STATES:
        return _refused(request, reader, say("Choose your CIRT's state on this alert."), 400)
    if len(note) > MAX_NOTE:
        message = say("A note holds at most %(count)s characters.", count=MAX_NOTE)
        return _refused(request, reader, message, 400)
    author = request.app[SETTINGS].federation.member(str(reader.account.member)).identity
    named = form.get("named") == "yes"
    await submit_for(request, reader.account, [response_note(alert_id, state, note, named, author)])
    raise _back(f"{ROOT}objects/{alert_id}", "responded")


async def sight(request: web.Request) -> web.StreamResponse:
    """ "Seen here too": a sighting of an indicator, malware or observed-data the reader
    received, by its CIRT, at its CIRT."""
    reader = reader_of(request)
    if (refusal := _not_allowed(request, reader)) is not None:
        return refusal
    object_id = request.match_info["object_id"]
    found = await _readable(request, reader, object_id)
    if found is None or found.type not in SIGHTABLE:
        return not_found(request, reader)
    form = await request.post()
    author = request.app[SETTINGS].federation.member(str(reader.account.member)).identity
    sighting = sighting_of(object_id, author, named=form.get("named") == "yes")
    await submit_for(request, reader.account, [sighting])
    raise _back(str(form.get("next", f"{ROOT}objects/{object_id}")), "sighted")


async def mitigate(request: web.Request) -> web.StreamResponse:
    """A mitigation of an alert the reader's CIRT received, shared under its own rules."""
    reader = reader_of(request)
    if (refusal := _not_allowed(request, reader)) is not None:
        return refusal
    alert_id = request.match_info["object_id"]
    found = await _readable(request, reader, alert_id)
    if found is None or found.collection != ALERTS:
        return not_found(request, reader)
    form = await request.post()
    say = language_of(request).say
    try:
        wanted = checked(
            str(form.get("name", "")),
            str(form.get("description", "")),
            str(form.get("tlp", DEFAULT_TLP)),
        )
    except BadRequest:
        message = say(
            "Give the mitigation a name (at most 200 characters), a description of at most "
            "10,000 characters and a TLP level."
        )
        return _refused(request, reader, message, 400)
    try:
        await share_mitigation(request, reader.account, alert_id, wanted)
    except BadRequest:
        message = say("This alert refers to nothing you received that a mitigation may target.")
        return _refused(request, reader, message, 400)
    raise _back(f"{ROOT}objects/{alert_id}", "mitigated")
