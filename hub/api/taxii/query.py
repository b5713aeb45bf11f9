"""TAXII 2.1 filtering and paging parameters (sections 3.4, 3.5) → an ObjectQuery.

`next` is an opaque cursor over the view's ingest sequence, never a timestamp, so paging
neither skips nor repeats when many objects share one `date_added`.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime

from aiohttp import web

from hub.errors import BadRequest
from hub.store.view import ObjectQuery

_VERSION_WORDS = {"first", "last", "all"}
_STIX_ID = re.compile(r"^[a-z0-9][a-z0-9-]*--[0-9a-fA-F-]{36}$")
_CURSOR_PREFIX = "v1:"


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        if raw.startswith(_CURSOR_PREFIX) and raw[len(_CURSOR_PREFIX) :].isdigit():
            return int(raw[len(_CURSOR_PREFIX) :])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise BadRequest(f"next={text!r} is not a cursor this server gave out")


def _timestamp(name: str, value: str) -> str:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(f"{name}={value!r} is not an RFC 3339 timestamp") from exc
    return value


def _list(request: web.Request, name: str) -> tuple[str, ...]:
    values = []
    for raw in request.query.getall(name, []):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return tuple(values)


def object_query(request: web.Request, collection: str, max_limit: int) -> ObjectQuery:
    """Parse and check the query string of a Get Objects request."""
    q = request.query
    limit = max_limit
    if "limit" in q:
        if not q["limit"].isdigit() or int(q["limit"]) < 1:
            raise BadRequest(f"limit={q['limit']!r} must be a positive integer")
        limit = min(int(q["limit"]), max_limit)
    ids = _list(request, "match[id]")
    for obj_id in ids:
        if not _STIX_ID.match(obj_id):
            raise BadRequest(f"match[id]={obj_id!r} is not a STIX identifier")
    versions = _list(request, "match[version]") or ("last",)
    for version in versions:
        if version not in _VERSION_WORDS:
            _timestamp("match[version]", version)
    known = {
        "limit",
        "next",
        "added_after",
        "match[id]",
        "match[type]",
        "match[version]",
        "match[spec_version]",
    }
    unknown = sorted(set(q) - known)
    if unknown:
        raise BadRequest(f"unsupported query parameter(s): {', '.join(unknown)}")
    return ObjectQuery(
        collection=collection,
        after_seq=decode_cursor(q["next"]) if "next" in q else 0,
        added_after=_timestamp("added_after", q["added_after"]) if "added_after" in q else None,
        ids=ids,
        types=_list(request, "match[type]"),
        versions=versions,
        spec_versions=_list(request, "match[spec_version]"),
        limit=limit,
    )
