"""Logging in to the console with a member's read account, logging out, and the language.

The sessions are hub.api.sessions', as the dashboard's, in a store and a cookie of their
own (path /console/): an operator's dashboard session opens no console and the reverse.
A session ends when its account is revoked or changed in the federation.
"""

from __future__ import annotations

import math

from aiohttp import web

from hub.api.access import Reading, reading
from hub.api.console.render import HEADERS, LANGUAGE_COOKIE, ROOT, Language, language_of, page
from hub.api.keys import AUTH, COLLECTIONS
from hub.api.sessions import (
    Sessions,
    end_session_cookie,
    from_own_page,
    set_session_cookie,
)
from hub.collections import Collection
from hub.errors import TooManyRequests, Unauthorized, Unavailable
from hub.federation import Account
from hub.i18n import LANGUAGES

COOKIE = "cirt_hub_console"
SESSIONS = web.AppKey("console_sessions", Sessions)
_LANGUAGE_SECONDS = 365 * 24 * 3600
_MAX_FIELD = 1000  # characters of a username or secret worth checking


def signed_in(request: web.Request) -> Account | None:
    """The reader of this browser's live session, as the federation has it now."""
    sessions = request.app[SESSIONS]
    token = request.cookies.get(COOKIE)
    account = sessions.account(token)
    if account is None:
        return None
    if request.app[AUTH].current(account.username) != account:
        sessions.close(token)  # revoked, disabled or changed since it logged in
        return None
    return account


def scope(request: web.Request, account: Account) -> Reading:
    """What this reader may read: the decision TAXII takes too (hub.api.access.reading)."""
    collections: dict[str, Collection] = request.app[COLLECTIONS]
    return reading(account, collections)


def safe_next(target: str) -> str:
    """Where to go after a form: a console path on this hub, never elsewhere."""
    if target.startswith(ROOT) and not target.startswith("//") and "\\" not in target:
        return target[:2000]
    return ROOT


async def login_form(request: web.Request) -> web.StreamResponse:
    if signed_in(request) is not None:
        raise web.HTTPSeeOther(ROOT, headers=HEADERS)
    return page(request, "login.html", {"reader": None, "error": None, "username": ""})


def _refusal(language: Language, exc: Exception) -> str:
    say = language.say
    if isinstance(exc, TooManyRequests):
        return say(
            "Too many failed logins: none is checked for %(seconds)s s.",
            seconds=exc.retry_after or 60,
        )
    if isinstance(exc, Unavailable):
        return say("Too many logins are being checked right now; try again shortly.")
    return say("Unknown account or wrong secret.")


async def login(request: web.Request) -> web.StreamResponse:
    language = language_of(request)
    if not from_own_page(request):
        error = language.say("Log in from this hub's own login page.")
        context = {"reader": None, "error": error, "username": ""}
        return page(request, "login.html", context, status=403)
    form = await request.post()
    username = str(form.get("username", ""))[:_MAX_FIELD]
    password = str(form.get("password", ""))[:_MAX_FIELD]
    try:
        account = await request.app[AUTH].check(username, password, request.remote)
    except (Unauthorized, TooManyRequests, Unavailable) as exc:
        wait = {"Retry-After": str(math.ceil(exc.retry_after))} if exc.retry_after else None
        context = {"reader": None, "error": _refusal(language, exc), "username": username}
        return page(request, "login.html", context, status=exc.status, headers=wait)
    if account.member is None or not account.can("read"):
        error = language.say(
            "This account cannot read feeds: log in with one of your CIRT's read accounts."
        )
        context = {"reader": None, "error": error, "username": username}
        return page(request, "login.html", context, status=403)
    token = request.app[SESSIONS].open(account)
    response = web.HTTPSeeOther(safe_next(str(form.get("next", ROOT))), headers=HEADERS)
    set_session_cookie(response, COOKIE, token, ROOT)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    if not from_own_page(request):
        raise web.HTTPSeeOther(ROOT, headers=HEADERS)  # a page elsewhere ends no session
    request.app[SESSIONS].close(request.cookies.get(COOKIE))
    response = web.HTTPSeeOther(ROOT + "login", headers=HEADERS)
    end_session_cookie(response, COOKIE, ROOT)
    raise response


async def choose_language(request: web.Request) -> web.StreamResponse:
    """Show the console in the language the reader picked, and remember it (a cookie)."""
    form = await request.post()
    response = web.HTTPSeeOther(safe_next(str(form.get("next", ROOT))), headers=HEADERS)
    chosen = str(form.get("lang", ""))
    if chosen in LANGUAGES and from_own_page(request):
        response.set_cookie(
            LANGUAGE_COOKIE,
            chosen,
            max_age=_LANGUAGE_SECONDS,
            path=ROOT,
            secure=True,
            httponly=True,
            samesite="Lax",
        )
    raise response
