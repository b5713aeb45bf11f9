"""`/api/v1/subscriptions`: an analyst (a member's read account) asks to be told of new
alerts, of changes to an alert it follows, or of new objects in a collection it reads that
match a filter; by e-mail and/or webhook (hub.notify delivers them).

An account lists and deletes only its own subscriptions: another account's id answers 404
as an unknown one does. The same checks serve the console's form (hub.api.console.notices).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from hub.api import ratelimit
from hub.api.access import caller, reading
from hub.api.bodies import json_fields, read_body
from hub.api.keys import COLLECTIONS, NOTIFY, SETTINGS, SUBSCRIPTIONS, VIEW
from hub.api.lookup import value_query
from hub.collections import ALERTS, Collection
from hub.errors import BadRequest, Forbidden, NotFound
from hub.federation import Account
from hub.notify.store import KINDS, Anchor, Subscription
from hub.stix import timestamps
from hub.stix.markings import Tlp
from hub.store.lookup_values import LookupQuery, kind_name
from hub.store.view import RecentQuery

_FIELDS = frozenset(
    {
        "kind",
        "alert",
        "collection",
        "types",
        "min_confidence",
        "max_tlp",
        "value",
        "value_kind",
        "email",
        "webhook",
    }
)
_TYPE = re.compile(r"[a-z0-9][a-z0-9-]{0,249}")
_EMAIL = re.compile(r"[^@\s,;<>\"()\[\]\\]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")
_ALERT = re.compile(r"grouping--[0-9a-f-]{36}")
MAX_TYPES = 20


def _tlp(value: object) -> int:
    text = str(value).strip().upper().removeprefix("TLP:")
    try:
        return int(Tlp.named(text))
    except KeyError:
        raise BadRequest(
            f"max_tlp: {value!r} is not a TLP level (clear, green, amber, amber+strict, red)"
        ) from None


def _delivery(
    fields: Mapping[str, Any], request: web.Request, account: Account
) -> tuple[str | None, str | None]:
    settings = request.app[NOTIFY]
    email, webhook = fields.get("email") or None, fields.get("webhook") or None
    if email is None and webhook is None:
        raise BadRequest("email, webhook: give an address to send to, a URL to POST to, or both")
    if email is not None:
        if not isinstance(email, str) or len(email) > 254 or not _EMAIL.fullmatch(email):
            raise BadRequest(f"email: {str(email)[:300]!r} is not an e-mail address")
        if settings.smtp is None:
            raise BadRequest("email: this hub sends no e-mail (its operator set no notify.smtp)")
        # Unconfirmed addresses are taken, so only those the operator vouched for: else any
        # account could have the hub mail whom it likes, and get the hub's server listed.
        member = request.app[SETTINGS].federation.find_member(account.member or "")
        if member is None or not member.mails_to(email):
            raise BadRequest(
                f"email: {email!r} is not at one of your CIRT's domains; this hub mails only "
                "addresses at the domains of its points of contact or its email_domains (the "
                "hub's operator sets them in the federation file)"
            )
    if webhook is not None:
        if not isinstance(webhook, str) or len(webhook) > 2000:
            raise BadRequest("webhook: a URL of at most 2000 characters")
        if not settings.webhook_allowed(webhook):
            raise BadRequest(
                f"webhook: {webhook[:300]!r} does not begin with one of the addresses this "
                "hub's operator allows for webhooks (notify.webhook_prefixes)"
            )
    return email, webhook


def _filters(fields: Mapping[str, Any]) -> tuple[tuple[str, ...], int | None, int | None]:
    types = fields.get("types") or []
    if not isinstance(types, list) or len(types) > MAX_TYPES:
        raise BadRequest(f"types: a list of at most {MAX_TYPES} STIX types")
    for n, kind in enumerate(types):
        if not isinstance(kind, str) or not _TYPE.fullmatch(kind):
            raise BadRequest(f"types[{n}]: {str(kind)[:300]!r} is not a STIX type")
    confidence = fields.get("min_confidence")
    if confidence is not None and (
        isinstance(confidence, bool)
        or not isinstance(confidence, int)
        or not 0 <= confidence <= 100
    ):
        raise BadRequest("min_confidence: a whole number from 0 to 100 (STIX confidence)")
    tlp = _tlp(fields["max_tlp"]) if fields.get("max_tlp") not in (None, "") else None
    return tuple(sorted(set(types))), confidence, tlp


def _value(fields: Mapping[str, Any]) -> LookupQuery | None:
    """The value new objects must name, checked as GET /api/v1/lookup checks it."""
    value, value_kind = fields.get("value"), fields.get("value_kind")
    if value in (None, ""):
        if value_kind not in (None, ""):
            raise BadRequest("value: give the value to look up (value_kind names its kind)")
        return None
    return value_query(value, value_kind or None, "value_kind")


async def _start(request: web.Request, alias: str, username: str) -> tuple[int, Anchor | None]:
    """Where the subscription starts: after what the account can read there now."""
    newest = await request.app[VIEW].recent(
        RecentQuery(alias, username, limit=1, latest_only=False)
    )
    if not newest:
        return 0, None
    return newest[0].seq, Anchor(newest[0].id, newest[0].version)


async def create(request: web.Request, account: Account, fields: Mapping[str, Any]) -> Subscription:
    """Check `fields` as the account's new subscription and store it (4xx saying what is
    wrong otherwise)."""
    if account.member is None or not account.can("read"):
        raise Forbidden(f"account {account.username!r} may not subscribe (it needs 'read')")
    if unknown := sorted(set(fields) - _FIELDS):
        raise BadRequest(
            f"unknown field(s) {', '.join(unknown)}: a subscription has "
            f"{', '.join(sorted(_FIELDS))}"
        )
    kind = fields.get("kind")
    if kind not in KINDS:
        raise BadRequest(f"kind: {str(kind)[:100]!r} is not one of {', '.join(KINDS)}")
    email, webhook = _delivery(fields, request, account)
    types, confidence, tlp = _filters(fields) if kind == "collection" else ((), None, None)
    looked_up = _value(fields) if kind == "collection" else None
    collections: dict[str, Collection] = request.app[COLLECTIONS]
    scope = reading(account, collections)
    if kind == "collection":
        target = fields.get("collection")
        if not isinstance(target, str) or target not in scope.collections:
            shown = str(target)[:100]
            raise NotFound(
                f"collection: no collection {shown!r} is readable by {account.username!r}"
            )
    else:
        if ALERTS not in scope.collections:
            raise NotFound(f"account {account.username!r} reads no alerts")
        target = ALERTS
    if kind == "alert":
        target = fields.get("alert")
        view = request.app[VIEW]
        known = isinstance(target, str) and _ALERT.fullmatch(target) is not None
        if not known or not await view.present([str(target)], [ALERTS], account.username):
            raise NotFound(
                f"alert: no alert {str(target)[:100]!r} was sent to {account.username!r}"
            )
    alias = ALERTS if kind != "collection" else str(target)
    after_seq, anchor = await _start(request, alias, account.username)
    subscription = Subscription(
        id="",
        account=account.username,
        kind=str(kind),
        target=str(target),
        types=types,
        min_confidence=confidence,
        max_tlp=tlp,
        value=looked_up.value if looked_up else None,
        value_kind=kind_name(looked_up.kind) if looked_up else None,
        email=email,
        webhook=webhook,
        created=timestamps.rfc3339_now(),
        after_seq=after_seq,
        anchor=anchor,
    )
    limit = request.app[NOTIFY].max_per_account
    made = await request.app[SUBSCRIPTIONS].add(subscription, limit)
    if made is None:
        raise BadRequest(
            f"account {account.username!r} has {limit} subscriptions, as many as this hub "
            "allows (notify.max_per_account): delete one first"
        )
    return made


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def _reader(request: web.Request) -> Account:
    account = await caller(request)
    if account.member is None or not account.can("read"):
        raise Forbidden(f"account {account.username!r} has no subscriptions (it needs 'read')")
    ratelimit.admit(request, account)
    return account


async def add(request: web.Request) -> web.Response:
    account = await _reader(request)
    example = '{"kind": "alerts", "email": "…"}'
    fields = json_fields(await read_body(request), None, example, "a subscription")
    made = await create(request, account, fields)
    return _json(made.public(), status=201)


async def list_own(request: web.Request) -> web.Response:
    account = await _reader(request)
    own = await request.app[SUBSCRIPTIONS].of_account(account.username)
    return _json({"subscriptions": [s.public() for s in own]})


async def remove(request: web.Request) -> web.Response:
    account = await _reader(request)
    subscription_id = request.match_info["subscription_id"][:100]
    if not await request.app[SUBSCRIPTIONS].remove(account.username, subscription_id):
        raise NotFound(f"no subscription {subscription_id!r} of {account.username!r}")
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/subscriptions", add)
    app.router.add_get("/api/v1/subscriptions", list_own)
    app.router.add_delete("/api/v1/subscriptions/{subscription_id}", remove)
