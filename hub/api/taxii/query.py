"""TAXII 2.1 filtering and paging parameters (sections 3.4, 3.5) → an ObjectQuery.

`next` is an opaque cursor over the view's ingest sequence, never a timestamp, so paging
neither skips nor repeats when many objects share one `date_added`. The sequence is this
node's view's own, so the cursor names the view (its epoch) and another view refuses it
rather than skip or repeat objects.
"""

from __future__ import annotations

import base64
import binascii
import re

from aiohttp import web

from hub.errors import BadRequest
from hub.stix import timestamps
from hub.store.view import ObjectQuery

_VERSION_WORDS = {"first", "last", "all"}
_STIX_ID = re.compile(r"^[a-z0-9][a-z0-9-]*--[0-9a-fA-F-]{36}$")
_CURSOR = re.compile(r"v1:([0-9a-f]{1,32}):([0-9]{1,18})")
_LIMIT = re.compile(r"[0-9]{1,9}")


def encode_cursor(epoch: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{epoch}:{seq}".encode()).decode().rstrip("=")


def decode_cursor(text: str, epoch: str) -> int:
    """The sequence number in a cursor this view gave out; 400 for anything else."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    match = _CURSOR.fullmatch(raw)
    if match is None:
        raise BadRequest(f"next={text!r} is not a cursor this server gave out")
    if match.group(1) != epoch:
        raise BadRequest(
            f"next={text!r} was given out by another node or before this node's view was "
            "rebuilt; start again without next (or use added_after)"
        )
    return int(match.group(2))


def _timestamp(name: str, value: str) -> str:
    try:
        timestamps.sort_key(value)
    except ValueError as exc:
        raise BadRequest(f"{name}={value!r}: {exc}") from exc
    return value


def _list(request: web.Request, name: str) -> tuple[str, ...]:
    values: list[str] = []
    for raw in request.query.getall(name, []):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return tuple(values)


# Which filters each TAXII endpoint takes (sections 5.3-5.8).
OBJECTS = frozenset(
    {
        "limit",
        "next",
        "added_after",
        "match[id]",
        "match[type]",
        "match[version]",
        "match[spec_version]",
    }
)
ONE_OBJECT = frozenset({"limit", "next", "added_after", "match[version]", "match[spec_version]"})
VERSIONS = frozenset({"limit", "next", "added_after", "match[spec_version]"})


def object_query(
    request: web.Request,
    collection: str,
    max_limit: int,
    epoch: str,
    reader: str = "",
    *,
    allowed: frozenset[str] = OBJECTS,
    object_id: str | None = None,
    default_versions: tuple[str, ...] = ("last",),
    max_bytes: int | None = None,
    with_json: bool = True,
) -> ObjectQuery:
    """Parse and check the query string of a TAXII read request (objects, an object,
    its versions, the manifest); `allowed` names the filters that endpoint takes, and
    `max_bytes` and `with_json` say what one page of its answer may hold."""
    q = request.query
    unknown = sorted(set(q) - allowed)
    if unknown:
        raise BadRequest(f"unsupported query parameter(s) here: {', '.join(unknown)}")
    limit = max_limit
    if "limit" in q:
        if not _LIMIT.fullmatch(q["limit"]) or int(q["limit"]) < 1:
            raise BadRequest(f"limit={q['limit']!r} must be a positive integer")
        limit = min(int(q["limit"]), max_limit)
    ids = (object_id,) if object_id else _list(request, "match[id]")
    for obj_id in ids:
        if not _STIX_ID.match(obj_id):
            raise BadRequest(f"{obj_id!r} is not a STIX identifier")
    versions = _list(request, "match[version]") or default_versions
    for version in versions:
        if version not in _VERSION_WORDS:
            _timestamp("match[version]", version)
    return ObjectQuery(
        collection=collection,
        reader=reader,
        after_seq=decode_cursor(q["next"], epoch) if "next" in q else 0,
        added_after=_timestamp("added_after", q["added_after"]) if "added_after" in q else None,
        ids=ids,
        types=_list(request, "match[type]"),
        versions=versions,
        spec_versions=_list(request, "match[spec_version]"),
        limit=limit,
        max_bytes=max_bytes,
        with_json=with_json,
    )
