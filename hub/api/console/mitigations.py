"""The mitigations of an alert, as its page shows them: every course-of-action the reader may
read that `mitigates` something the alert refers to, newest first, each with its signatures
checked (hub.api.console.signatures), however it was sent (API, console, CLI or TAXII);
when there are more than the page shows, each sender gets its turn.

Found through what the alert refers to: its relationships are looked up per target, so the
cost is bounded by MAX_TARGETS lookups of MAX_REFERRERS rows and MAX_SHOWN bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson
from aiohttp import web

from hub.api.console.common import LIST_PATHS, SUBMITTER, Reader, sender
from hub.api.console.render import language_of
from hub.api.console.signatures import Signatures, reason_text, signatures_of
from hub.api.keys import SETTINGS, VIEW
from hub.correlate.mitigations import MITIGABLE, MITIGATES
from hub.signing.provenance import extension_of
from hub.store.view import Arrival

MAX_TARGETS = 50
MAX_REFERRERS = 200
MAX_SHOWN = 20
DESCRIPTION_CHARS = 3000
_RELATION = ("$.relationship_type", "$.source_ref", "$.revoked", SUBMITTER)


@dataclass(frozen=True)
class Mitigation:
    """One course of action shared on the alert, as the reader may read it."""

    id: str
    name: str
    description: str
    tlp: int | None
    sender: str
    date_added: str
    targets: tuple[str, ...]  # what of the alert it mitigates
    signatures: Signatures
    hub_reason: str
    member_reason: str


def fair_share(actions: list[Arrival]) -> list[Arrival]:
    """At most MAX_SHOWN, newest first, taken in turns from each sender (its newest, then
    each one's second newest, ...): one member sending many cannot push the others' off."""
    newest = sorted(actions, key=lambda a: (a.date_added, a.seq), reverse=True)
    rank: dict[object, int] = {}
    turns = []
    for action in newest:
        sender_of = action.fields[1]
        rank[sender_of] = rank.get(sender_of, 0) + 1
        turns.append((rank[sender_of], action))
    chosen = {a.seq for _, a in sorted(turns, key=lambda t: t[0])[:MAX_SHOWN]}
    return [a for a in newest if a.seq in chosen]


async def mitigations_of(
    request: web.Request, reader: Reader, referred: list[Arrival]
) -> list[Mitigation]:
    """The mitigations of the alert whose references the reader may read are `referred`."""
    view, collections = request.app[VIEW], list(reader.scope.collections)
    # (course-of-action, the relationship's sender) → what it mitigates: a relationship
    # counts only from the course of action's own sender, so nobody can hang another
    # member's mitigation on an alert it never meant.
    targets: dict[tuple[str, object], list[str]] = {}
    for target in [a for a in referred if a.type in MITIGABLE][:MAX_TARGETS]:
        found = await view.referrers(
            target.id, collections, reader.scope.reader, MAX_REFERRERS, _RELATION
        )
        for relation in found:
            kind, source, revoked, submitter = relation.fields
            if (
                relation.type == "relationship"
                and kind == MITIGATES
                and isinstance(source, str)
                and source.startswith("course-of-action--")
                and revoked not in (1, True)
            ):
                targets.setdefault((source, submitter), []).append(target.id)
    if not targets:
        return []
    paths = (*LIST_PATHS, "$.description")
    sources = list(dict.fromkeys(source for source, _ in targets))
    actions = await view.present(sources, collections, reader.scope.reader, paths)
    actions = fair_share(
        [a for a in actions if a.fields[2] not in (1, True) and (a.id, a.fields[1]) in targets]
    )
    federation = request.app[SETTINGS].federation
    gettext = language_of(request).gettext
    shown = []
    for action in actions:
        raw = await view.body(action.seq)
        if raw is None:
            continue
        obj = orjson.loads(raw)
        checked = await signatures_of(request, obj)
        ext = extension_of(obj)
        name, _, _, description = action.fields
        shown.append(
            Mitigation(
                id=action.id,
                name=name if isinstance(name, str) else "",
                description=description[:DESCRIPTION_CHARS] if isinstance(description, str) else "",
                tlp=action.tlp,
                sender=sender(
                    ext.get("submitter") if isinstance(ext, Mapping) else None, federation, gettext
                ),
                date_added=action.date_added,
                targets=tuple(sorted(set(targets[(action.id, action.fields[1])]))),
                signatures=checked,
                hub_reason=reason_text(checked.hub.reason, gettext),
                member_reason=reason_text(checked.member.reason, gettext),
            )
        )
    return shown
