"""Marking definitions travel with the objects they mark, so every reader can read the terms.

A marking definition the sender left without a TLP marking of its own (a copyright or
terms-of-use statement, such as MITRE's on ATT&CK) follows the objects of the same
submission that reference it: it goes to every collection, and under the same limits
(accounts, embargo, onward sharing), as they do. One the sender marked with a TLP level is
routed by that level like any object, and an object it marks reaches only recipients that
may receive it too (routing treats it as a dependency). The TLP definitions themselves are
published by the hub in `public` (hub/stix/predefined.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from hub.model import Delivery
from hub.policy.tlp import object_tlp
from hub.stix.markings import marking_refs, tlp_by_marking_id

RULE = "marking-definition"
REASON = "a marking definition goes where the objects it marks go"


def is_marking_definition(obj: Mapping[str, Any]) -> bool:
    """A marking definition of the sender's own, not one of the TLP definitions."""
    return obj.get("type") == "marking-definition" and obj.get("id") not in tlp_by_marking_id()


def followers(objects: Sequence[Mapping[str, Any]]) -> set[int]:
    """The marking definitions that follow what they mark: those without a TLP of their own."""
    return {i for i, o in enumerate(objects) if is_marking_definition(o) and object_tlp(o) is None}


def gated_markings(objects: Sequence[Mapping[str, Any]], follow: set[int]) -> list[tuple[str, ...]]:
    """Per object, the marking definitions of the submission with a TLP of their own that it
    refers to: it may reach only recipients that receive them too."""
    gated = {
        str(o.get("id"))
        for i, o in enumerate(objects)
        if is_marking_definition(o) and i not in follow
    }
    if not gated:
        return [()] * len(objects)  # the common case: no marking definition with a TLP
    return [tuple(r for r in dict.fromkeys(marking_refs(o)) if r in gated) for o in objects]


def marked_by(objects: Sequence[Mapping[str, Any]], marking_id: str) -> list[int]:
    """The objects that refer to `marking_id`, object-level or granular."""
    return [
        j
        for j, o in enumerate(objects)
        if o.get("id") != marking_id and marking_id in set(marking_refs(o))
    ]


def following(deliveries: Iterable[Delivery], content: Mapping[str, Any]) -> list[Delivery]:
    """`content` delivered once to each collection among `deliveries`, as limited as the
    least limited of them there: every account when any went to every account, at once when
    any went at once, passed on only when all may be."""
    by_collection: dict[str, list[Delivery]] = {}
    for delivery in deliveries:
        by_collection.setdefault(delivery.collection, []).append(delivery)
    out = []
    for collection, found in by_collection.items():
        accounts: tuple[str, ...] = ()
        if all(d.accounts for d in found):
            accounts = tuple(dict.fromkeys(a for d in found for a in d.accounts))
        releases = [d.release_at for d in found]
        release_at = None if None in releases else min(r for r in releases if r is not None)
        out.append(
            replace(
                found[0],
                collection=collection,
                obj=content,
                accounts=accounts,
                release_at=release_at,
                onward_sharing=all(d.onward_sharing for d in found),
                anonymous=any(d.anonymous for d in found),
            )
        )
    return out
