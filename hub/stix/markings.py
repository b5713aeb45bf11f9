"""TLP markings on STIX objects: which level an object carries, TLP 1.0 and 2.0 alike."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from enum import IntEnum
from functools import cache
from importlib import resources
from typing import Any


class Tlp(IntEnum):
    """TLP levels, ordered from least to most restrictive."""

    CLEAR = 0
    GREEN = 1
    AMBER = 2
    AMBER_STRICT = 3
    RED = 4

    @classmethod
    def named(cls, level: str) -> Tlp:
        return cls[level.upper().replace("+", "_")]


@cache
def _table() -> dict[str, dict[str, str]]:
    text = resources.files("hub.stix").joinpath("tlp_markings.json").read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


@cache
def tlp_by_marking_id() -> dict[str, Tlp]:
    """Every TLP marking-definition id (1.0, 2.0, and other tools' aliases) and its level."""
    return {mid: Tlp.named(entry["level"]) for mid, entry in _table().items()}


def tlp2_ids() -> dict[str, str]:
    """The OASIS TLP 2.0 marking-definition id of each level, by name ("clear" ... "red")."""
    return {e["level"]: mid for mid, e in _table().items() if e["tlp"] == "2.0"}


def marking_refs(obj: Mapping[str, Any]) -> Iterator[str]:
    """Every marking the object refers to, object-level and granular."""
    refs = obj.get("object_marking_refs")
    if isinstance(refs, list):
        yield from (r for r in refs if isinstance(r, str))
    granular = obj.get("granular_markings")
    if isinstance(granular, list):
        for g in granular:
            if isinstance(g, Mapping) and isinstance(g.get("marking_ref"), str):
                yield g["marking_ref"]


def strictest_tlp(obj: Mapping[str, Any]) -> Tlp | None:
    """The most restrictive TLP level anywhere on the object; None when it carries no TLP."""
    table = tlp_by_marking_id()
    levels = [table[ref] for ref in marking_refs(obj) if ref in table]
    return max(levels) if levels else None


TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"


def standard_tlp_id(marking_id: str) -> str:
    """The standard (TLP 1.0/2.0) id for a TLP marking another tool names its own way."""
    return _table().get(marking_id, {}).get("alias_of", marking_id)


def tlp2_id(level: Tlp) -> str:
    """The OASIS TLP 2.0 marking-definition id of a level."""
    return next(
        k for k, v in _table().items() if v["tlp"] == "2.0" and Tlp.named(v["level"]) is level
    )


def _stated_level(text: object) -> str | None:
    """The TLP level a definition names, however a tool spells it ("TLP:CLEAR", "white")."""
    if not isinstance(text, str):
        return None
    level = text.strip().lower().removeprefix("tlp:").strip()
    return "clear" if level == "white" else level


def tlp_definition_problem(obj: Mapping[str, Any]) -> str | None:
    """Why a marking-definition that uses a TLP id is not that TLP definition (None if it is).

    Anyone may send the standard definitions, as STIX writes them or as other tools do
    (OpenCTI names TLP 1.0 WHITE "TLP:CLEAR", with `definition_type` "TLP"); nobody may give
    a TLP id another level or another meaning.
    """
    entry = _table().get(str(obj.get("id")))
    if entry is None:
        return None
    level, name = entry["level"], entry["name"]
    if entry["tlp"] == "1.0":
        definition = obj.get("definition")
        stated = (
            {_stated_level(v) for v in definition.values()}
            if isinstance(definition, Mapping)
            else set()
        )
        if str(obj.get("definition_type", "")).lower() != "tlp" or stated != {level}:
            wanted = "white" if level == "clear" else level
            return (
                f"redefines {name}: a TLP 1.0 id needs definition_type 'tlp' and "
                f"definition {{'tlp': '{wanted}'}}"
            )
    elif entry["tlp"] == "2.0":
        extensions = obj.get("extensions")
        extension = extensions.get(TLP2_EXTENSION) if isinstance(extensions, Mapping) else None
        if not (isinstance(extension, Mapping) and extension.get("tlp_2_0") == level):
            return f"redefines {name}: a TLP 2.0 id needs the TLP 2.0 extension with '{level}'"
    for prop in ("name", "x_opencti_definition"):
        if prop in obj and _stated_level(obj[prop]) != level:
            return f"redefines {name}: its {prop} is {obj[prop]!r}"
    return None
