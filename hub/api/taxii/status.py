"""TAXII 2.1 status (section 4.3): what became of each object of a submission."""

from __future__ import annotations

from aiohttp import web

from hub.api.access import caller
from hub.api.keys import VIEW
from hub.api.media import require_taxii_accept, taxii_response
from hub.errors import NotFound


async def get_status(request: web.Request) -> web.Response:
    require_taxii_accept(request)
    account = await caller(request)
    status_id = request.match_info["status"]
    found = await request.app[VIEW].status(status_id)
    # Only the submitting member's accounts see a status; others get the same 404 as a typo.
    if found is None or found[0] != account.member:
        raise NotFound(f"no status {status_id!r} is visible to account {account.username!r}")
    return taxii_response(found[1])
