"""Request bodies: the encodings the hub decodes, and how long a body may take to arrive.

aiohttp decodes gzip and deflate bodies itself (and counts the decoded bytes against
`max_content_length`); any other Content-Encoding is refused with 415 before the handler
reads a byte, instead of being read as if it were plain JSON. A body gets `body_timeout`
seconds; after that it must keep arriving at `body_min_rate` bytes per second on average,
or the read fails with 408, so a client trickling bytes cannot hold a request open for
ever, while a large submission over a slow link still gets through.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from hub.api.keys import SETTINGS
from hub.api.middleware import Handler
from hub.errors import RequestTimeout, UnsupportedMediaType

ENCODINGS = ("gzip", "deflate", "identity")


def unsupported_encoding(encoding: str) -> UnsupportedMediaType:
    """The refusal of a body sent in an encoding the hub does not decode."""
    return UnsupportedMediaType(
        f"Content-Encoding {encoding!r} is not supported: send the body as "
        f"{', '.join(ENCODINGS[:-1])} or {ENCODINGS[-1]}"
    )


@web.middleware
async def request_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """415 for an encoding aiohttp would not decode; a deadline on reading the body."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding and encoding not in ENCODINGS:
        raise unsupported_encoding(request.headers["Content-Encoding"])
    body = request.content
    if not request.body_exists or body.is_eof():
        return await handler(request)
    settings = request.app[SETTINGS]
    loop = asyncio.get_running_loop()
    started = loop.time()
    timer: asyncio.TimerHandle

    def check() -> None:
        nonlocal timer
        if body.is_eof():
            return
        due = started + settings.body_timeout + body.total_raw_bytes / settings.body_min_rate
        if loop.time() < due:
            timer = loop.call_at(due, check)
            return
        # The handler's read (now or later) raises this, and answers 408.
        body.set_exception(
            RequestTimeout(
                f"the request body did not arrive in time: {body.total_raw_bytes} bytes in "
                f"{loop.time() - started:.0f} s (after {settings.body_timeout:g} s a body "
                f"must keep up {settings.body_min_rate} bytes per second)"
            )
        )

    timer = loop.call_at(started + settings.body_timeout, check)
    try:
        return await handler(request)
    finally:
        timer.cancel()
