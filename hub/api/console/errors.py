"""Console pages answer people, not TAXII clients: an unknown address under /console/ gets
the console's not-found page, and an unexpected failure an HTML page with the error id
that the hub logs (with its traceback, never sent), in the reader's language."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from hub.api.console.render import ROOT, page
from hub.errors import HubError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def console_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors under /console/ as console pages; every other path untouched."""
    if not request.path.startswith(ROOT):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPNotFound:
        # The same page a reader gets for what it may not open, so it tells nothing more.
        return page(request, "not_found.html", {"reader": None}, status=404)
    except (web.HTTPException, HubError):
        raise
    except Exception:
        error_id = uuid.uuid4().hex
        log.exception(
            "unexpected error (error_id=%s) on %s %s", error_id, request.method, request.path
        )
        return page(request, "error.html", {"reader": None, "error_id": error_id}, status=500)
