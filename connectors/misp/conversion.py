"""MISP event → STIX 2.1 objects with misp-stix, each carrying the standard TLP 2.0 marking.

misp-stix marks what it builds from a tagged record (TLP 1.0 ids for white, green, amber
and red; TLP 2.0 for clear and amber+strict) and leaves the rest unmarked: observables,
relationships, the creator's identity. Unmarked, the hub would give them the member's
default TLP, which may be wider than the event's. So every object here gets the OASIS
TLP 2.0 id of its level, and the only TLP marking-definitions left are the OASIS ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.misp.library import parser_class
from connectors.misp.sharing import NotShared, Prepared, narrowest, prepare, tlp_name
from hub.stix.markings import TLP2_EXTENSION, Tlp, standard_tlp_id, tlp2_id, tlp_by_marking_id

# The date OASIS gives its TLP 2.0 marking-definitions; with the id, it names the version.
_TLP2_CREATED = "2022-10-01T00:00:00.000Z"

# An SRO or an analyst note is about its targets: it is at least as narrow as they are.
_ABOUT = {
    "relationship": ("source_ref", "target_ref"),
    "sighting": ("sighting_of_ref", "observed_data_refs"),
    "note": ("object_refs",),
    "opinion": ("object_refs",),
}
# References that say nothing about content: a creator or a marking does not take a level.
_NOT_CONTENT = frozenset({"created_by_ref", "object_marking_refs", "marking_ref"})


class ConversionError(Exception):
    """misp-stix could not convert the event; the message names where it came from."""


@dataclass(frozen=True)
class Conversion:
    """One MISP event as STIX 2.1: its objects, or why it was skipped."""

    origin: str
    uuid: str
    info: str
    objects: list[dict[str, Any]]
    level: Tlp | None = None
    left_out: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    skipped: str | None = None

    def bundle(self) -> dict[str, Any]:
        """A STIX bundle of the objects, named after the event as misp-stix names it."""
        return {"type": "bundle", "id": f"bundle--{self.uuid}", "objects": self.objects}


def convert_event(data: Mapping[str, Any], origin: str) -> Conversion:
    """One MISP event (`{"Event": {...}}` or the bare event) as marked STIX 2.1 objects."""
    event = data.get("Event", data)
    event = event if isinstance(event, Mapping) else {}  # prepare() says what is wrong
    uuid, info = str(event.get("uuid", "")), str(event.get("info", ""))
    try:
        prepared = prepare(data, origin)
    except NotShared as why:
        return Conversion(origin, uuid, info, [], skipped=str(why))
    objects, notes = _misp_stix(prepared.event, origin)
    return Conversion(
        origin,
        uuid,
        info,
        mark(objects, prepared),
        prepared.level,
        tuple(prepared.left_out),
        notes,
    )


def _misp_stix(event: dict[str, Any], origin: str) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    parser = parser_class()()
    try:
        parser.parse_misp_event(event)
        objects = json.loads(parser.bundle.serialize()).get("objects", [])
    # misp-stix raises whatever the event makes its code raise (KeyError, ValueError,
    # pymisp's errors); for the user it is one thing: this event could not be converted.
    except Exception as exc:
        raise ConversionError(
            f"{origin}: misp-stix could not convert the event: {type(exc).__name__}: {exc}"
        ) from exc
    notes = [
        f"misp-stix {kind} ({identifier}): {message}"
        for kind, found in (("error", parser.errors), ("warning", parser.warnings))
        for identifier, messages in found.items()
        for message in messages
    ]
    return objects, tuple(notes)


def _tlp_definition_level(obj: Mapping[str, Any]) -> Tlp | None:
    """The level a TLP marking-definition states, standard id or not; None for anything else."""
    if obj.get("type") != "marking-definition":
        return None
    known = tlp_by_marking_id().get(standard_tlp_id(str(obj.get("id"))))
    if known is not None:
        return known
    extensions = obj.get("extensions")
    extension = extensions.get(TLP2_EXTENSION) if isinstance(extensions, Mapping) else None
    definition = obj.get("definition")
    if isinstance(extension, Mapping):
        stated = extension.get("tlp_2_0")
    elif str(obj.get("definition_type", "")).lower() == "tlp" and isinstance(definition, Mapping):
        stated = definition.get("tlp")
    else:
        return None
    level = str(stated).strip().lower().removeprefix("tlp:")
    try:
        return Tlp.named("clear" if level == "white" else level)
    except KeyError:
        return None  # a TLP extension level the hub does not know stays as data


def _references(value: Any, key: str = "") -> Iterator[str]:
    """Every id a value refers to through *_ref / *_refs properties, at any depth."""
    if isinstance(value, Mapping):
        for name, inner in value.items():
            if name not in _NOT_CONTENT:
                yield from _references(inner, name)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner, key)
    elif isinstance(value, str) and key.endswith(("_ref", "_refs")):
        yield value


def _about(obj: Mapping[str, Any]) -> Iterator[str]:
    for key in _ABOUT.get(str(obj.get("type")), ()):
        yield from _references({key: obj.get(key)})


def _parts(obj: Mapping[str, Any]) -> Iterator[str]:
    """What the object's content is made of: an observed-data's or an observable's refs."""
    if obj.get("type") == "observed-data":
        yield from _references({"object_refs": obj.get("object_refs")})
    elif "created" not in obj:  # an SCO: its refs (and its extensions') are its parts
        yield from _references(obj)


def _uuid(stix_id: str) -> str:
    return stix_id.partition("--")[2]


def mark(objects: list[dict[str, Any]], prepared: Prepared) -> list[dict[str, Any]]:
    """The objects with exactly one TLP marking each, the standard one of their level."""
    tlp_ids = dict(tlp_by_marking_id())
    for obj in objects:
        level = _tlp_definition_level(obj)
        if level is not None:
            tlp_ids[obj["id"]] = level
    content = [obj for obj in objects if obj["id"] not in tlp_ids]

    levels: dict[str, Tlp | None] = {}
    for obj in content:
        own = (tlp_ids.get(ref) for ref in obj.get("object_marking_refs") or [])
        by_record = prepared.levels.get(_uuid(obj["id"]))
        levels[obj["id"]] = narrowest(prepared.level, by_record, *own)
    # Narrowing only ever raises a level, so this settles in a few rounds.
    changed = True
    while changed:
        changed = False
        for obj in content:
            # (from, to): the level of `from` narrows `to`.
            flows = [(target, obj["id"]) for target in _about(obj)]
            flows += [(obj["id"], part) for part in _parts(obj)]
            for origin, to in flows:
                if origin in levels and to in levels:
                    level = narrowest(levels[to], levels[origin])
                    if level != levels[to]:
                        levels[to] = level
                        changed = True

    marked = [_with_tlp(obj, levels[obj["id"]], tlp_ids) for obj in content]
    used = {tlp_ids[ref] for obj in marked for ref in _marking_refs(obj) if ref in tlp_ids}
    return [*(tlp2_definition(level) for level in sorted(used)), *marked]


def _marking_refs(obj: Mapping[str, Any]) -> Iterator[str]:
    yield from obj.get("object_marking_refs") or []
    for granular in obj.get("granular_markings") or []:
        yield granular.get("marking_ref", "")


def _with_tlp(obj: dict[str, Any], level: Tlp | None, tlp_ids: Mapping[str, Tlp]) -> dict[str, Any]:
    others = [ref for ref in obj.get("object_marking_refs") or [] if ref not in tlp_ids]
    marked = dict(obj)
    refs = [tlp2_id(level), *others] if level is not None else others
    if refs:
        marked["object_marking_refs"] = refs
    else:
        marked.pop("object_marking_refs", None)
    if obj.get("granular_markings"):
        marked["granular_markings"] = [
            {**g, "marking_ref": tlp2_id(tlp_ids[g["marking_ref"]])}
            if g.get("marking_ref") in tlp_ids
            else g
            for g in obj["granular_markings"]
        ]
    return marked


def tlp2_definition(level: Tlp) -> dict[str, Any]:
    """The OASIS TLP 2.0 marking-definition of a level, as OASIS publishes it."""
    name = tlp_name(level)
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": tlp2_id(level),
        "created": _TLP2_CREATED,
        "name": f"TLP:{name.upper()}",
        "extensions": {TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": name}},
    }


def merged(conversions: Iterable[Conversion]) -> list[dict[str, Any]]:
    """The objects of many events, each object version once.

    Events of one organisation share objects (its identity, TLP definitions, galaxy
    clusters) with the same id and version. Each event's owner allowed its copy to go as
    far as its marking says, so the widest copy is kept; an unmarked one only if no copy
    is marked (the hub gives it the member's default).
    """
    chosen: dict[tuple[str, str], dict[str, Any]] = {}

    def rank(obj: Mapping[str, Any]) -> tuple[bool, int]:
        levels = [tlp_by_marking_id()[r] for r in _marking_refs(obj) if r in tlp_by_marking_id()]
        return (not levels, max(levels) if levels else 0)

    for conversion in conversions:
        for obj in conversion.objects:
            key = (obj["id"], str(obj.get("modified") or obj.get("created") or ""))
            if key not in chosen or rank(obj) < rank(chosen[key]):
                chosen[key] = obj
    return list(chosen.values())
