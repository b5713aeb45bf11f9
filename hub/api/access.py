"""Guards every reader of the hub uses (TAXII, the live stream, the analysts' console): who
is calling, which collections they may see, and what they may read in them."""

from __future__ import annotations

import ssl

from aiohttp import web

from hub.api.keys import ACCOUNT, AUTH, COLLECTIONS
from hub.api.media import STIX_MEDIA_TYPE

# The one read decision (Reading, reading) lives with the collections, below both the API
# and the notifier; re-exported for this module's users.
from hub.collections import Collection
from hub.collections import Reading as Reading
from hub.collections import reading as reading
from hub.errors import Forbidden, NotFound
from hub.federation import Account


async def caller(request: web.Request) -> Account:
    """The authenticated account (401 with a TAXII error body otherwise)."""
    if ACCOUNT not in request:
        authorization = request.headers.get("Authorization")
        certificate = peer_certificate(request)
        # request.remote: the peer's address, behind a reverse proxy the proxy's.
        if certificate is not None:
            account = await request.app[AUTH].authenticate_certificate(
                certificate, authorization, request.remote
            )
        else:
            account = await request.app[AUTH].authenticate(authorization, request.remote)
        request[ACCOUNT] = account
    return request[ACCOUNT]


def peer_certificate(request: web.Request) -> bytes | None:
    """The client's certificate (DER), when mutual TLS is on and the handshake verified it."""
    tls = request.transport.get_extra_info("ssl_object") if request.transport else None
    # Only a context that asks for certificates verifies them: never trust one otherwise.
    if tls is None or tls.context.verify_mode == ssl.CERT_NONE:
        return None
    der: bytes | None = tls.getpeercert(binary_form=True)
    return der


def visible_collection(
    request: web.Request, account: Account, *, listed: bool = False
) -> Collection:
    """The collection in the path, by TAXII id or alias; 404 unless `account` may see it
    (with `listed`, only if its collections list shows it).

    Unknown and forbidden collections answer alike, so a reader cannot learn which exist.
    """
    key = request.match_info["collection"]
    collections = request.app[COLLECTIONS]
    found = collections.get(key) or next((c for c in collections.values() if c.id == key), None)
    known = found is not None and (found.visible_to(account) if listed else found.known_to(account))
    if found is None or not known:
        raise NotFound(f"no collection {key!r} is visible to account {account.username!r}")
    return found


async def permitted_collection(request: web.Request, action: str) -> tuple[Account, Collection]:
    """The caller and the collection in the path, if it may `action` ("read"/"write") there."""
    account = await caller(request)
    collection = visible_collection(request, account)
    collections: dict[str, Collection] = request.app[COLLECTIONS]
    allowed = (
        reading(account, collections).may_read(collection)
        if action == "read"
        else collection.can_write(account)
    )
    if not allowed:
        role = "read" if action == "read" else "submit"
        raise Forbidden(
            f"account {account.username!r} may not {action} {collection.alias!r} "
            f"(it needs the {role!r} role there)"
        )
    return account, collection


async def permitted_reading(request: web.Request) -> tuple[Reading, Collection]:
    """What the caller may read, and the collection in the path if it may read it."""
    account, collection = await permitted_collection(request, "read")
    collections: dict[str, Collection] = request.app[COLLECTIONS]
    return reading(account, collections), collection


def collection_resource(collection: Collection, account: Account) -> dict[str, object]:
    """The TAXII collection resource (section 5.2) as this account sees it."""
    return {
        "id": collection.id,
        "title": collection.title,
        "description": collection.description,
        "alias": collection.alias,
        "can_read": collection.can_read(account),
        "can_write": collection.can_write(account),
        "media_types": [STIX_MEDIA_TYPE],
    }
