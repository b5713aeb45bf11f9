"""`GET /api/v1/lookup?value=...[&kind=...][&limit=...]`: "have we seen this?".

An address or network, domain, URL, e-mail address, file hash or free text, looked up in the
view's lookup index (hub.store.lookup): the indicators and observables that name it, and the
reports, sightings, observed-data, groupings and notes that refer to those, among what the
caller may read (`hub.api.access.reading`, the decision TAXII takes: the latest version it
may read of each object, not revoked), each with its collection and when it arrived there.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiMapping

from hub.api.access import Reading, caller, reading
from hub.api.keys import COLLECTIONS, VIEW
from hub.collections import Collection
from hub.errors import BadRequest
from hub.stix.markings import Tlp
from hub.store.lookup_values import (
    QUERY_KINDS,
    LookupQuery,
    NotAValue,
    kind_name,
    lookup_query,
)
from hub.store.view import Found, LookupAnswer

PARAMETERS = frozenset({"value", "kind", "limit"})
DEFAULT_LIMIT, MAX_LIMIT = 100, 500
NAME = "$.name"
_LIMIT = re.compile(r"[0-9]{1,4}")


def tlp_label(level: int | None) -> str | None:
    """The TLP label as FIRST writes it ("TLP:AMBER+STRICT")."""
    return None if level is None else "TLP:" + Tlp(level).name.replace("_", "+")


def _refuse(parameter: str, description: str) -> BadRequest:
    return BadRequest(f"{parameter}: {description}", details={"parameter": parameter})


def lookup_request(query: MultiMapping[str]) -> tuple[LookupQuery, int]:
    """The look-up a query string asks for, and its limit; 400 naming the parameter."""
    unknown = sorted(set(query) - PARAMETERS)
    if unknown:
        raise _refuse(
            unknown[0],
            f"unsupported query parameter; this endpoint takes {', '.join(sorted(PARAMETERS))}",
        )
    for name in PARAMETERS:
        if len(query.getall(name, [])) > 1:
            raise _refuse(name, "give it once")
    limit = query.get("limit", str(DEFAULT_LIMIT))
    if not _LIMIT.fullmatch(limit) or not 1 <= int(limit) <= MAX_LIMIT:
        raise _refuse("limit", f"{limit!r} is not a number from 1 to {MAX_LIMIT}")
    return value_query(query.get("value", ""), query.get("kind") or None), int(limit)


def value_query(value: object, kind: object, kind_field: str = "kind") -> LookupQuery:
    """What looking up `value` (of `kind`, else guessed) asks; 400 naming the field that is
    wrong (`value`, or `kind_field`). The look-up's and the subscriptions' one check."""
    if kind is not None and (not isinstance(kind, str) or kind not in QUERY_KINDS):
        shown = repr(kind)[:100]
        raise _refuse(kind_field, f"{shown} is not one of {', '.join(QUERY_KINDS)}")
    if not isinstance(value, str):
        raise _refuse("value", "give the value to look up as a string")
    try:
        return lookup_query(value, kind)
    except NotAValue as exc:
        raise _refuse("value", str(exc)) from None


async def look_up(
    request: web.Request,
    scope: Reading,
    query: LookupQuery,
    limit: int,
    paths: tuple[str, ...] = (NAME,),
) -> LookupAnswer:
    """The view's answer for `query`, as `scope` may read it (the API's and the console's)."""
    return await request.app[VIEW].lookup(
        query, list(scope.collections), scope.reader, limit, paths
    )


def _shown(found: Found, scope: Reading) -> dict[str, Any]:
    a = found.arrival
    entry: dict[str, Any] = {
        "id": a.id,
        "type": a.type,
        "name": a.fields[0] if a.fields and isinstance(a.fields[0], str) else None,
        "version": a.version,
        "collection": a.collection,
        "collection_id": scope.collections[a.collection].id,
        "date_added": a.date_added,
        "tlp": tlp_label(a.tlp),
    }
    if found.matched:
        entry["matched"] = [{"value": m.value, "relation": m.relation} for m in found.matched]
    else:
        entry["refers_to"] = list(found.refers_to)
    return entry


async def lookup(request: web.Request) -> web.Response:
    account = await caller(request)
    query, limit = lookup_request(request.query)
    collections: dict[str, Collection] = request.app[COLLECTIONS]
    scope = reading(account, collections)
    answer = await look_up(request, scope, query, limit)
    body = {
        "query": {"value": query.value, "kind": kind_name(query.kind)},
        "objects": [_shown(found, scope) for found in answer.found],
        "more": answer.more,
    }
    return web.Response(
        body=orjson.dumps(body),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/lookup", lookup)
