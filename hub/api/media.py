"""TAXII 2.1 media types (section 1.6.8): what a client may send and accept."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from hub.errors import NotAcceptable, UnsupportedMediaType

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"


def _media_ranges(header: str) -> list[tuple[str, dict[str, str]]]:
    ranges = []
    for part in header.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        parsed = {}
        for param in params:
            name, _, value = param.partition("=")
            parsed[name.strip().lower()] = value.strip().strip('"')
        if kind:
            ranges.append((kind.lower(), parsed))
    return ranges


def _is_taxii(kind: str, params: dict[str, str], *, wildcards: bool) -> bool:
    if kind == "application/taxii+json":
        return params.get("version", "2.1") == "2.1"
    return wildcards and kind in ("*/*", "application/*")


def require_taxii_accept(request: web.Request) -> None:
    """406 unless the client accepts TAXII 2.1 JSON (no Accept header means anything)."""
    header = request.headers.get("Accept")
    if not header:
        return
    for kind, params in _media_ranges(header):
        if params.get("q") in ("0", "0.0", "0.00", "0.000"):
            continue
        if _is_taxii(kind, params, wildcards=True):
            return
    raise NotAcceptable(
        f"this endpoint answers only with {TAXII_MEDIA_TYPE}; Accept was {header!r}"
    )


def require_taxii_content(request: web.Request) -> None:
    """415 unless the request body is declared as TAXII 2.1 JSON."""
    header = request.headers.get("Content-Type", "")
    ranges = _media_ranges(header)
    if not ranges or not _is_taxii(*ranges[0], wildcards=False):
        raise UnsupportedMediaType(
            f"send the envelope as {TAXII_MEDIA_TYPE}; Content-Type was {header or 'missing'!r}"
        )


def taxii_response(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A TAXII JSON response; `body` may be pre-serialized bytes."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return web.Response(
        body=data,
        status=status,
        headers={"Content-Type": TAXII_MEDIA_TYPE, **(headers or {})},
    )
