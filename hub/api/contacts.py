"""`GET /api/v1/contacts`: the members' 24/7 incident points of contact, from the federation
file (`members[].contacts`).

Who may read them: a member's account with the `read` role (its analysts, the people who
call the others in an incident) and the hub's operators (`operate`: they run reachability
checks). Not a submit-only account (a sensor's), and never a caller without an account.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from hub.api.access import caller
from hub.api.keys import SETTINGS
from hub.errors import Forbidden
from hub.federation import Account, Contact, Member


def may_see_contacts(account: Account) -> bool:
    """A member's read account, or a hub operator."""
    if account.member is None:
        return account.can("operate")
    return account.can("read")


def contact_json(contact: Contact) -> dict[str, Any]:
    """One contact as the API gives it (absent fields left out)."""
    out: dict[str, Any] = {"role": contact.role, "name": contact.name, "email": contact.email}
    if contact.phone:
        out["phone"] = contact.phone
    if contact.languages:
        out["languages"] = list(contact.languages)
    if contact.key is not None:
        key = {"kind": contact.key.kind, "fingerprint": contact.key.fingerprint}
        out["key"] = {**key, **({"url": contact.key.url} if contact.key.url else {})}
    return out


def member_json(member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "country": member.country,
        "identity": member.identity,
        "contacts": [contact_json(c) for c in member.contacts],
    }


async def contacts(request: web.Request) -> web.Response:
    """Every member and its points of contact (401 without an account, 403 without the role)."""
    account = await caller(request)
    if not may_see_contacts(account):
        raise Forbidden(
            f"account {account.username!r} may not read the points of contact "
            "(a member's read account or a hub operator may)"
        )
    federation = request.app[SETTINGS].federation
    body = {"members": [member_json(m) for m in federation.members]}
    return web.Response(
        body=orjson.dumps(body),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/contacts", contacts)
