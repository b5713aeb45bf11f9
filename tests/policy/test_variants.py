"""Per-recipient variants decided by the router, on one small federation: recipients share a
variant only when they may see the same content, and an object whose own TLP marking a
granular marking covers never travels unlabelled."""

from __future__ import annotations

import json
import uuid
from typing import Any

from hub.federation import Account, Federation, HubInfo, Member, Region
from hub.policy.entitlement import Policy
from hub.policy.routing import NoHistory, Router
from tests.stixdata import TLP2

HUB = "identity--5b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
RECEIVED = "2026-11-20T08:00:00.000000Z"


def identity(member: str) -> str:
    return f"identity--{uuid.uuid5(uuid.NAMESPACE_DNS, member)}"


def member(name: str, sharing: dict[str, Any] | None = None) -> Member:
    reader = Account(f"{name}-read", frozenset({"read"}), "unused", name)
    return Member(
        name, name.upper(), "AA", ("west",), identity(name), (reader,), sharing=sharing or {}
    )


def route(obj: dict[str, Any], others: list[str], sharing: dict[str, Any]) -> dict[str, str]:
    """collection → the delivered JSON, for `obj` sent by member `a`."""
    members = (member("a", sharing), *(member(m) for m in others))
    federation = Federation(HubInfo("h", "Hub", HUB), (Region("west", "West"),), members)
    (routed,) = Router(Policy(federation), b"k" * 16).route(
        members[0], [obj], RECEIVED, NoHistory()
    )
    return {d.collection: json.dumps(d.obj) for d in routed.deliveries}


def indicator(**extra: Any) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": "2026-11-20T08:00:00.000Z",
        "modified": "2026-11-20T08:00:00.000Z",
        "pattern": "[ipv4-addr:value = '198.51.100.1']",
        "pattern_type": "stix",
        "valid_from": "2026-11-20T08:00:00Z",
        "created_by_ref": identity("a"),
        "object_marking_refs": [TLP2["green"]],
        **extra,
    }


def test_recipients_never_share_a_variant_unless_its_content_is_the_same_for_both() -> None:
    # An AMBER property (for y only) beside a reference nobody else may follow: y gets the
    # property without the reference, x gets neither; whichever is routed first.
    obj = indicator(
        x_details={"note": "AMBER-ONLY-FOR-Y", "actor_ref": f"threat-actor--{uuid.uuid4()}"},
        granular_markings=[{"marking_ref": TLP2["amber"], "selectors": ["x_details.note"]}],
    )
    rules = {"recipients": {"green": ["all"], "amber": ["member:y"]}}
    for order in (["y", "x"], ["x", "y"]):
        delivered = route(obj, order, rules)
        assert "AMBER-ONLY-FOR-Y" in delivered["member-y"], order
        assert "AMBER-ONLY-FOR-Y" not in delivered["member-x"], order
        assert "actor_ref" not in delivered["member-y"] + delivered["member-x"]
        assert "region-west" not in delivered  # its readers do not see the same object


def test_an_object_whose_own_marking_is_withheld_is_not_delivered_unlabelled() -> None:
    red_over_marking = [{"marking_ref": TLP2["red"], "selectors": ["object_marking_refs"]}]
    delivered = route(indicator(granular_markings=red_over_marking), ["x", "y"], {})
    assert set(delivered) == {"member-a"}  # the sender's own copy only
    for content in delivered.values():
        assert TLP2["green"] in content
