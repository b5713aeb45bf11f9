"""Granular markings: their shape, and whether each selector points into the object.

The stix2 library checks selectors by walking the whole object once per selector, and its
walk looks up each list item's index by searching the list, so its cost grows with the
cube of the object (8,000 selectors took 32 s). Here a selector is followed step by step
from the object's root: the cost of all selectors is the length of their text, linear in
the object's size. The library also refuses some selectors STIX 2.1 allows (a property
inside a list item, `external_references.[0].url`; the second of two equal list items;
a property whose value is 0, false or empty); these pass here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from stix2 import v21
from stix2.exceptions import STIXError

# STIX 2.1 section 7.2.3.1: `[n]` selects the n-th item of a list. More than nine digits
# cannot be an index into an object the hub accepts.
_INDEX = re.compile(r"\[([0-9]{1,9})\]")


class BadGranularMarking(ValueError):
    """A granular marking that is not valid; `path` names it inside the object."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


def resolves(obj: Mapping[str, Any], selector: str) -> bool:
    """Whether `selector` names a property or list item present in `obj`."""
    node: Any = obj
    for step in selector.split("."):
        if isinstance(node, list):
            index = _INDEX.fullmatch(step)
            if index is None or int(index[1]) >= len(node):
                return False
            node = node[int(index[1])]
        elif isinstance(node, Mapping) and step in node:
            node = node[step]
        else:
            return False
    return True


def check(obj: Mapping[str, Any], allow_custom: bool) -> None:
    """Raise BadGranularMarking unless every granular marking of `obj` is valid STIX 2.1.

    Each marking's own properties are checked by the library's class for them (not by
    building the whole object, which would check the selectors the slow way). Observables
    embedded in observed-data (deprecated `objects`) are checked the same way.
    """
    _check_one(obj, allow_custom, "")
    embedded = obj.get("objects")
    if isinstance(embedded, Mapping):
        for key, inner in embedded.items():
            if isinstance(inner, Mapping):
                _check_one(inner, allow_custom, f"objects.{key}.")


def _check_one(obj: Mapping[str, Any], allow_custom: bool, prefix: str) -> None:
    granular = obj.get("granular_markings")
    if granular is None:
        return
    if not isinstance(granular, list) or not granular:
        raise BadGranularMarking("must be a non-empty list", f"{prefix}granular_markings")
    for i, marking in enumerate(granular):
        where = f"{prefix}granular_markings[{i}]"
        if not isinstance(marking, Mapping):
            raise BadGranularMarking("must be an object", where)
        try:
            v21.GranularMarking(allow_custom=allow_custom, **marking)
        except (STIXError, ValueError, TypeError) as exc:
            raise BadGranularMarking(str(exc), where) from exc
        selectors = marking["selectors"]
        if not isinstance(selectors, list):
            raise BadGranularMarking("must be a JSON array", f"{where}.selectors")
        for j, selector in enumerate(selectors):
            if not resolves(obj, selector):
                raise BadGranularMarking(
                    f"selector {selector!r} does not name a property or list item of the object",
                    f"{where}.selectors[{j}]",
                )


def without_granular(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """`obj` without its granular markings, nor those of observables embedded in it
    (`obj` itself when it has none)."""
    embedded = obj.get("objects")
    nested = isinstance(embedded, Mapping) and any(
        isinstance(v, Mapping) and "granular_markings" in v for v in embedded.values()
    )
    if "granular_markings" not in obj and not nested:
        return obj
    out = {k: v for k, v in obj.items() if k != "granular_markings"}
    if nested:
        out["objects"] = {
            k: without_granular(v) if isinstance(v, Mapping) else v
            for k, v in embedded.items()  # type: ignore[union-attr]
        }
    return out
