"""Privacy of alerts, by property: random federations, sharing rules and contributing objects
(random TLP 1.0/2.0 markings, all about one domain, some as sightings), routed by the real
Router and observed by the real Observe stage, correlated by the real Correlation. No
member learns from an alert an object id the routing did not deliver to it, nor another
member's identity or id, nor the value; and only members that received a contributing
object get an alert at all."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.bus import Record
from hub.collections import PUBLIC, member_alias, region_alias
from hub.correlate.alerts import alert
from hub.correlate.correlator import Correlation
from hub.correlate.observe import Observe
from hub.correlate.rules import parse_rules
from hub.federation import Account, Federation, HubInfo, Member, Region
from hub.model import Item, Submission
from hub.pipeline.emit import observation_message
from hub.policy.entitlement import Policy
from hub.policy.routing import NoHistory, Router
from hub.records import ObservationRecord
from hub.topics import Topics
from tests.policy.test_leak_freedom import TLP

HUB = "identity--5b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
KEY = b"federation key for the test"
DOMAIN = "c2.badcorp.example"
MEMBERS = ["m-a", "m-b", "m-c", "m-d", "m-e"]
COUNTRIES = ["AA", "BB", "CC"]
REGIONS = ["north", "south"]


def identity(member: str) -> str:
    return f"identity--{uuid.uuid5(uuid.NAMESPACE_DNS, member)}"


@st.composite
def worlds(draw: st.DrawFn) -> tuple[Federation, list[tuple[str, dict[str, Any]]]]:
    members = MEMBERS[: draw(st.integers(2, 5))]
    region = st.sampled_from([f"region:{r}" for r in REGIONS])
    member = st.sampled_from([f"member:{m}" for m in members])
    federation_members = []
    for m in members:
        recipients = {
            "green": draw(st.lists(st.one_of(st.just("all"), region), unique=True, max_size=2)),
            "amber": draw(st.lists(st.one_of(st.just("all"), region, member), max_size=2)),
            "red": draw(st.lists(st.sampled_from([f"account:{x}-read" for x in members]))),
        }
        sharing = {"recipients": recipients, "anonymous": draw(st.integers(0, 3)) == 0}
        federation_members.append(
            Member(
                m,
                m.upper(),
                draw(st.sampled_from(COUNTRIES)),
                tuple(sorted(draw(st.sets(st.sampled_from(REGIONS), min_size=1)))),
                identity(m),
                (Account(f"{m}-read", frozenset({"read"}), "unused", m),),
                sharing=sharing,
            )
        )
    federation = Federation(
        HubInfo("h", "Hub", HUB),
        tuple(Region(r, r.title()) for r in REGIONS),
        tuple(federation_members),
        correlation={"rules": [{"scope": "all", "min_members": 2, "min_countries": 1}]},
    )
    reports: list[tuple[str, dict[str, Any]]] = []
    indicators: list[str] = []
    for n in range(draw(st.integers(2, 8))):
        sender = draw(st.sampled_from(members))
        marking = draw(st.sampled_from(sorted(TLP)))
        common = {
            "spec_version": "2.1",
            "created": "2026-11-29T08:00:00.000Z",
            "modified": "2026-11-29T08:00:00.000Z",
            "created_by_ref": identity(sender),
            "object_marking_refs": [marking],
        }
        if indicators and draw(st.booleans()):
            obj = {
                "type": "sighting",
                "id": f"sighting--{uuid.UUID(int=n + 1, version=4)}",
                "sighting_of_ref": draw(st.sampled_from(indicators)),
                "where_sighted_refs": [identity(sender)],
                **common,
            }
        else:
            obj = {
                "type": "indicator",
                "id": f"indicator--{uuid.UUID(int=n + 1, version=4)}",
                "pattern": f"[domain-name:value = '{DOMAIN.upper() if n % 2 else DOMAIN}']",
                "pattern_type": "stix",
                "valid_from": "2026-11-29T08:00:00Z",
                **common,
            }
            indicators.append(obj["id"])
        reports.append((sender, obj))
    return federation, reports


def received_by(federation: Federation, deliveries, member: Member) -> set[str]:
    """Object ids the routing delivered where `member`'s reader account reads."""
    readable = {PUBLIC, member_alias(member.id), *(region_alias(r) for r in member.regions)}
    return {
        str(d.obj["id"])
        for d in deliveries
        if d.collection in readable and (not d.accounts or f"{member.id}-read" in d.accounts)
    }


def test_no_member_learns_from_an_alert_what_routing_kept_from_it() -> None:
    alerts_checked: list[int] = []
    holds(alerts_checked)
    # Not vacuous: many of the random worlds raised alerts, and each was checked.
    assert sum(alerts_checked) >= 100, sum(alerts_checked)


@settings(max_examples=300, deadline=None)
@given(world=worlds())
def holds(alerts_checked: list[int], world) -> None:
    federation, reports = world
    router = Router(Policy(federation), KEY)
    observe = Observe(federation, KEY)
    correlation = Correlation(federation, parse_rules(federation.correlation))
    topics = Topics("t.")
    delivered: dict[str, set[str]] = {m.id: set() for m in federation.members}
    latest: dict[str, dict[str, Any]] = {}  # member → its alert, latest version
    for n, (sender_id, obj) in enumerate(reports):
        sender = federation.member(sender_id)
        received = f"2026-11-29T08:{n:02d}:00.000000Z"
        (routed,) = router.route(sender, [obj], received, NoHistory())
        for m in federation.members:
            delivered[m.id] |= received_by(federation, routed.deliveries, m)
        item = Item(0, obj, deliveries=routed.deliveries, verdicts=routed.verdicts)
        submission = Submission(
            "s", sender_id, f"{sender_id}-submit", received, "r", (item,), sender=sender
        )
        observed = observe(submission)
        message = observation_message(observed.items[0], observed, topics)
        if message is None:
            continue
        read = Record(message.topic, 0, 0, message.key, message.value, message.headers, 0)
        seen = ObservationRecord.from_record(read)
        for state, member, refs in correlation.observe(seen):
            latest[member] = alert(state, member, refs, HUB)
    for member in federation.members:
        got = latest.get(member.id)
        if got is None:
            continue
        assert got["object_refs"], "an alert refers to at least one report its member has"
        assert set(got["object_refs"]) <= delivered[member.id], (member.id, got, delivered)
        raw = orjson.dumps(got).decode()
        assert DOMAIN not in raw.lower()
        for other in federation.members:
            if other.id != member.id:
                assert other.identity not in raw and other.id not in raw
        hidden = {str(o["id"]) for _, o in reports} - delivered[member.id]
        assert not any(object_id in raw for object_id in hidden), (member.id, hidden, raw)
        alerts_checked.append(1)
