"""Per-recipient content: properties a recipient may not have, and references it may not follow.

Redaction works on whole top-level properties: a granular marking that selects
`external_references.[0].url` takes all of `external_references` from a recipient not
entitled to it. Coarser than the selector, never leakier, and it keeps the remaining
granular selectors meaningful.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# Marking references are not dependencies: they are never removed (that would unmark content).
_MARKING_KEYS = frozenset({"object_marking_refs", "marking_ref", "granular_markings"})


def top_property(selector: str) -> str:
    return selector.split(".", 1)[0]


def _is_ref_key(key: str) -> bool:
    return (key.endswith("_ref") or key.endswith("_refs")) and key not in _MARKING_KEYS


def references(value: Any) -> list[str]:
    """Every STIX id the value refers to (`*_ref`, `*_refs` at any depth; markings aside),
    in the order they appear."""
    found: list[str] = []
    _collect_references(value, found)
    return found


# Values that hold no references: skipped without looking further (the common case).
_SCALARS = (str, int, float, type(None))


def _collect_references(value: Any, found: list[str]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in _MARKING_KEYS:
                continue
            if _is_ref_key(key):
                if isinstance(item, str):
                    found.append(item)
                elif isinstance(item, list):
                    found.extend(r for r in item if isinstance(r, str))
            elif not isinstance(item, _SCALARS):
                _collect_references(item, found)
    elif isinstance(value, list):
        for item in value:
            if not isinstance(item, _SCALARS):
                _collect_references(item, found)


def _prune(value: Any, hidden: Callable[[str], bool]) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in _MARKING_KEYS:
                out[key] = item
            elif _is_ref_key(key) and isinstance(item, str):
                if not hidden(item):
                    out[key] = item
            elif _is_ref_key(key) and isinstance(item, list):
                kept = [r for r in item if not (isinstance(r, str) and hidden(r))]
                if kept:
                    out[key] = kept
            else:
                out[key] = _prune(item, hidden)
        return out
    if isinstance(value, list):
        return [_prune(item, hidden) for item in value]
    return value


def _regranulate(obj: dict[str, Any], removed: set[str], changed: set[str]) -> dict[str, Any]:
    """Granular markings after `removed` properties went and `changed` ones lost elements.

    Selectors into a removed property go; selectors into a changed one widen to the whole
    property (list indices may have shifted, and over-marking is the safe side).
    """
    granular = obj.get("granular_markings")
    if not isinstance(granular, list) or not (removed or changed):
        return obj
    kept = []
    for g in granular:
        if not isinstance(g, Mapping) or not isinstance(g.get("selectors"), list):
            kept.append(g)
            continue
        selectors: dict[str, None] = {}  # ordered, and a set: one lookup per selector
        for s in g["selectors"]:
            if not isinstance(s, str):
                continue  # validation lets none through; it would select nothing
            top = top_property(s)
            if top in removed:
                continue
            selectors[top if top in changed else s] = None
        if selectors:
            kept.append({**g, "selectors": list(selectors)})
    out = {k: v for k, v in obj.items() if k != "granular_markings"}
    if kept:
        out["granular_markings"] = kept
    return out


def without(
    obj: Mapping[str, Any], properties: set[str], hidden: Callable[[str], bool]
) -> tuple[dict[str, Any], set[str]]:
    """`obj` without `properties` and without references for which `hidden` holds.

    Returns the new object and the top-level properties that were removed or changed.
    """
    kept = {k: v for k, v in obj.items() if k not in properties}
    pruned = _prune(kept, hidden)
    changed = {k for k in kept if k not in _MARKING_KEYS and pruned.get(k) != kept[k]}
    removed = set(properties) | {k for k in kept if k not in pruned}
    return _regranulate(pruned, removed, changed - removed), removed | changed
