"""The reader's collections, what arrived lately in each (newest first, paged, filtered by
type, TLP and time), and its major-incident alerts with their state."""

from __future__ import annotations

import contextlib
import re
from dataclasses import replace
from datetime import UTC, datetime

from aiohttp import web

from hub.api.console.common import LIST_PATHS, Reader, not_found, reader_of, rows
from hub.api.console.render import language_of, page
from hub.api.keys import REACHABILITY_BOOK, SETTINGS, VIEW
from hub.collections import ALERTS, Collection
from hub.correlate.alerts import ALERT_PROPERTY, alert_state, rule_windows
from hub.errors import Unavailable
from hub.reachability import Check
from hub.stix import timestamps
from hub.stix.markings import Tlp
from hub.store.view import RecentQuery

PAGE = 50
_TYPE = re.compile(r"[a-z0-9][a-z0-9-]{0,249}")
_SEQ = re.compile(r"[0-9]{1,18}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TLP_CHOICES = [(level.name.lower().replace("_", "+"), level) for level in Tlp]
# Offered in the type filter; any other STIX type can be typed in.
COMMON_TYPES = (
    "indicator",
    "report",
    "incident",
    "sighting",
    "observed-data",
    "malware",
    "attack-pattern",
    "vulnerability",
    "threat-actor",
    "campaign",
    "identity",
    "relationship",
    "grouping",
    "note",
    "course-of-action",
    "ipv4-addr",
    "domain-name",
    "url",
    "file",
    "email-addr",
)


async def home(request: web.Request) -> web.Response:
    """The collections this reader may read, each with its latest arrivals."""
    reader = reader_of(request)
    view = request.app[VIEW]
    shelves = []
    for collection in reader.scope.collections.values():
        latest = await view.recent(
            RecentQuery(collection.alias, reader.scope.reader, limit=5, paths=LIST_PATHS)
        )
        shelves.append((collection, rows(request, latest)))
    pending = await pending_for_reader(request, reader.account.member)
    done = request.query.get("done") == "reachable"
    context = {"reader": reader, "shelves": shelves, "pending_check": pending, "reachable": done}
    return page(request, "home.html", context)


def _collection(reader: Reader, alias: str) -> Collection | None:
    return reader.scope.collections.get(alias)


def _filters(request: web.Request) -> tuple[RecentQuery | None, dict[str, str], str | None]:
    """The list's filters from the query string: (the query, the filters as given, what is
    wrong with them)."""
    q = request.query
    given = {k: q.get(k, "").strip()[:300] for k in ("type", "tlp", "since", "before")}
    say = language_of(request).say
    kind = given["type"] or None
    if kind is not None and not _TYPE.fullmatch(kind):
        return None, given, say("%(value)s is not a STIX type.", value=kind)
    tlp = dict(TLP_CHOICES).get(given["tlp"]) if given["tlp"] else None
    if given["tlp"] and tlp is None:
        return None, given, say("%(value)s is not a TLP level.", value=given["tlp"])
    since = given["since"] or None
    if since is not None:
        stamp = f"{since}T00:00:00Z" if _DAY.fullmatch(since) else since
        try:
            timestamps.sort_key(stamp)
        except ValueError:
            return None, given, say("%(value)s is not a date (YYYY-MM-DD).", value=since)
        since = stamp
    before = given["before"] or None
    if before is not None and not _SEQ.fullmatch(before):
        return None, given, say("This page link is not valid; start again from the first page.")
    query = RecentQuery(
        collection="",
        reader="",
        before_seq=int(before) if before else None,
        type=kind,
        tlp=int(tlp) if tlp is not None else None,
        since=since,
        limit=PAGE + 1,
        paths=LIST_PATHS,
    )
    return query, given, None


async def collection_page(request: web.Request) -> web.Response:
    reader = reader_of(request)
    collection = _collection(reader, request.match_info["alias"])
    if collection is None:
        return not_found(request, reader)
    query, given, error = _filters(request)
    found = []
    if query is not None:
        found = await request.app[VIEW].recent(
            replace(query, collection=collection.alias, reader=reader.scope.reader)
        )
    more = len(found) > PAGE
    found = found[:PAGE]
    older = None
    if more:
        keep = {k: v for k, v in given.items() if v and k != "before"}
        older = {**keep, "before": str(found[-1].seq)}
    context = {
        "reader": reader,
        "collection": collection,
        "objects": rows(request, found),
        "filters": given,
        "error": error,
        "older": older,
        "first_page": bool(given["before"]),
        "tlp_choices": [name for name, _ in TLP_CHOICES],
        "common_types": COMMON_TYPES,
    }
    return page(request, "collection.html", context, status=400 if error else 200)


async def alerts_page(request: web.Request) -> web.Response:
    reader = reader_of(request)
    alerts = reader.scope.collections.get(ALERTS)
    if alerts is None:
        return not_found(request, reader)
    before = request.query.get("before", "")
    found = await request.app[VIEW].recent(
        RecentQuery(
            alerts.alias,
            reader.scope.reader,
            before_seq=int(before) if _SEQ.fullmatch(before) else None,
            limit=PAGE + 1,
            paths=(*LIST_PATHS, f"$.{ALERT_PROPERTY}"),
        )
    )
    more = len(found) > PAGE
    listed = rows(request, found[:PAGE])
    windows = rule_windows(request.app[SETTINGS].federation.correlation)
    shown = [
        (row, row.extra or {}, alert_state(row.extra or {}, row.revoked, windows)) for row in listed
    ]
    context = {
        "reader": reader,
        "alerts": shown,
        "older": {"before": str(found[PAGE - 1].seq)} if more else None,
    }
    return page(request, "alerts.html", context)


async def pending_for_reader(request: web.Request, member: str | None) -> Check | None:
    """The open check the reader's member has yet to answer (the console's banner)."""
    if member is None or REACHABILITY_BOOK not in request.app:
        return None
    book = request.app[REACHABILITY_BOOK]
    with contextlib.suppress(Unavailable):  # the home page does not fail for a banner
        await book.refresh()
    return book.pending_for(member, datetime.now(UTC))
