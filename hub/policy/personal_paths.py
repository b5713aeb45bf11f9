"""Which object paths of a STIX pattern reach a personal value, read from the data tables.

`personal_data.json` says which properties of which types are personal; `sco_references.json`
which references lead from one cyber-observable to another. A path reaches a personal value
when, followed through those references, it ends on a personal property
(`process:parent_ref.creator_user_ref.account_login`), on a property dropped from
pseudonymised objects (`user-account:credential`, `email-message:additional_header_fields`),
or on the id of a pseudonymised object. A reference the table does not know (a custom
`x_..._ref`, a custom object type) may lead anywhere: a path through one that ends on the
name of a personal property counts as reaching it.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from importlib import resources
from typing import Any, Final, Literal

from hub.stix.object_paths import reference_targets

# What a path reaches: nothing personal (None), the value of (type, property) to
# pseudonymise, the id of a pseudonymised object, or a value that cannot be rewritten.
Reach = tuple[str, str] | Literal["id", "drop"] | None
ID: Final = "id"
DROP: Final = "drop"
# Paths are followed one reference at a time; a longer one is not followed but dropped.
MAX_STEPS = 64


@cache
def personal_data() -> dict[str, dict[str, Any]]:
    text = resources.files("hub.stix").joinpath("personal_data.json").read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def _is_reference(name: str) -> bool:
    return name.endswith("_ref") or name.endswith("_refs")


@cache
def _personal_names(types: frozenset[str]) -> frozenset[str]:
    """Names of the personal properties of `types` (the last part of dotted ones)."""
    table = personal_data()
    return frozenset(
        prop.rsplit(".", 1)[-1]
        for kind in types
        for prop in (*table[kind]["hash"], *table[kind]["drop"])
    )


@cache
def _dropped_elsewhere(types: frozenset[str]) -> dict[str, tuple[tuple[str, ...], ...]]:
    found: dict[str, list[tuple[str, ...]]] = {}
    for kind in types:
        for other, props in personal_data()[kind]["drop_elsewhere"].items():
            found.setdefault(other, []).extend(tuple(p.split(".")) for p in props)
    return {k: tuple(v) for k, v in found.items()}


def _combine(outcomes: set[Reach]) -> Reach:
    outcomes.discard(None)
    if not outcomes:
        return None
    if len(outcomes) == 1:
        return outcomes.pop()
    return DROP  # one path, values of several kinds: no one pseudonym fits them all


@lru_cache(maxsize=16384)
def reach(types: frozenset[str], kind: str, path: tuple[str, ...]) -> Reach:
    """What the object path `kind:path` (list indexes left out) reaches, when the
    personal data of `types` is pseudonymised."""
    if len(path) > MAX_STEPS:
        return DROP
    if kind in types:
        entry = personal_data()[kind]
        if path == ("id",):
            return ID
        if path and path[0] in entry["hash"]:
            return (kind, path[0]) if len(path) == 1 else DROP
        for prop in entry["drop"]:
            dropped = tuple(prop.split("."))
            if path[: len(dropped)] == dropped:
                return DROP
    for dropped in _dropped_elsewhere(types).get(kind, ()):
        if path[: len(dropped)] == dropped:
            return DROP
    graph = reference_targets()
    for ref, targets in graph.get(kind, {}).items():
        if path[: len(ref)] != ref:
            continue
        rest = path[len(ref) :]
        followed = graph.keys() if "*" in targets else targets
        if not rest:
            return ID if types.intersection(followed) else None
        return _combine({reach(types, target, rest) for target in followed})
    for i, name in enumerate(path):
        if _is_reference(name) and _personal_names(types).intersection(path[i + 1 :]):
            return DROP  # through a reference the table does not know, to a personal name
    return None
