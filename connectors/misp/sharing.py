"""What a MISP event may share: its TLP tags and distribution levels as hub TLP levels.

The table is `mapping.json`. A record's level is the narrowest of the level it sits in
(event, object), its own TLP tags and its own distribution: narrow, never widen. Records
that were never meant to leave their organisation (distribution 0) are left out before
conversion, so no trace of them reaches misp-stix or the hub.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from hub.stix.markings import Tlp

# MISP 2.5 analyst data, which any record may carry and which has its own distribution.
_ANALYST_DATA = ("Note", "Opinion", "Relationship")


class NotShared(Exception):
    """The whole event may not be imported; the message says why, in MISP's words."""


class MispFormatError(Exception):
    """The event is not shaped as MISP writes events; the message names the JSON path."""


@dataclass(frozen=True)
class Distribution:
    name: str
    tlp: Tlp | None = None
    imported: bool = True
    inherit: bool = False


@dataclass(frozen=True)
class Table:
    tags: Mapping[str, Tlp]
    distributions: Mapping[str, Distribution]


@cache
def table() -> Table:
    """The mapping table, read once from mapping.json."""
    raw = json.loads(resources.files("connectors.misp").joinpath("mapping.json").read_text())
    return Table(
        tags={name: Tlp.named(level) for name, level in raw["tags"].items()},
        distributions={
            value: Distribution(
                name=entry["name"],
                tlp=Tlp.named(entry["tlp"]) if "tlp" in entry else None,
                imported=entry.get("import", True),
                inherit=entry.get("inherit", False),
            )
            for value, entry in raw["distribution"].items()
        },
    )


def narrowest(*levels: Tlp | None) -> Tlp | None:
    """The most restrictive of the levels given; None when none is given."""
    present = [level for level in levels if level is not None]
    return max(present) if present else None


def tag_name(tag: Any) -> str | None:
    """A MISP tag's name, whether written as {"name": ...} or as a bare string."""
    name = tag.get("name") if isinstance(tag, Mapping) else tag
    return name if isinstance(name, str) else None


def tag_level(record: Mapping[str, Any]) -> Tlp | None:
    """The narrowest TLP level among the record's tags (names compared in lower case)."""
    tags = record.get("Tag")
    if not isinstance(tags, list):
        return None
    names = (tag_name(tag) for tag in tags)
    return narrowest(*(table().tags.get(name.strip().lower()) for name in names if name))


def tlp_name(level: Tlp) -> str:
    """The level as TLP 2.0 writes it: clear, green, amber, amber+strict, red."""
    return level.name.lower().replace("_", "+")


def is_tlp_tag(tag: Any) -> bool:
    name = tag_name(tag)
    return name is not None and name.strip().lower() in table().tags


@dataclass
class Prepared:
    """An event ready for misp-stix: what is left out is gone, TLP tags are canonical."""

    event: dict[str, Any]
    level: Tlp | None
    # MISP uuid → level of every record kept, for the STIX objects misp-stix names after it.
    levels: dict[str, Tlp] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)


class _LeftOut(Exception):
    pass


def _describe(record: Mapping[str, Any], where: str) -> str:
    uuid = record.get("uuid")
    return f"{where} ({uuid})" if isinstance(uuid, str) else where


def _level(record: Mapping[str, Any], enclosing: Tlp | None, *, may_inherit: bool) -> Tlp | None:
    """The record's own level inside `enclosing`; _LeftOut when it may not be imported."""
    raw = record.get("distribution")
    if raw is None or raw == "":
        by_distribution = None  # absent: inherits, as MISP reads it
    else:
        distribution = table().distributions.get(str(raw).strip())
        if distribution is None or (distribution.inherit and not may_inherit):
            raise _LeftOut(f"unknown distribution level {raw!r}, so not imported")
        if not distribution.imported:
            raise _LeftOut(f"distribution {raw} ({distribution.name}): never imported")
        by_distribution = distribution.tlp
    return narrowest(enclosing, tag_level(record), by_distribution)


def _canonical_tags(record: dict[str, Any], level: Tlp | None) -> None:
    """Replace the record's TLP tags by one tag misp-stix maps to the record's level."""
    found = record.get("Tag")
    tags: list[Any] = found if isinstance(found, list) else []
    kept = [t for t in tags if not is_tlp_tag(t)]
    if level is not None:
        kept.append({"name": f"tlp:{tlp_name(level)}"})
    record["Tag"] = kept


def _records(container: Mapping[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    found = container.get(key)
    if found is None:
        return []
    if not isinstance(found, list) or not all(isinstance(r, dict) for r in found):
        raise MispFormatError(f"{where}.{key}: expected a list of MISP records")
    return found


class _Preparation:
    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        self.dropped: set[str] = set()

    def keep(
        self, container: dict[str, Any], key: str, where: str, enclosing: Tlp | None
    ) -> Iterator[tuple[dict[str, Any], str, Tlp | None]]:
        """The records under `key` that may be imported, with their levels; the rest removed."""
        kept: list[dict[str, Any]] = []
        for index, record in enumerate(_records(container, key, where)):
            here = f"{where}.{key}[{index}]"
            try:
                level = _level(record, enclosing, may_inherit=True)
            except _LeftOut as why:
                self.prepared.left_out.append(f"{_describe(record, here)}: {why}")
                if isinstance(record.get("uuid"), str):
                    self.dropped.add(record["uuid"])
                continue
            kept.append(record)
            if level is not None and isinstance(record.get("uuid"), str):
                self.prepared.levels[record["uuid"]] = level
            yield record, here, level
        if key in container:
            container[key] = kept

    def analyst_data(self, record: dict[str, Any], where: str, level: Tlp | None) -> None:
        for key in _ANALYST_DATA:
            for note, here, note_level in self.keep(record, key, where, level):
                self.analyst_data(note, here, note_level)

    def attributes(self, container: dict[str, Any], where: str, level: Tlp | None) -> Tlp | None:
        """Keep the attributes that may be imported; the narrowest level among them."""
        levels: list[Tlp | None] = []
        for attribute, here, attribute_level in self.keep(container, "Attribute", where, level):
            _canonical_tags(attribute, attribute_level)
            self.analyst_data(attribute, here, attribute_level)
            levels.append(attribute_level)
        return narrowest(*levels)


def prepare(data: Mapping[str, Any], where: str) -> Prepared:
    """The event (`{"Event": {...}}` or the bare event) with MISP's sharing applied.

    Raises NotShared when the event itself may not be imported, MispFormatError when a
    part of it is not a MISP record. The input is not changed.
    """
    inner = data.get("Event", data)
    where = f"{where}.Event" if "Event" in data else where
    if not isinstance(inner, Mapping):
        raise MispFormatError(f"{where}: not a JSON object")
    event = copy.deepcopy(dict(inner))
    if not isinstance(event.get("uuid"), str) or not event["uuid"]:
        raise MispFormatError(f"{where}.uuid: missing (every MISP event has one)")
    try:
        level = _level(event, None, may_inherit=False)
    except _LeftOut as why:
        raise NotShared(f"{_describe(event, where)}: {why}") from None
    prepared = Prepared({"Event": event}, level)
    work = _Preparation(prepared)
    _canonical_tags(event, level)
    work.attributes(event, where, level)
    for misp_object, here, object_level in work.keep(event, "Object", where, level):
        inner = work.attributes(misp_object, here, object_level)
        work.analyst_data(misp_object, here, object_level)
        # misp-stix makes one STIX object of a MISP object: as narrow as its narrowest part.
        whole = narrowest(object_level, inner)
        if whole is not None and isinstance(misp_object.get("uuid"), str):
            prepared.levels[misp_object["uuid"]] = whole
        if not misp_object.get("Attribute"):
            # misp-stix cannot build an object without attributes; it was all left out.
            prepared.left_out.append(
                f"{_describe(misp_object, here)}: none of its attributes may be imported"
            )
            work.dropped.add(str(misp_object.get("uuid")))
    event["Object"] = [o for o in event.get("Object") or [] if o.get("Attribute")]
    for report, here, report_level in work.keep(event, "EventReport", where, level):
        work.analyst_data(report, here, report_level)
    work.analyst_data(event, where, level)
    # A reference to what was left out would point at nothing (or name it): drop it too.
    for misp_object in event["Object"]:
        references = misp_object.get("ObjectReference")
        if isinstance(references, list):
            misp_object["ObjectReference"] = [
                r
                for r in references
                if not (isinstance(r, Mapping) and r.get("referenced_uuid") in work.dropped)
            ]
    return prepared
