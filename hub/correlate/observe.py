"""observe: what the correlator needs to know of each routed object, and nothing more.

Runs after routing: the observables of the object as accepted (keyed, no raw values), what
it sights, and which members received it under which id (a pseudonymised observable has
another id in each variant). Content under embargo is not observed: an alert must not
announce what its sender has not released yet. Nor is TLP:RED content (the object, or a
property under a granular RED marking): its sender disclosed it to named accounts alone, and
a count, or a new alert version, would tell every recipient of the alert that it exists.
TLP:RED deliveries do not make their member a recipient of an alert either (an alert is for
the member's every reader). A response to an alert is observed as the state it records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from hub.collections import PUBLIC, member_alias, region_alias
from hub.correlate.observables import keyed, observables
from hub.correlate.responses import chose_to_be_named, response_of
from hub.federation import Federation
from hub.model import Item, Observation, Submission
from hub.policy.redaction import top_property
from hub.policy.tlp import granular_markings, object_tlp
from hub.stix.markings import Tlp, tlp_by_marking_id

MEMBER_PREFIX = member_alias("")


def _without_red(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """`obj` without the properties a granular TLP:RED marking selects."""
    red = {
        top_property(selector)
        for marking, selectors in granular_markings(obj)
        if tlp_by_marking_id().get(marking) == Tlp.RED
        for selector in selectors
    }
    return {k: v for k, v in obj.items() if k not in red} if red else obj


@dataclass(frozen=True)
class Observe:
    federation: Federation
    key: bytes  # the federation's key (the pseudonymisation key file)

    def _readers(self, collection: str) -> set[str]:
        if collection == PUBLIC:
            return {m.id for m in self.federation.members}
        if collection.startswith(MEMBER_PREFIX):
            return {collection[len(MEMBER_PREFIX) :]}
        return {
            m.id
            for m in self.federation.members
            for r in m.regions
            if region_alias(r) == collection
        }

    def _observe(self, item: Item, country: str, regions: tuple[str, ...]) -> Item:
        if any(d.release_at is not None for d in item.deliveries):
            return item
        if object_tlp(item.obj) == Tlp.RED:
            return item
        response = response_of(item.obj)
        if response is not None:
            observation = Observation((), None, (), country, regions, response=response)
            return replace(item, observation=observation)
        obj = _without_red(item.obj)
        keys = tuple(sorted({keyed(o, self.key) for o in observables(obj)}))
        sighted = obj.get("sighting_of_ref") if obj.get("type") == "sighting" else None
        if not keys and not isinstance(sighted, str):
            return item
        allowed = {v.member for v in item.verdicts if v.allowed}
        visible: dict[str, str] = {}
        for delivery in item.deliveries:
            if delivery.accounts:
                continue
            delivered_id = str(delivery.obj.get("id", item.id))
            for member in self._readers(delivery.collection) & allowed:
                visible.setdefault(member, delivered_id)
        observation = Observation(
            keys=keys,
            sighting_of=sighted if isinstance(sighted, str) else None,
            visible=tuple(sorted(visible.items())),
            country=country,
            regions=regions,
            named=isinstance(sighted, str) and chose_to_be_named(obj),
        )
        return replace(item, observation=observation)

    def __call__(self, submission: Submission) -> Submission:
        sender = submission.sender
        if sender is None:
            return submission  # route refused everything already
        return submission.map_accepted(
            lambda item: self._observe(item, sender.country, sender.regions)
        )
