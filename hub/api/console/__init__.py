"""The analysts' console, `/console/`: what a member CIRT's read account may read, as pages
for people, in English and French; and, for an account that may also submit, its CIRT's
responses to alerts and sightings (hub.api.console.act).

Server-rendered HTML (Jinja2, autoescaped) and one stylesheet: no script, nothing from
elsewhere, a page under 100 KB, usable at 360 px. Every page reads the view through the
decision TAXII takes (hub.api.access.reading), so the console shows nothing TAXII would
not give the same account.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from aiohttp import web

from hub.api.console import act, browse, contacts, notices, objects, search
from hub.api.console.login import SESSIONS, choose_language, login, login_form, logout
from hub.api.console.render import ROOT
from hub.api.sessions import PROTECT, Sessions


@cache
def _stylesheet() -> bytes:
    return resources.files("hub.api.console").joinpath("static", "console.css").read_bytes()


async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(
        body=_stylesheet(),
        content_type="text/css",
        charset="utf-8",
        headers={**PROTECT, "Cache-Control": "public, max-age=3600"},
    )


async def bare(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect(ROOT)


def add_routes(app: web.Application) -> None:
    """The console's pages, on an API node (they read its view)."""
    app[SESSIONS] = Sessions()
    app.router.add_get("/console", bare)
    app.router.add_get(ROOT, browse.home)
    app.router.add_get(ROOT + "console.css", stylesheet)
    app.router.add_get(ROOT + "login", login_form)
    app.router.add_post(ROOT + "login", login)
    app.router.add_post(ROOT + "logout", logout)
    app.router.add_post(ROOT + "language", choose_language)
    app.router.add_get(ROOT + "collections/{alias}/", browse.collection_page)
    app.router.add_get(ROOT + "alerts/", browse.alerts_page)
    app.router.add_get(ROOT + "search", search.search_page)
    app.router.add_get(ROOT + "contacts/", contacts.contacts_page)
    app.router.add_get(ROOT + "objects/{object_id}", objects.object_page)
    app.router.add_get(ROOT + "objects/{object_id}/json", objects.object_json)
    app.router.add_post(ROOT + "objects/{object_id}/respond", act.respond)
    app.router.add_post(ROOT + "objects/{object_id}/sight", act.sight)
    app.router.add_get(notices.PATH, notices.subscriptions_page)
    app.router.add_post(notices.PATH, notices.subscribe)
    app.router.add_post(notices.PATH + "/{subscription_id}/delete", notices.unsubscribe)
    app.router.add_post(ROOT + "objects/{object_id}/mitigate", act.mitigate)
