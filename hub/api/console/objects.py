"""One object as its reader may see it: its fields, TLP, sender, both signatures checked,
its versions, what it refers to and what refers to it, all among what the reader may read.

An object the reader may not read answers exactly as one that does not exist (hub.api.
console.common.not_found): the same page, the same status, whatever the id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from hub.api.console.act import (
    DONE,
    SIGHTABLE,
    AlertSummary,
    alert_summary,
    may_act,
    state_label,
)
from hub.api.console.common import (
    LIST_PATHS,
    NAME,
    Reader,
    not_found,
    reader_of,
    rows,
    sender,
)
from hub.api.console.mitigations import mitigations_of
from hub.api.console.render import HEADERS, collection_title, language_of, page
from hub.api.console.signatures import reason_text, signatures_of
from hub.api.keys import SETTINGS, VIEW
from hub.api.mitigations import DEFAULT_TLP, LEVELS
from hub.collections import ALERTS
from hub.correlate.alerts import ALERT_PROPERTY, alert_state, rule_windows
from hub.correlate.responses import STATES
from hub.federation import Contact, Federation
from hub.policy.redaction import references
from hub.signing.provenance import EXTENSION_ID, extension_of
from hub.store.view import Arrival

_STIX_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,249}--[0-9a-fA-F-]{36}")
_SEQ = re.compile(r"[0-9]{1,18}")
MAX_VERSIONS = 100
MAX_REFS = 200  # references of one object looked up; the rest are in its fields
MAX_REFERRERS = 50
VALUE_CHARS = 3000  # of one field on the page; the JSON download has it whole
FIELDS_CHARS = 60_000  # of all fields on the page: a page stays under 100 KB


@dataclass(frozen=True)
class Field:
    name: str
    text: str  # the value as shown (a string, or indented JSON)
    cut: int  # characters left out
    links: tuple[str, ...] = ()  # ids in the value the reader may open


def _field_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def fields_of(obj: Mapping[str, Any], openable: set[str]) -> tuple[list[Field], bool]:
    """The object's properties for the page (the provenance extension aside: the page shows
    it as sender and signatures), each bounded; and whether some were left out."""
    out: list[Field] = []
    budget = FIELDS_CHARS
    for name, value in obj.items():
        if name == "extensions" and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k != EXTENSION_ID}
            if not value:
                continue
        text = _field_text(value)
        shown = text[: min(VALUE_CHARS, budget)]
        links = tuple(ref for ref in dict.fromkeys(references({name: value})) if ref in openable)
        out.append(Field(name, shown, len(text) - len(shown), links))
        budget -= len(shown)
        if budget <= 0:
            return out, True
    return out, False


def _chosen(versions: list[Arrival], wanted: str | None) -> Arrival | None:
    if wanted is None:
        return versions[0]
    if not _SEQ.fullmatch(wanted):
        return None
    return next((v for v in versions if v.seq == int(wanted)), None)


async def _readable_version(
    request: web.Request, reader: Reader, object_id: str
) -> tuple[list[Arrival], Arrival | None]:
    """The object's versions this reader may read (newest first) and the one asked for."""
    if not _STIX_ID.fullmatch(object_id):
        return [], None
    versions = await request.app[VIEW].versions(
        object_id, list(reader.scope.collections), reader.scope.reader, MAX_VERSIONS, (NAME,)
    )
    if not versions:
        return [], None
    return versions, _chosen(versions, request.query.get("version"))


async def _readable(
    request: web.Request, reader: Reader, object_id: str
) -> tuple[list[Arrival], Arrival, bytes] | None:
    """The versions, the one asked for and its bytes, if this reader may read it."""
    versions, chosen = await _readable_version(request, reader, object_id)
    raw = await request.app[VIEW].body(chosen.seq) if chosen else None
    if chosen is None or raw is None:
        return None
    return versions, chosen, raw


def contacts_of_named(
    alert: AlertSummary, federation: Federation
) -> dict[str, tuple[Contact, ...]]:
    """The points of contact of the members the alert names (those that chose to be named
    in its responses or sightings), by identity; of nobody else."""
    found = {}
    for named in alert.named:
        member = federation.member_by_identity(named.identity)
        if member is not None and member.contacts:
            found[named.identity] = member.contacts
    return found


async def object_page(request: web.Request) -> web.Response:
    reader = reader_of(request)
    object_id = request.match_info["object_id"]
    found = await _readable(request, reader, object_id)
    if found is None:
        return not_found(request, reader)
    versions, chosen, raw = found
    obj: dict[str, Any] = orjson.loads(raw)
    view, collections = request.app[VIEW], list(reader.scope.collections)
    targets = [r for r in dict.fromkeys(references(obj)) if r != object_id][:MAX_REFS]
    referred = await view.present(targets, collections, reader.scope.reader, LIST_PATHS)
    referrers = await view.referrers(
        object_id, collections, reader.scope.reader, MAX_REFERRERS, LIST_PATHS
    )
    fields, cut = fields_of(obj, {a.id for a in referred})
    checked = await signatures_of(request, obj)
    ext = extension_of(obj)
    language = language_of(request)
    federation = request.app[SETTINGS].federation
    submitter = ext.get("submitter") if isinstance(ext, Mapping) else None
    titles = {c.alias: collection_title(c, language) for c in reader.scope.collections.values()}
    fields_of_alert = obj.get(ALERT_PROPERTY)
    alert, mitigations, named_contacts = None, [], {}
    if chosen.collection == ALERTS and isinstance(fields_of_alert, Mapping):
        windows = rule_windows(federation.correlation)
        state = alert_state(fields_of_alert, obj.get("revoked") is True, windows)
        alert = alert_summary(fields_of_alert, state, referred, language)
        mitigations = await mitigations_of(request, reader, referred)
        named_contacts = contacts_of_named(alert, federation)
    done = request.query.get("done")
    context = {
        "reader": reader,
        "type": str(obj.get("type", "")),
        "revoked": obj.get("revoked") is True,
        "object_id": object_id,
        "name": obj.get("name") if isinstance(obj.get("name"), str) else "",
        "arrival": chosen,
        "latest": chosen.seq == versions[0].seq,
        "sender": sender(submitter, federation, language.gettext),
        "received": ext.get("received") if isinstance(ext, Mapping) else None,
        "signatures": checked,
        "hub_reason": reason_text(checked.hub.reason, language.gettext),
        "member_reason": reason_text(checked.member.reason, language.gettext),
        "fields": fields,
        "cut": cut,
        "versions": versions,
        "collections": sorted({titles.get(v.collection, v.collection) for v in versions}),
        "titles": titles,
        "refers_to": rows(request, referred),
        "referred_by": rows(request, referrers),
        "alert": alert,
        "mitigations": mitigations,
        "named_contacts": named_contacts,
        "levels": LEVELS,
        "default_tlp": DEFAULT_TLP,
        "may_act": may_act(reader),
        "sightable": chosen.collection != ALERTS and obj.get("type") in SIGHTABLE,
        "states": [(s, state_label(s, language.say)) for s in STATES],
        "done": done if done in DONE else None,
    }
    return page(request, "object.html", context)


async def object_json(request: web.Request) -> web.StreamResponse:
    """The version shown, whole, as delivered: to keep or to feed to another tool."""
    reader = reader_of(request)
    object_id = request.match_info["object_id"]
    found = await _readable(request, reader, object_id)
    if found is None:
        return not_found(request, reader)
    raw = found[2]
    return web.Response(
        body=raw,
        content_type="application/stix+json",
        headers={
            **HEADERS,
            "Content-Disposition": f'attachment; filename="{object_id}.json"',
        },
    )
