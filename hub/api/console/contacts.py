"""The members' points of contact, as a console page: whom to call in an incident, for a
member's read account (the API's rule, hub.api.contacts.may_see_contacts)."""

from __future__ import annotations

from aiohttp import web

from hub.api.console.common import not_found, reader_of
from hub.api.console.render import page
from hub.api.contacts import may_see_contacts
from hub.api.keys import SETTINGS


async def contacts_page(request: web.Request) -> web.Response:
    reader = reader_of(request)
    if not may_see_contacts(reader.account):
        return not_found(request, reader)
    members = request.app[SETTINGS].federation.members
    return page(request, "contacts.html", {"reader": reader, "members": members})
