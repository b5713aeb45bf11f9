"""Routing by TLP (until the sharing rules land): community levels go to the sender's
regions, everything else only to the sender itself. Never wider, on any object."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from hub.collections import member_alias, region_alias
from hub.federation import load_federation
from hub.policy.tlp import destinations
from hub.stix.markings import Tlp, strictest_tlp, tlp_by_marking_id
from tests.conftest import ROOT
from tests.stixdata import TLP1_WHITE, TLP2, shared_objects

FEDERATION = load_federation(Path(ROOT, "examples", "federation.yaml"))
SENDER = FEDERATION.member("gh-cert")
OWN = (member_alias("gh-cert"),)
REGIONS = tuple(region_alias(r) for r in SENDER.regions)
OTHER_MARKING = "marking-definition--34a6c5d5-1b4a-4bb2-9a4b-1d6f1c0b2f11"  # a statement


def test_every_tlp_id_in_the_shared_definitions_is_known_with_its_level() -> None:
    definitions = shared_objects("tlp2/tlp2_all_markings_bundle.json") + shared_objects(
        "tlp2/tlp1_markings_from_stix2_lib.json"
    )
    table = tlp_by_marking_id()
    for definition in definitions:
        level = definition["name"].split(":")[1].replace("WHITE", "CLEAR")
        assert table[definition["id"]] == Tlp.named(level)


def test_levels() -> None:
    assert destinations({"object_marking_refs": [TLP2["clear"]]}, SENDER) == REGIONS
    assert destinations({"object_marking_refs": [TLP1_WHITE]}, SENDER) == REGIONS
    assert destinations({"object_marking_refs": [TLP2["green"]]}, SENDER) == REGIONS
    for level in ("amber", "amber+strict", "red"):
        assert destinations({"object_marking_refs": [TLP2[level]]}, SENDER) == OWN
    assert destinations({}, SENDER) == OWN
    assert destinations({"object_marking_refs": [OTHER_MARKING]}, SENDER) == OWN


def test_a_granular_amber_property_keeps_a_green_object_with_the_sender() -> None:
    obj = {
        "object_marking_refs": [TLP2["green"]],
        "granular_markings": [{"marking_ref": TLP2["amber"], "selectors": ["description"]}],
    }
    assert strictest_tlp(obj) == Tlp.AMBER
    assert destinations(obj, SENDER) == OWN


markings = st.lists(st.sampled_from([*TLP2.values(), TLP1_WHITE, OTHER_MARKING]), max_size=4)


@given(object_level=markings, granular=markings)
def test_routing_is_never_wider_than_the_strictest_marking(object_level, granular) -> None:
    obj = {
        "object_marking_refs": object_level,
        "granular_markings": [{"marking_ref": m, "selectors": ["name"]} for m in granular],
    }
    routed = destinations(obj, SENDER)
    levels = [tlp_by_marking_id()[m] for m in object_level + granular if m in tlp_by_marking_id()]
    if levels and max(levels) <= Tlp.GREEN:
        assert routed == REGIONS
    else:
        assert routed == OWN
    assert all(r in REGIONS + OWN for r in routed)
