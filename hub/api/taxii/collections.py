"""TAXII 2.1 collections (sections 5.1, 5.2): only those the account may read or write."""

from __future__ import annotations

from aiohttp import web

from hub.api.access import caller, collection_resource, visible_collection
from hub.api.conditional import cacheable
from hub.api.keys import COLLECTIONS
from hub.api.media import require_taxii_accept, taxii_response

# A reload of the federation can add or remove collections: a copy is used for minutes only.
MAX_AGE = 600


async def list_collections(request: web.Request) -> web.Response:
    require_taxii_accept(request)
    account = await caller(request)
    visible = [
        collection_resource(c, account)
        for c in request.app[COLLECTIONS].values()
        if c.visible_to(account)
    ]
    return cacheable(request, {"collections": visible} if visible else {}, max_age=MAX_AGE)


async def get_collection(request: web.Request) -> web.Response:
    require_taxii_accept(request)
    account = await caller(request)
    # As listed: a read account's own inbox is addressable for a POST (to be told it lacks the
    # submit role) but is not a collection it can open.
    collection = visible_collection(request, account, listed=True)
    return taxii_response(collection_resource(collection, account))
