"""Request ids, and every error as a TAXII error message (section 3.6.1) with the right status."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from hub.api.codings import encode_answer
from hub.api.keys import METRICS, REQUEST_ID
from hub.api.media import taxii_response
from hub.errors import HubError, Unauthorized
from hub.logs import REQUEST_ID as LOGGED_REQUEST_ID

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")
# TAXII 2.1 lets a server refuse DELETE (section 5.7); what a sender does instead.
WITHDRAW = (
    "this hub does not delete objects: readers keep what they received, and TAXII serves every "
    "version. To withdraw an object, POST to the inbox a new version of it (a later "
    "`modified`) with `revoked: true`: it reaches everyone who received the object, and "
    "readers asking for the latest version get the revocation"
)


@web.middleware
async def request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Carry the caller's X-Request-ID (if sane) or a new one, for logs and the bus."""
    given = request.headers.get("X-Request-ID", "")
    rid = given if _SAFE_ID.fullmatch(given) else uuid.uuid4().hex
    request[REQUEST_ID] = rid
    token = LOGGED_REQUEST_ID.set(rid)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers["X-Request-ID"] = rid
        raise
    finally:
        LOGGED_REQUEST_ID.reset(token)
    response.headers["X-Request-ID"] = rid
    return response


def error_body(title: str, description: str, status: int, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "title": title,
        "description": description,
        "http_status": str(status),
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def _headers(exc: HubError) -> dict[str, str]:
    headers = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Basic realm="cirt-hub", charset="UTF-8"'
    if exc.retriable:
        headers["Retry-After"] = str(exc.retry_after if exc.retry_after is not None else 5)
    return headers


@web.middleware
async def taxii_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HubError → its status and a TAXII error body; anything unexpected → 500 with an id."""
    try:
        return await handler(request)
    except HubError as exc:
        body = error_body(exc.title, exc.description, exc.status, details=exc.details)
        response = taxii_response(body, status=exc.status, headers=_headers(exc))
        if exc.status == 413:
            # The unread body may still be arriving; do not keep the connection for reuse.
            response.force_close()
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # aiohttp's own refusals (unknown route, wrong method, body too large) in TAXII form.
        description = exc.text or exc.reason
        if exc.status == 413:
            description = f"the request body is larger than this server accepts ({exc.text})"
        elif exc.status == 405 and request.method == "DELETE":
            description = WITHDRAW
        elif exc.status == 405:
            description = (
                f"{request.method} is not allowed here; allowed: {exc.headers.get('Allow')}"
            )
        body = error_body(exc.reason, description, exc.status)
        allow = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return taxii_response(body, status=exc.status, headers=allow)
    except ConnectionResetError:
        if request.transport is not None:
            return _internal_error(request)  # a connection of the hub's own, not the client's
        # The client went away mid-request (a body cut short): its fault, not the hub's.
        log.info(
            "%s %s from %s: the client closed the connection before the request was whole "
            "(answered 400)",
            request.method,
            request.path,
            request.remote,
        )
        body = error_body(
            "Incomplete request", "the connection closed before the whole request arrived", 400
        )
        return taxii_response(body, status=400)
    except Exception:
        return _internal_error(request)


def _internal_error(request: web.Request) -> web.Response:
    """A generic 500 with an id that is also logged, with the traceback (never sent)."""
    error_id = uuid.uuid4().hex
    log.exception("unexpected error (error_id=%s) on %s %s", error_id, request.method, request.path)
    body = error_body(
        "Internal error",
        "the hub failed to handle this request; quote the error_id to its operators",
        500,
        error_id=error_id,
    )
    return taxii_response(body, status=500)


@web.middleware
async def http_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count each answer by route template (never the path: ids stay out of labels)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = request.match_info.route.resource
        template = route.canonical if route is not None else "unmatched"
        metrics = request.app[METRICS]
        metrics.http_requests.labels(template, request.method, str(status)).inc()
        metrics.http_seconds.labels(template).observe(time.perf_counter() - started)


_COMPRESS_ABOVE = 1024


@web.middleware
async def compression(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Larger answers in the coding the client prefers (slow links are common)."""
    response = await handler(request)
    body = response.body if isinstance(response, web.Response) else None
    if isinstance(body, bytes | bytearray) and len(body) > _COMPRESS_ABOVE:
        assert isinstance(response, web.Response)
        encode_answer(request, response)
    return response
