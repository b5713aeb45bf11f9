"""`GET /api/v1/exports/{collection}?format=txt|csv|suricata|stix`: a collection's current
indicators and observables in a format an analyst's tools take (hub.export).

What a reader gets is what TAXII gives it: the same collection check (`permitted_collection`)
and the same view query (the latest version of each object this account may read), page by
page, so an export can never hold an object its reader could not fetch over TAXII. The
answer streams: one page of the view is in memory at a time, whatever the collection holds.
Each member runs at most EXPORTS_PER_MEMBER exports at once (429 beyond), so its accounts
cannot keep the view and the event loop busy for everyone.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from aiohttp import web
from multidict import MultiMapping

from hub.api.access import Reading, permitted_reading
from hub.api.keys import ACCOUNT, REQUEST_ID, SETTINGS, VIEW
from hub.api.readers import bound_buffers, write_within
from hub.errors import BadRequest, TooManyRequests
from hub.export.formats import WRITERS, Writer
from hub.export.selection import (
    DEFAULT_TYPES,
    FORMATS,
    ExportOptions,
    choose,
    choose_stored,
    facts_of,
)
from hub.export.values import EXPORT_KINDS
from hub.federation import Account
from hub.stix import timestamps
from hub.stix.markings import Tlp
from hub.store.view import ObjectQuery, Page

# Objects per read of the view (the settings' page_bytes bounds its bytes too): big enough
# that 100,000 objects take few reads, small enough that other requests wait little.
PAGE = 500
EXPORTS_PER_MEMBER = 2
MAX_TYPES = 64  # each is a parameter of the view's query
PARAMETERS = frozenset({"format", "kind", "types", "since", "min_confidence", "tlp"})
_TYPE = re.compile(r"[a-z0-9][a-z0-9-]{0,249}")
_CONFIDENCE = re.compile(r"[0-9]{1,3}")


@dataclass
class ExportSlots:
    """The exports running now, per member (per account for operators)."""

    running: Counter[str] = field(default_factory=Counter)

    def take(self, account: Account) -> str:
        """Count one more export for the account's member; 429 when it has enough running."""
        holder = account.member or f"account:{account.username}"
        if self.running[holder] >= EXPORTS_PER_MEMBER:
            raise TooManyRequests(
                f"{EXPORTS_PER_MEMBER} exports for {holder!r} are running; retry when one ends",
                retry_after=5,
            )
        self.running[holder] += 1
        return holder

    def give_back(self, holder: str) -> None:
        self.running[holder] -= 1
        if self.running[holder] <= 0:
            del self.running[holder]


EXPORTS = web.AppKey("exports", ExportSlots)


def _list(query: MultiMapping[str], name: str) -> list[str]:
    return [v.strip() for raw in query.getall(name, []) for v in raw.split(",") if v.strip()]


def _tlp(text: str) -> Tlp:
    # `+` in a query string arrives as a space: amber+strict, amber strict, amber-strict.
    name = text.strip().upper().removeprefix("TLP:").replace(" ", "_").replace("-", "_")
    if name == "WHITE":
        return Tlp.CLEAR  # TLP 1.0's name for it
    try:
        return Tlp[name.replace("+", "_")]
    except KeyError:
        raise BadRequest(
            f"tlp={text!r} is not a TLP level; use clear, green, amber, amber+strict or red"
        ) from None


def export_options(query: MultiMapping[str]) -> ExportOptions:
    """The export a query string asks for; 400 naming the first parameter that is wrong."""
    unknown = sorted(set(query) - PARAMETERS)
    if unknown:
        raise BadRequest(
            f"unsupported query parameter(s): {', '.join(unknown)}; this endpoint takes "
            f"{', '.join(sorted(PARAMETERS))}"
        )
    fmt = query.get("format", "")
    if fmt not in FORMATS:
        raise BadRequest(f"format={fmt!r}: give format= one of {', '.join(FORMATS)}")
    kinds = _list(query, "kind")
    for kind in kinds:
        if kind not in EXPORT_KINDS:
            raise BadRequest(f"kind={kind!r} is not one of {', '.join(EXPORT_KINDS)}")
    if fmt == "txt" and not kinds:
        raise BadRequest(
            "format=txt lists the values of the kinds you name, one per line: add "
            f"kind= one or more of {', '.join(EXPORT_KINDS)} (e.g. kind=ipv4,ipv6 for a "
            "firewall, kind=domain for DNS)"
        )
    types = _list(query, "types")
    if len(types) > MAX_TYPES:
        raise BadRequest(f"types names {len(types)} types; at most {MAX_TYPES}")
    for name in types:
        if not _TYPE.fullmatch(name):
            raise BadRequest(f"types: {name!r} is not a STIX object type")
    since = query.get("since")
    if since is not None:
        try:
            timestamps.sort_key(since)
        except ValueError as exc:
            raise BadRequest(f"since={since!r}: {exc}") from None
    confidence = query.get("min_confidence")
    if confidence is not None and (not _CONFIDENCE.fullmatch(confidence) or int(confidence) > 100):
        raise BadRequest(f"min_confidence={confidence!r} must be an integer from 0 to 100")
    return ExportOptions(
        format=fmt,
        kinds=frozenset(kinds),
        types=tuple(dict.fromkeys(types)) or DEFAULT_TYPES,
        since=since,
        min_confidence=int(confidence) if confidence is not None else None,
        tlp=_tlp(query["tlp"]) if "tlp" in query else None,
    )


async def export(request: web.Request) -> web.StreamResponse:
    """Stream the export of one collection, as its reader may read it."""
    scope, collection = await permitted_reading(request)
    options = export_options(request.query)
    if request.method == "HEAD":
        # What a GET would answer, without reading (or holding a slot for) the export.
        kind = WRITERS[options.format]
        return web.Response(headers=_headers(kind, collection.alias, options, request))
    slots = request.app[EXPORTS]
    holder = slots.take(request[ACCOUNT])
    try:
        return await _stream(request, scope, collection.alias, options)
    finally:
        slots.give_back(holder)


def _headers(
    writer: type[Writer], alias: str, options: ExportOptions, request: web.Request
) -> dict[str, str]:
    kinds = "-".join(sorted(options.kinds)) or "all"
    return {
        "Content-Type": writer.media_type,
        "Content-Disposition": f'attachment; filename="{alias}-{kinds}.{writer.extension}"',
        "Cache-Control": "no-store",
        # The middleware's copy would come after the headers went out with the stream.
        "X-Request-ID": request[REQUEST_ID],
    }


async def _stream(
    request: web.Request, scope: Reading, alias: str, options: ExportOptions
) -> web.StreamResponse:
    settings, view = request.app[SETTINGS], request.app[VIEW]
    moment = datetime.now(UTC)
    now = timestamps.format_micros(moment)
    now_key = timestamps.sort_key(now)
    writer = WRITERS[options.format](options, alias, now)
    response = web.StreamResponse(headers=_headers(type(writer), alias, options, request))
    response.enable_compression()  # when the client accepts it: blocklists compress well
    await response.prepare(request)
    bound_buffers(request, settings.stream_buffer_bytes)
    timeout = settings.stream_write_timeout

    def read(after: int) -> asyncio.Future[Page]:
        query = ObjectQuery(
            collection=alias,
            reader=scope.reader,
            after_seq=after,
            added_after=options.since,
            types=options.types,
            versions=("last",),
            limit=PAGE,
            max_bytes=settings.page_bytes,
            # The value formats show no object: they read the facts the view keeps.
            with_json=options.format == "stix",
            with_facts=True,
        )
        return asyncio.ensure_future(view.objects(query))

    # The view reads the next page (on its own thread) while this one is written: two pages
    # in memory at most.
    reading = read(0)
    try:
        await write_within(response, writer.head(), timeout)
        while True:
            page = await reading
            if page.more:
                reading = read(page.last_seq)
            chosen = [
                found
                for entry in page.entries
                if (
                    found := choose_stored(
                        entry.facts, entry.id, entry.json, entry.date_added, options, now_key
                    )
                    if entry.facts
                    # No facts kept (none expected): found from the object, as they are kept.
                    else choose(
                        facts_of(orjson.loads(entry.json)),
                        entry.id,
                        entry.json,
                        entry.date_added,
                        options,
                        now_key,
                    )
                )
                is not None
            ]
            await write_within(response, writer.page(chosen), timeout)
            if not page.more:
                break
        await write_within(response, writer.tail(), timeout)
        await response.write_eof()
    except (TimeoutError, ConnectionResetError):
        # A reader that stopped reading, or went away: its file has no closing line, so it
        # knows the export was cut off.
        if request.transport is not None:
            request.transport.close()
    finally:
        reading.cancel()
    return response


def add_routes(app: web.Application) -> None:
    app[EXPORTS] = ExportSlots()
    app.router.add_get("/api/v1/exports/{collection}", export)
