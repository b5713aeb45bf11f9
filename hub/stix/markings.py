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
def tlp_by_marking_id() -> dict[str, Tlp]:
    """Every TLP marking-definition id (1.0 and 2.0) and its level."""
    text = resources.files("hub.stix").joinpath("tlp_markings.json").read_text()
    table = json.loads(text)
    return {
        mid: Tlp.named(entry["level"]) for mid, entry in table.items() if not mid.startswith("_")
    }


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
