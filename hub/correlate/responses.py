"""Responses to alerts: a recipient's state on one of its alerts, as a STIX `note`.

A response is a note whose `object_refs` is the one alert it answers, carrying the hub's
response extension (a property extension, so it passes validation whatever the member's
`allow_custom`):

    "extensions": {"extension-definition--d076f4cc-…": {
        "extension_type": "property-extension",
        "state": "acknowledged" | "investigating" | "affected" | "not-affected" | "mitigated",
        "named": false        true: the responder may be named to the alert's other recipients
    }}

It goes through the pipeline as any object does (authenticated, validated, signed), but is
delivered to its sender's own collection alone: who responded is the one thing the alert's
other recipients must not learn, and the note's `created_by_ref` would tell them. The
correlator counts it (observe carries the state), one state per member, its latest. On a
`sighting`, the same extension with `named: true` lets the alert name its sender; with
`named: false` the sighting is shared under its sender's rules as any object, but what the
others receive names the hub where it named the sender (`created_by_ref`,
`where_sighted_refs`), as for an anonymous member: the alert counts a sighter without
naming it, and the sighting itself must not name it either.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from hub.collections import member_alias
from hub.federation import Federation
from hub.model import AlertResponse, Delivery, Item, RefusalCode, Submission, Verdict
from hub.policy.anonymity import anonymised
from hub.stix import timestamps
from hub.stix.markings import Tlp, tlp2_id

RESPONSE_EXTENSION = "extension-definition--d076f4cc-b6d4-48e3-b3e5-f17353a55f4c"
STATES = ("acknowledged", "investigating", "affected", "not-affected", "mitigated")
RESPONSE_RULE = "responses"
_NOT_SHARED = "a response to an alert is counted in the alert, not shared: its sender keeps it"


def _extension(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    extensions = obj.get("extensions")
    found = extensions.get(RESPONSE_EXTENSION) if isinstance(extensions, Mapping) else None
    return found if isinstance(found, Mapping) else None


def is_response(obj: Mapping[str, Any]) -> bool:
    """Whether `obj` is meant as a response (a note carrying the response extension)."""
    return obj.get("type") == "note" and _extension(obj) is not None


def chose_to_be_named(obj: Mapping[str, Any]) -> bool:
    """Whether the sender of a sighting or response chose to be named in alerts."""
    extension = _extension(obj)
    return extension is not None and extension.get("named") is True


def is_unnamed_sighting(obj: Mapping[str, Any]) -> bool:
    """A sighting whose sender said it is not to be named (the extension, `named: false`)."""
    extension = _extension(obj)
    return (
        obj.get("type") == "sighting" and extension is not None and extension.get("named") is False
    )


def response_of(obj: Mapping[str, Any]) -> AlertResponse | None:
    """The alert and state a well-formed response note records; None for anything else."""
    extension = _extension(obj)
    refs = obj.get("object_refs")
    if (
        obj.get("type") != "note"
        or extension is None
        or extension.get("state") not in STATES
        or not isinstance(refs, list)
        or len(refs) != 1
        or not str(refs[0]).startswith("grouping--")
    ):
        return None
    return AlertResponse(str(refs[0]), str(extension["state"]), chose_to_be_named(obj))


def response_note(
    alert_id: str, state: str, note: str | None, named: bool, author: str
) -> dict[str, Any]:
    """A response note by the member identity `author` (unsigned, as a member submits it)."""
    now = timestamps.rfc3339_now()
    return {
        "type": "note",
        "spec_version": "2.1",
        "id": f"note--{uuid.uuid4()}",
        "created": now,
        "modified": now,
        "created_by_ref": author,
        "abstract": state,
        "content": note or state,
        "object_refs": [alert_id],
        "object_marking_refs": [tlp2_id(Tlp.AMBER)],
        "extensions": {
            RESPONSE_EXTENSION: {
                "extension_type": "property-extension",
                "state": state,
                "named": named,
            }
        },
    }


def sighting_of(
    object_id: str,
    author: str,
    *,
    count: int = 1,
    where: str | None = None,
    named: bool = False,
    marking: str | None = None,
) -> dict[str, Any]:
    """A member's "seen here too": a STIX sighting of `object_id` by the member identity
    `author`, sighted at its own place; `where` (free text) goes in its description, as a
    STIX location needs coordinates or a region a CIRT may not want to give."""
    now = timestamps.rfc3339_now()
    sighting: dict[str, Any] = {
        "type": "sighting",
        "spec_version": "2.1",
        "id": f"sighting--{uuid.uuid4()}",
        "created": now,
        "modified": now,
        "created_by_ref": author,
        "first_seen": now,
        "last_seen": now,
        "count": count,
        "sighting_of_ref": object_id,
        "where_sighted_refs": [author],
        "object_marking_refs": [marking or tlp2_id(Tlp.AMBER)],
    }
    if where:
        sighting["description"] = where
    # Said either way: unnamed, the others receive it in the hub's name (UnnamedSightings).
    sighting["extensions"] = {
        RESPONSE_EXTENSION: {"extension_type": "property-extension", "named": named}
    }
    return sighting


@dataclass(frozen=True)
class ConfineResponses:
    """After route: a response goes to its sender's own collection only; a note that carries
    the extension but is not a well-formed response is refused, saying why."""

    federation: Federation

    def _confine(self, item: Item, sender: str) -> Item:
        if not is_response(item.obj):
            return item
        if response_of(item.obj) is None:
            return item.refuse(
                RefusalCode.INVALID_STIX,
                f"objects[{item.index}] ({item.id}): a response note refers to exactly one "
                f"alert (object_refs: [grouping--…]) and its extension's state is one of "
                f"{', '.join(STATES)}",
            )
        verdicts = tuple(
            Verdict(m.id, False, RESPONSE_RULE, _NOT_SHARED)
            for m in self.federation.members
            if m.id != sender
        )
        own = Delivery(member_alias(sender), item.obj, onward_sharing=False)
        return replace(item, deliveries=(own,), verdicts=verdicts)

    def __call__(self, submission: Submission) -> Submission:
        return submission.map_accepted(lambda item: self._confine(item, submission.member))


@dataclass(frozen=True)
class UnnamedSightings:
    """After route: an unnamed sighting reaches every collection but its sender's own in the
    hub's name (as an anonymous member's objects do), and signed by the hub alone."""

    federation: Federation

    def _hide(self, item: Item, submission: Submission) -> Item:
        sender = submission.sender
        if sender is None or not is_unnamed_sighting(item.obj):
            return item
        own, hub = member_alias(sender.id), self.federation.hub.identity
        deliveries = tuple(
            d
            if d.collection == own
            else replace(d, obj=anonymised(d.obj, sender.identity, hub), anonymous=True)
            for d in item.deliveries
        )
        return replace(item, deliveries=deliveries)

    def __call__(self, submission: Submission) -> Submission:
        return submission.map_accepted(lambda item: self._hide(item, submission))
