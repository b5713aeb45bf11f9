"""Conditional GET for the answers a client caches (discovery, the API root, collections):
an ETag on each, and 304 Not Modified, no body, when the client's copy is current.

A member on a slow link keeps these between runs; `Cache-Control: max-age` says how long it
may use its copy without asking, and after that a revalidation costs a few hundred bytes.
The tag is weak (RFC 9110 8.8.1): the same whichever Content-Encoding the body goes out in.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from aiohttp import web

from hub.api.media import taxii_response


def etag(body: bytes) -> str:
    return f'W/"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'


def cacheable(request: web.Request, body: Any, *, max_age: int) -> web.Response:
    """`body` as a TAXII answer with its ETag, or 304 if the request's If-None-Match has it."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    tag = etag(data)
    headers = {"ETag": tag, "Cache-Control": f"private, max-age={max_age}"}
    given = request.headers.get("If-None-Match", "")
    if tag in (t.strip() for t in given.split(",")) or given.strip() == "*":
        return web.Response(status=304, headers=headers)
    return taxii_response(data, headers=headers)
