"""Reachability checks over HTTP (hub.reachability holds the checks):

- `POST /api/v1/reachability/checks` (an operator): start a check of every member; with
  `"links": true` the answer carries each contact's one-time link, for an operator without
  e-mail delivery to send by hand.
- `GET /api/v1/reachability` (an operator): the latest check, who answered, how fast, and
  who has not after its `overdue_days` (the dashboard shows the same).
- `GET|POST /console/reachability/{token}`: a contact's link. The GET shows a page with one
  button; only the POST records the answer, so a mail scanner that opens links answers
  nothing.
- `POST /console/reachability/{check}/acknowledge`: one click on the console's banner, by
  any read account of a member that has not answered.

A member answers once, the first answer counts; an unknown, used-up or expired link writes
nothing, so nobody can fill the bus through these doors.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from hub.api.access import caller
from hub.api.bodies import json_fields, read_body
from hub.api.console.common import not_found, reader_of
from hub.api.console.render import HEADERS, ROOT, language_of, page
from hub.api.keys import BUS, NOTIFY, REACHABILITY_BOOK, REACHABILITY_COURIER, SETTINGS
from hub.api.metrics import require_operator
from hub.api.sessions import from_own_page
from hub.errors import BadRequest, Unavailable
from hub.notify.invitations import MailCourier
from hub.reachability import (
    DEFAULT_EXPIRES_DAYS,
    DEFAULT_OVERDUE_DAYS,
    MAX_DAYS,
    Book,
    Check,
    ConsoleOnly,
    answer_record,
    new_check,
)
from hub.stix import timestamps

_FIELDS = frozenset({"overdue_days", "expires_days", "links"})


def _days(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_DAYS:
        raise BadRequest(f"{name}: a number of days above 0 and at most {MAX_DAYS:g}")
    return float(value)


def _parsed(raw: bytes) -> tuple[float, float, bool]:
    example = '{"overdue_days": …, "expires_days": …}'
    body = json_fields(raw, _FIELDS, example, "a check", empty_ok=True)
    links = body.get("links", False)
    if not isinstance(links, bool):
        raise BadRequest("links: true or false (whether the answer lists the contacts' links)")
    return (
        _days(body, "overdue_days", DEFAULT_OVERDUE_DAYS),
        _days(body, "expires_days", DEFAULT_EXPIRES_DAYS),
        links,
    )


def _link_base(request: web.Request) -> str:
    public = request.app[SETTINGS].public_url
    origin = public.rstrip("/") if public else str(request.url.origin())
    return f"{origin}{ROOT}reachability/"


def summary(check: Check, request: web.Request, now: datetime) -> dict[str, Any]:
    """The check as the API and the dashboard give it: each member, answered or not."""
    federation = request.app[SETTINGS].federation
    names = {m.id: m.name for m in federation.members}
    overdue = set(check.overdue(now))
    rows = []
    for member in check.members:
        answer = check.answers.get(member)
        row: dict[str, Any] = {"member": member, "name": names.get(member, member)}
        if answer is not None:
            row.update(
                answered=True,
                by=answer.by,
                via=answer.via,
                at=timestamps.format_micros(answer.at),
                seconds=int(max((answer.at - check.started).total_seconds(), 0)),
            )
        else:
            row.update(answered=False, overdue=member in overdue)
        rows.append(row)
    rows.sort(key=lambda r: (not r["answered"], r.get("seconds", 0), r["member"]))
    return {
        "id": check.id,
        "started": timestamps.format_micros(check.started),
        "by": check.by,
        "overdue_days": check.overdue_days,
        "expires": timestamps.format_micros(check.expires),
        "open": check.open_at(now),
        "answered": len(check.answers),
        "members": rows,
        "overdue": sorted(overdue),
    }


async def latest_summary(request: web.Request) -> dict[str, Any] | None:
    """The latest check's summary, None before the first (or where no book is kept)."""
    if REACHABILITY_BOOK not in request.app:
        return None
    book = request.app[REACHABILITY_BOOK]
    with contextlib.suppress(Unavailable):  # the dashboard shows what the node last read
        await book.refresh()
    check = book.latest()
    return summary(check, request, datetime.now(UTC)) if check else None


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def start(request: web.Request) -> web.Response:
    """Start a check of every member (201 with the check; the links when asked)."""
    await require_operator(request)
    account = await caller(request)
    overdue_days, expires_days, links = _parsed(await read_body(request))
    now = datetime.now(UTC)
    doc, invitations = new_check(
        request.app[SETTINGS].federation, account.username, now, overdue_days, expires_days
    )
    book = request.app[REACHABILITY_BOOK]
    await book.publish(doc)
    base = _link_base(request)
    sent = await request.app[REACHABILITY_COURIER].send(invitations, base)
    check = book.check(doc["id"])
    assert check is not None  # publish read it back
    body: dict[str, Any] = {"check": summary(check, request, now), "sent": sent}
    if links:
        body["links"] = [
            {"member": i.member, "contact": i.contact, "link": base + i.token} for i in invitations
        ]
    return _json(body, status=201)


async def latest(request: web.Request) -> web.Response:
    await require_operator(request)
    return _json({"check": await latest_summary(request)})


async def _token_page(request: web.Request) -> tuple[web.Response | None, Any]:
    """The link's check, member and contact; or the page to answer with instead."""
    book = request.app[REACHABILITY_BOOK]
    await book.refresh()
    found = book.by_token(request.match_info["token"])
    if found is None:
        return not_found(request, None), None
    check, member, _ = found
    now = datetime.now(UTC)
    context: dict[str, Any]
    if member in check.answers:
        context = {"reader": None, "state": "answered", "answer": check.answers[member]}
        return page(request, "reachability.html", context), None
    if not check.open_at(now):
        context = {"reader": None, "state": "expired", "check": check}
        return page(request, "reachability.html", context, status=410), None
    return None, found


def _member_name(request: web.Request, member: str) -> str:
    return request.app[SETTINGS].federation.member(member).name


async def link_page(request: web.Request) -> web.Response:
    """What a contact's link opens: the check, and one button to answer it."""
    answered, found = await _token_page(request)
    if answered is not None:
        return answered
    check, member, contact = found
    context = {
        "reader": None,
        "state": "ask",
        "check": check,
        "member_name": _member_name(request, member),
        "contact": contact,
        "token": request.match_info["token"],
    }
    return page(request, "reachability.html", context)


async def link_answer(request: web.Request) -> web.Response:
    """The contact's answer, through its link."""
    if not from_own_page(request):
        message = language_of(request).say("Send this form from the console's own page.")
        return page(request, "refused.html", {"reader": None, "message": message}, status=403)
    answered, found = await _token_page(request)
    if answered is not None:
        return answered
    check, member, contact = found
    now = datetime.now(UTC)
    await request.app[REACHABILITY_BOOK].publish(
        answer_record(check.id, member, contact, "link", now)
    )
    context = {"reader": None, "state": "answered", "answer": check.answers.get(member)}
    return page(request, "reachability.html", context)


async def acknowledge(request: web.Request) -> web.StreamResponse:
    """One click on the console's banner: the reader's member answers the check."""
    reader = reader_of(request)
    if not from_own_page(request):
        message = language_of(request).say("Send this form from the console's own page.")
        return page(request, "refused.html", {"reader": reader, "message": message}, status=403)
    member = reader.account.member
    book = request.app[REACHABILITY_BOOK]
    await book.refresh()
    pending = book.pending_for(member, datetime.now(UTC)) if member else None
    if pending is None or pending.id != request.match_info["check"]:
        return not_found(request, reader)
    now = datetime.now(UTC)
    await book.publish(answer_record(pending.id, str(member), reader.username, "console", now))
    raise web.HTTPSeeOther(f"{ROOT}?done=reachable", headers=HEADERS)


async def _book_context(app: web.Application) -> AsyncIterator[None]:
    app[REACHABILITY_BOOK] = Book(app[BUS], app[SETTINGS].topics.reachability)
    # With an SMTP server each contact gets its link by e-mail; else the console's banner.
    smtp = app[NOTIFY].smtp if NOTIFY in app else None
    federation = app[SETTINGS].federation
    app[REACHABILITY_COURIER] = MailCourier(smtp, federation) if smtp is not None else ConsoleOnly()
    yield


def add_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(_book_context)
    app.router.add_post("/api/v1/reachability/checks", start)
    app.router.add_get("/api/v1/reachability", latest)
    app.router.add_get(ROOT + "reachability/{token}", link_page)
    app.router.add_post(ROOT + "reachability/{token}", link_answer)
    app.router.add_post(ROOT + "reachability/{check}/acknowledge", acknowledge)
