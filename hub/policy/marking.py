"""Marking: every object leaves intake with a TLP marking the routing can rely on.

(A marking definition is the exception: left without a TLP of its own, it goes where the
objects it marks go; hub/policy/terms.py.)

Markings other tools use for a TLP level (OpenCTI's own TLP:AMBER+STRICT) are rewritten
to the standard id. An object without a TLP marking gets the sender's configured
`default_tlp`, or is refused with a message saying how to mark it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from hub.model import Item, RefusalCode
from hub.stix.markings import Tlp, standard_tlp_id, tlp2_id, tlp_by_marking_id

_HOW_TO_MARK = (
    "add object_marking_refs with a TLP marking, e.g. TLP:CLEAR {clear}, TLP:GREEN {green}, "
    "TLP:AMBER {amber}, TLP:AMBER+STRICT {strict}, TLP:RED {red} (TLP 1.0 ids work too), "
    "or ask the hub operators to set a default_tlp for your CIRT"
)


def how_to_mark() -> str:
    return _HOW_TO_MARK.format(
        clear=tlp2_id(Tlp.CLEAR),
        green=tlp2_id(Tlp.GREEN),
        amber=tlp2_id(Tlp.AMBER),
        strict=tlp2_id(Tlp.AMBER_STRICT),
        red=tlp2_id(Tlp.RED),
    )


def _standardised(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object with other tools' TLP ids replaced by the standard ones."""
    changed: dict[str, Any] = {}
    refs = obj.get("object_marking_refs")
    if isinstance(refs, list) and any(standard_tlp_id(r) != r for r in refs if isinstance(r, str)):
        changed["object_marking_refs"] = list(
            dict.fromkeys(standard_tlp_id(r) if isinstance(r, str) else r for r in refs)
        )
    granular = obj.get("granular_markings")
    if isinstance(granular, list) and any(
        isinstance(g, Mapping)
        and standard_tlp_id(str(g.get("marking_ref"))) != g.get("marking_ref")
        for g in granular
    ):
        changed["granular_markings"] = [
            {**g, "marking_ref": standard_tlp_id(str(g["marking_ref"]))}
            if isinstance(g, Mapping) and "marking_ref" in g
            else g
            for g in granular
        ]
    return {**obj, **changed} if changed else obj


def _has_object_tlp(obj: Mapping[str, Any]) -> bool:
    refs = obj.get("object_marking_refs")
    table = tlp_by_marking_id()
    return isinstance(refs, list) and any(r in table for r in refs if isinstance(r, str))


def marked(item: Item, sender: str, default: str | None) -> Item:
    """`item` with a TLP marking the routing can rely on: other tools' TLP ids made standard,
    `default` (the sender's `default_tlp`) where it has none, else refused."""
    obj = item.obj
    if obj.get("type") == "marking-definition" and item.id in tlp_by_marking_id():
        return item  # the TLP definitions themselves
    obj = _standardised(obj)
    # A marking definition states the terms of what it marks: unmarked, it follows them
    # (hub/policy/terms.py) rather than taking the sender's default.
    follows = obj.get("type") == "marking-definition"
    if not _has_object_tlp(obj) and not follows:
        if default is None:
            return item.refuse(
                RefusalCode.UNMARKED,
                f"objects[{item.index}] ({item.id}): has no TLP marking and "
                f"{sender} has no default; {how_to_mark()}",
            )
        refs = obj.get("object_marking_refs")
        existing = list(refs) if isinstance(refs, list) else []
        obj = {**obj, "object_marking_refs": [*existing, tlp2_id(Tlp.named(default))]}
    return item if obj is item.obj else replace(item, obj=obj)
