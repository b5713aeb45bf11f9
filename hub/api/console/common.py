"""What every console page shares: the reader it is for, the not-found page, and how an
object's sender and arrival are shown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from hub.api.access import Reading
from hub.api.console.login import scope, signed_in
from hub.api.console.render import HEADERS, ROOT, language_of, page
from hub.api.keys import SETTINGS
from hub.federation import Account, Federation
from hub.records import ANONYMOUS
from hub.signing.provenance import EXTENSION_ID
from hub.store.view import Arrival

# What a list shows of each object, read by the view from the stored JSON.
NAME, SUBMITTER, REVOKED = "$.name", f'$.extensions."{EXTENSION_ID}".submitter', "$.revoked"
LIST_PATHS = (NAME, SUBMITTER, REVOKED)


@dataclass(frozen=True)
class Reader:
    """The logged-in reader of a page, and what it may read."""

    account: Account
    scope: Reading
    member_name: str

    @property
    def username(self) -> str:
        return self.account.username


def reader_of(request: web.Request) -> Reader:
    """The page's reader; a browser without a session is sent to the login page."""
    account = signed_in(request)
    if account is None:
        raise web.HTTPSeeOther(ROOT + "login", headers=HEADERS)
    federation = request.app[SETTINGS].federation
    member = next((m for m in federation.members if m.id == account.member), None)
    return Reader(account, scope(request, account), member.name if member else "")


def not_found(request: web.Request, reader: Reader | None) -> web.Response:
    """The one answer for anything this reader cannot open: missing, another's, or a
    malformed address alike, so a page never tells which."""
    return page(request, "not_found.html", {"reader": reader}, status=404)


def sender(submitter: object, federation: Federation, gettext: Callable[[str], str]) -> str:
    """Who shared an object, as its provenance extension names it: a member's name,
    "anonymous", or the hub."""
    if submitter == ANONYMOUS:
        return gettext("anonymous")
    # Only the hub's own publications (TLP definitions, its extension) carry no provenance.
    if not isinstance(submitter, str) or not submitter or submitter == federation.hub.id:
        return gettext("the hub")
    member = next((m for m in federation.members if m.id == submitter), None)
    return f"{member.name} ({member.id})" if member else submitter


@dataclass(frozen=True)
class Row:
    """One object in a list."""

    id: str
    type: str
    name: str
    tlp: int | None
    sender: str
    date_added: str
    collection: str
    revoked: bool
    extra: Any = None


def rows(request: web.Request, arrivals: list[Arrival]) -> list[Row]:
    federation = request.app[SETTINGS].federation
    gettext = language_of(request).gettext
    out = []
    for a in arrivals:
        name, submitter, revoked = a.fields[:3]
        out.append(
            Row(
                a.id,
                a.type,
                name if isinstance(name, str) else "",
                a.tlp,
                sender(submitter, federation, gettext),
                a.date_added,
                a.collection,
                revoked in (1, True),
                orjson.loads(a.fields[3]) if len(a.fields) > 3 and a.fields[3] else None,
            )
        )
    return out
