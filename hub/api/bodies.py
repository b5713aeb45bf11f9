"""Request bodies: the encodings the hub decodes, and how long a body may take to arrive.

A body may come in zstd, gzip, deflate or identity (hub.api.codings decodes it when a
handler reads it with `read_body`, at most `max_content_length` bytes before and after
decoding); any other Content-Encoding is refused with 415 before the handler reads a byte,
instead of being read as if it were plain JSON. A body gets `body_timeout` seconds; after
that it must keep arriving at `body_min_rate` bytes per second on average, or the read
fails with 408, so a client trickling bytes cannot hold a request open for ever, while a
large submission over a slow link still gets through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

import orjson
from aiohttp import web

from hub.api.codings import CODINGS, BodyDecoder, DecodingError
from hub.api.keys import SETTINGS
from hub.api.middleware import Handler
from hub.errors import BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType

ENCODINGS = (*CODINGS, "identity")
# Bodies read as JSON; a form (the dashboard's login) is read by aiohttp, which no longer
# decodes content codings (hub.api.server), so it must come as identity.
_DECODED_TYPES = ("application/taxii+json", "application/json", "application/stix+json")
_BODY = web.RequestKey("decoded_body", bytes)


def unsupported_encoding(encoding: str) -> UnsupportedMediaType:
    """The refusal of a body sent in an encoding the hub does not decode."""
    return UnsupportedMediaType(
        f"Content-Encoding {encoding!r} is not supported: send the body as "
        f"{', '.join(ENCODINGS[:-1])} or {ENCODINGS[-1]}"
    )


def _encoding(request: web.Request) -> str:
    return request.headers.get("Content-Encoding", "").strip().lower() or "identity"


async def read_body(request: web.Request) -> bytes:
    """The request's body, decoded: 413 past `max_content_length` bytes before or after
    decoding, 400 for a body that is not valid in its coding. Read once, then kept."""
    if _BODY in request:
        return request[_BODY]
    encoding = _encoding(request)
    if encoding == "identity":
        body = await request.read()  # aiohttp refuses more than client_max_size: 413
    else:
        limit = request.app[SETTINGS].max_content_length
        decoder = BodyDecoder(encoding)
        decoded = bytearray()
        raw = 0
        try:
            async for chunk in request.content.iter_any():
                raw += len(chunk)
                decoder.feed(chunk, decoded, limit)
                if len(decoded) > limit or raw > limit:
                    which = "once decoded" if len(decoded) > limit else "as sent"
                    raise PayloadTooLarge(
                        f"the request body is larger than this server accepts: more than "
                        f"max_content_length ({limit:,} bytes) {which}"
                    )
            decoder.finish()
        except DecodingError as exc:
            raise BadRequest(str(exc)) from None
        body = bytes(decoded)
    request[_BODY] = body
    return body


@web.middleware
async def request_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """415 for an encoding the hub does not decode; a deadline on reading the body."""
    encoding = _encoding(request)
    if encoding not in ENCODINGS:
        raise unsupported_encoding(request.headers["Content-Encoding"])
    encoded = encoding != "identity" and request.body_exists
    if encoded and request.content_type not in _DECODED_TYPES:
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is accepted on JSON bodies only; send this "
            f"{request.content_type} body as identity"
        )
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


def json_fields(
    raw: bytes, fields: Collection[str] | None, example: str, what: str, *, empty_ok: bool = False
) -> dict[str, Any]:
    """A request body that must be one JSON object; with `fields`, of those names only. A
    400 otherwise, naming what is wrong (`example` shows the object, `what` names it)."""
    if empty_ok and not raw.strip():
        return {}
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest(f"the body is a JSON object: {example}")
    if fields is not None and (unknown := sorted(set(body) - set(fields))):
        known = ", ".join(sorted(fields))
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}: {what} has {known}")
    return body
