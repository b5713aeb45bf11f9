"""TAXII 2.1 server discovery (section 4.1) and the API root (section 4.2)."""

from __future__ import annotations

from aiohttp import web

from hub.api.access import caller
from hub.api.conditional import cacheable
from hub.api.keys import SETTINGS
from hub.api.media import TAXII_MEDIA_TYPE, require_taxii_accept

API_ROOT = "/taxii2/hub/"
# Seconds a client may use its copy of discovery and the API root without asking again.
MAX_AGE = 3600


def _root_address(request: web.Request) -> str:
    # Under the configured public URL, or relative (section 4.1 allows it: the client
    # resolves it against the address it used); never from the Host or X-Forwarded-*
    # headers, which any client, or a cache in between, could set.
    public = request.app[SETTINGS].public_url
    return public.rstrip("/") + API_ROOT if public else API_ROOT


async def discovery(request: web.Request) -> web.Response:
    """Where the API root is; open to anyone, it tells nothing but that."""
    require_taxii_accept(request)
    hub = request.app[SETTINGS].federation.hub
    root = _root_address(request)
    body = {
        "title": hub.name,
        "description": "cirt-hub: STIX 2.1 incident sharing between national CIRTs",
        "default": root,
        "api_roots": [root],
    }
    if hub.contact:
        body["contact"] = hub.contact
    return cacheable(request, body, max_age=MAX_AGE)


async def api_root(request: web.Request) -> web.Response:
    require_taxii_accept(request)
    await caller(request)
    settings = request.app[SETTINGS]
    return cacheable(
        request,
        {
            "title": f"{settings.federation.hub.name} API root",
            "description": "Submit to the inbox collection; read the feeds your CIRT may read.",
            "versions": [TAXII_MEDIA_TYPE],
            "max_content_length": settings.max_content_length,
        },
        max_age=MAX_AGE,
    )
