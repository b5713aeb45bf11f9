"""Public keys: the hub's (RFC 7517 JWK Set, open to anyone) and its members' (members only).

The hub's JWKS lists the current key and every retired one, so anything the hub ever signed
can be verified offline, years later. It is read from the keys dir the pipeline nodes
write, so a rotation shows here without a restart.
"""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from hub.api.access import caller
from hub.api.keys import SETTINGS, SIGNING_KEYS
from hub.signing.keys_topic import member_jwks

JWKS_MEDIA_TYPE = "application/jwk-set+json"


async def hub_jwks(request: web.Request) -> web.Response:
    """GET /.well-known/jwks.json: the hub keys, each marked `current` or `retired`."""
    jwks = await asyncio.to_thread(request.app[SIGNING_KEYS].jwks)
    return web.Response(
        body=orjson.dumps(jwks),
        content_type=JWKS_MEDIA_TYPE,
        # Short: a verifier that meets an unknown kid after a rotation fetches again anyway.
        headers={"Cache-Control": "public, max-age=60"},
    )


async def member_keys(request: web.Request) -> web.Response:
    """GET /api/v1/member-keys: every member key the hub trusts, naming member and identity."""
    await caller(request)
    federation = request.app[SETTINGS].federation
    keys = [jwk for member in federation.members for jwk in member_jwks(member)]
    return web.Response(body=orjson.dumps({"keys": keys}), content_type=JWKS_MEDIA_TYPE)
