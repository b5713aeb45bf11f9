"""TLP levels of an object and of its properties, as routing reads them.

The object's level comes from its object-level markings only (`object_marking_refs`);
granular TLP markings never widen it and only narrow the properties they select, which
redaction removes for recipients not entitled to their level.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from hub.stix.markings import Tlp, tlp_by_marking_id

LABELS = {
    Tlp.CLEAR: "TLP:CLEAR",
    Tlp.GREEN: "TLP:GREEN",
    Tlp.AMBER: "TLP:AMBER",
    Tlp.AMBER_STRICT: "TLP:AMBER+STRICT",
    Tlp.RED: "TLP:RED",
}


def object_markings(obj: Mapping[str, Any]) -> list[str]:
    refs = obj.get("object_marking_refs")
    return [r for r in refs if isinstance(r, str)] if isinstance(refs, list) else []


def object_tlp(obj: Mapping[str, Any]) -> Tlp | None:
    """The strictest TLP level among the object-level markings; None when there is none."""
    table = tlp_by_marking_id()
    levels = [table[ref] for ref in object_markings(obj) if ref in table]
    return max(levels) if levels else None


def granular_markings(obj: Mapping[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """(marking id, selectors) of each granular marking that names a marking definition."""
    granular = obj.get("granular_markings")
    if not isinstance(granular, list):
        return
    for g in granular:
        if isinstance(g, Mapping) and isinstance(g.get("marking_ref"), str):
            selectors = g.get("selectors")
            if isinstance(selectors, list):
                yield g["marking_ref"], [s for s in selectors if isinstance(s, str)]


def marked_properties(obj: Mapping[str, Any]) -> Mapping[str, frozenset[str]]:
    """The top-level properties each granular marking selects, by marking id.

    Read once per object: recipients are then judged per marking, not per selector.
    """
    found: dict[str, set[str]] = {}
    for mid, selectors in granular_markings(obj):
        found.setdefault(mid, set()).update(s.split(".", 1)[0] for s in selectors)
    return MappingProxyType({mid: frozenset(props) for mid, props in found.items()})
