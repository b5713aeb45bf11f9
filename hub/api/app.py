"""The HTTP side of a hub node: middlewares, the routes its role serves, and the state that
only requests use (logins, rate limits, open streams). `hub.node` builds the node around it.
"""

from __future__ import annotations

from aiohttp import web

from hub.api import (
    console,
    contacts,
    dashboard,
    explain,
    exports,
    health,
    jwks,
    lookup,
    metrics,
    mitigations,
    reachability,
    responses,
    stream,
    subscriptions,
)
from hub.api.auth import Authenticator
from hub.api.bodies import request_bodies
from hub.api.codings import advertise_codings
from hub.api.console.errors import console_errors
from hub.api.keys import AUTH, COLLECTIONS, METRICS, SETTINGS
from hub.api.middleware import compression, http_metrics, request_id, taxii_errors
from hub.api.ratelimit import RATE_LIMITS, RateLimiter
from hub.api.server import name_server
from hub.api.taxii import collections, discovery, objects, status
from hub.collections import Collection
from hub.config import Settings
from hub.metrics import HubMetrics


async def _close_auth(app: web.Application) -> None:
    app[AUTH].close()


def http_app(
    settings: Settings, by_alias: dict[str, Collection], hub_metrics: HubMetrics
) -> web.Application:
    """The app with its middlewares and the state only requests use; its routes come with
    `add_routes`: an API node serves TAXII, the console and the analysts' API, every node
    its health, metrics and dashboard."""
    app = web.Application(
        middlewares=[
            request_id,
            http_metrics,
            taxii_errors,
            console_errors,
            request_bodies,
            compression,
        ],
        client_max_size=settings.max_content_length,
    )
    app.on_response_prepare.append(name_server)
    app.on_response_prepare.append(advertise_codings)
    app[SETTINGS] = settings
    app[COLLECTIONS] = by_alias
    app[METRICS] = hub_metrics
    app[AUTH] = Authenticator(settings.federation, settings.login_throttling, hub_metrics)
    app.on_cleanup.append(_close_auth)
    app[RATE_LIMITS] = RateLimiter(settings.federation, hub_metrics)
    app[stream.STREAMS] = streams = stream.Streams()
    hub_metrics.stream_clients.set_function(lambda: streams.clients)
    app.on_shutdown.append(stream.close_streams)
    return app


def add_routes(app: web.Application) -> None:
    """The routes of the node's role. Added after the node's resources: some routes bring a
    cleanup context of their own that uses them (the bus, the view)."""
    settings = app[SETTINGS]
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", metrics.metrics)
    dashboard.add_routes(app)
    if settings.runs_api:
        root = discovery.API_ROOT
        app.router.add_get("/taxii2/", discovery.discovery)
        app.router.add_get(root, discovery.api_root)
        app.router.add_get(root + "collections/", collections.list_collections)
        app.router.add_get(root + "collections/{collection}/", collections.get_collection)
        app.router.add_get(root + "collections/{collection}/objects/", objects.get_objects)
        app.router.add_post(root + "collections/{collection}/objects/", objects.add_objects)
        app.router.add_get(root + "collections/{collection}/objects/{object}/", objects.get_object)
        app.router.add_get(
            root + "collections/{collection}/objects/{object}/versions/", objects.get_versions
        )
        app.router.add_get(root + "collections/{collection}/manifest/", objects.get_manifest)

        app.router.add_get(root + "status/{status}/", status.get_status)
        app.router.add_get("/.well-known/jwks.json", jwks.hub_jwks)
        app.router.add_get("/api/v1/member-keys", jwks.member_keys)
        app.router.add_get("/api/v1/explain/{object_id}", explain.explain)
        app.router.add_get("/api/v1/streams/{collection}", stream.stream)
        console.add_routes(app)
        exports.add_routes(app)
        lookup.add_routes(app)
        responses.add_routes(app)
        subscriptions.add_routes(app)
        mitigations.add_routes(app)
        contacts.add_routes(app)
        reachability.add_routes(app)
