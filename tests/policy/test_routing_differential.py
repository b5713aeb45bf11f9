"""The hub's router decides exactly as the router it replaced, by property.

Random federations (members in one to three regions, two reader accounts each; per-level
recipients with TLP:RED named accounts, type rules, non-TLP markings with their own
audiences, anonymity, embargoes, pseudonymised types, recipients' own filters) and random
submissions (objects under TLP 1.0 and 2.0 markings or none, granular markings, references
between objects of the submission in any order and cycles, to earlier objects through a
random History, to member and hub identities and to ids nobody sent; second versions in
the same submission, revocations, marking definitions that follow or gate what they mark,
personal data): `Router.route` must give the same `Routed` results, deliveries and
verdicts, as `tests/policy/reference_routing.py`, the router as it was before it decided
per class of object.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pprint import pformat
from typing import Any

import jsonschema
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from hub.federation import Account, Federation, HubInfo, Member, Region, schema
from hub.policy.entitlement import Policy
from hub.policy.redaction import references
from hub.policy.routing import Router
from tests.policy import reference_routing
from tests.stixdata import TLP1_WHITE, TLP2

TLP1 = [
    TLP1_WHITE,
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",  # GREEN
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",  # AMBER
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",  # RED
]
TLPS = [*TLP2.values(), *TLP1]
WIDE = [TLP2["clear"], TLP1_WHITE, TLP2["green"], TLP2["green"], TLP2["amber"], TLP2["red"]]
OPTIONAL = {"name", "description", "x_details", "abstract", "created_by_ref", "belongs_to_ref"}
CUSTOM = [
    "marking-definition--0c8a1b6e-2f5d-4a55-9a3c-5b1c9f6e7d01",
    "marking-definition--7d2e9f10-1b3c-4d5e-8f70-a1b2c3d4e5f6",
]
HUB_IDENTITY = "identity--5b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SLOTS = ["cirt-a", "cirt-b", "cirt-c", "cirt-d", "cirt-e"]
IDENTITIES = {m: f"identity--{uuid.uuid5(uuid.NAMESPACE_DNS, m + '.routing')}" for m in SLOTS}
REGIONS = ["north", "south", "east"]
TYPES = ["indicator", "malware", "relationship", "note", "report", "identity", "email-addr"]
KINDS = [*TYPES, "user-account", "marking-definition", "sighting"]
RECEIVED = "2026-11-20T08:00:00.000000Z"
KEY = b"routing-differential-key"
WHEN = "2026-11-20T08:00:00.000Z"
# Each sharing block drawn is checked against the federation schema; compiled once (a check
# per example with jsonschema.validate would re-check the schema itself each time).
SHARING = jsonschema.Draft202012Validator({"$defs": schema()["$defs"], "$ref": "#/$defs/sharing"})


def _id(kind: str, *where: object) -> str:
    """A fixed id per kind and place: examples need not differ in ids, and drawing fewer
    values keeps each example cheap."""
    return f"{kind}--{uuid.uuid5(uuid.NAMESPACE_URL, repr(where))}"


@dataclass
class FakeHistory:
    """A History drawn at random: who received each earlier id, where, limited to which
    accounts, and who published it first."""

    received_by: dict[str, frozenset[str]] = field(default_factory=dict)
    limited: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    placed: dict[str, frozenset[str]] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)

    def received(self, object_id: str) -> frozenset[str]:
        return self.received_by.get(object_id, frozenset())

    def accounts(self, object_id: str, member: str) -> tuple[str, ...]:
        return self.limited.get((object_id, member), ())

    def collections(self, object_id: str) -> frozenset[str]:
        return self.placed.get(object_id, frozenset())

    def owner(self, object_id: str) -> str | None:
        return self.owners.get(object_id)


@dataclass
class Case:
    federation: Federation
    sender: str
    objects: list[dict[str, Any]]
    history: FakeHistory

    def __repr__(self) -> str:
        """What a failing example needs to be read: members, rules, history, objects."""
        members = {
            m.id: {"regions": list(m.regions), "sharing": m.sharing}
            for m in self.federation.members
        }
        return pformat(
            {
                "sender": self.sender,
                "members": members,
                "history": self.history,
                "objects": self.objects,
            },
            width=100,
            sort_dicts=False,
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis prints a failing example with this (else field by field)."""
        printer.text(repr(self))


def _federation(member_regions: dict[str, list[str]], rules: dict[str, Any]) -> Federation:
    def accounts(m: str) -> tuple[Account, ...]:
        return (
            Account(f"{m}-submit", frozenset({"submit"}), "unused", m),
            Account(f"{m}-r1", frozenset({"read"}), "unused", m),
            Account(f"{m}-r2", frozenset({"read"}), "unused", m),
        )

    for block in rules.values():
        SHARING.validate(block)
    return Federation(
        hub=HubInfo("diff-hub", "Differential hub", HUB_IDENTITY),
        regions=tuple(Region(r, r.title()) for r in REGIONS),
        members=tuple(
            Member(m, m.upper(), "AA", tuple(rs), IDENTITIES[m], accounts(m), sharing=rules[m])
            for m, rs in member_regions.items()
        ),
    )


@st.composite
def sharing_rules(draw: st.DrawFn, members: list[str]) -> dict[str, Any]:
    region = st.sampled_from([f"region:{r}" for r in REGIONS])
    member = st.sampled_from([f"member:{m}" for m in members])
    anyone = st.one_of(st.just("all"), region, member)
    lists = lambda s: st.lists(s, unique=True, max_size=3)  # noqa: E731
    recipients: dict[str, Any] = {}
    if draw(st.booleans()):
        recipients["green"] = draw(lists(st.one_of(st.just("all"), region)))
    recipients["amber"] = draw(lists(anyone))
    recipients["amber+strict"] = draw(lists(member))
    accounts = st.sampled_from([f"account:{m}-r{i}" for m in members for i in (1, 2)])
    recipients["red"] = draw(lists(accounts))
    rules: dict[str, Any] = {"recipients": recipients}
    types: dict[str, Any] = {}
    if draw(st.integers(0, 3)) == 0:
        types["deny"] = draw(st.lists(st.sampled_from(TYPES), unique=True, max_size=2))
    if draw(st.integers(0, 4)) == 0:
        types["allow"] = draw(st.lists(st.sampled_from(TYPES), unique=True, min_size=3))
    if types:
        rules["types"] = types
    named = draw(st.lists(st.sampled_from(CUSTOM), unique=True))
    if named:
        rules["markings"] = {mid: draw(lists(anyone)) for mid in named}
    rules["anonymous"] = draw(st.integers(0, 3)) == 0
    if draw(st.integers(0, 3)) == 0:
        rules["embargo"] = draw(st.sampled_from(["PT6H", "P1D"]))
    pseudonymise = draw(st.lists(st.sampled_from(["email-addr", "user-account"]), unique=True))
    if pseudonymise:
        rules["pseudonymise"] = pseudonymise
    receive: dict[str, Any] = {}
    if draw(st.integers(0, 3)) == 0:
        receive["types"] = draw(st.lists(st.sampled_from(TYPES), unique=True, min_size=3))
    if draw(st.integers(0, 3)) == 0:
        receive["regions"] = draw(st.lists(st.sampled_from(REGIONS), unique=True, min_size=1))
    if draw(st.booleans()):
        receive["min_confidence"] = draw(st.sampled_from([10, 50, 90]))
    if receive:
        rules["receive"] = receive
    return rules


@st.composite
def histories(draw: st.DrawFn, members: list[str]) -> tuple[FakeHistory, list[str]]:
    """Earlier deliveries of a few ids, and those ids."""
    history = FakeHistory()
    ids = []
    feeds = ["public", *(f"region-{r}" for r in REGIONS), *(f"member-{m}" for m in members)]
    for n in range(draw(st.integers(0, 4))):
        oid = _id(draw(st.sampled_from(["indicator", "malware", "note"])), "earlier", n)
        ids.append(oid)
        got = draw(st.sets(st.sampled_from(members)))
        history.received_by[oid] = frozenset(got)
        for m in got:
            limit = draw(st.sampled_from([(), (), (f"{m}-r1",), (f"{m}-r1", f"{m}-r2")]))
            if limit:
                history.limited[oid, m] = limit
        history.placed[oid] = frozenset(draw(st.sets(st.sampled_from(feeds), max_size=3)))
        owner = draw(st.sampled_from([*members, "(the hub)", None]))
        if owner is not None:
            history.owners[oid] = owner
    return history, ids


def _markings(draw: st.DrawFn, own_markings: list[str], tlps: list[str] = TLPS) -> list[str]:
    shape = draw(st.integers(0, 9))
    if shape == 0:
        return []  # unmarked: routing must not rely on the mark stage
    if shape == 1:
        return draw(st.lists(st.sampled_from(TLPS), unique=True, min_size=2, max_size=3))
    marks = [draw(st.sampled_from(tlps))]
    extra = draw(st.lists(st.sampled_from([*CUSTOM, *own_markings]), unique=True, max_size=2))
    return marks + extra


@st.composite
def submissions(
    draw: st.DrawFn, members: list[str], sender: str, earlier: list[str]
) -> list[dict[str, Any]]:
    """One submission of `sender`: ids drawn first, so references may point anywhere in it
    (later objects, cycles, a second version of the same id)."""
    count = draw(st.integers(1, 9))
    kinds = [draw(st.sampled_from(KINDS)) for _ in range(count)]
    ids: list[str] = []
    for n, kind in enumerate(kinds):
        reuse = draw(st.integers(0, 7))
        if reuse == 0 and earlier:
            ids.append(draw(st.sampled_from(earlier)))
            kinds[n] = ids[-1].split("--", 1)[0]
        elif reuse == 1 and ids:
            ids.append(draw(st.sampled_from(ids)))  # a second version in the same submission
            kinds[n] = ids[-1].split("--", 1)[0]
        elif kind == "identity" and draw(st.booleans()):
            ids.append(IDENTITIES[sender])  # an anonymous sender's identity stays with it
        else:
            ids.append(_id(kind, "submitted", n))
    own_markings = [i for i, k in zip(ids, kinds, strict=True) if k == "marking-definition"]
    pool = st.sampled_from(
        [
            *ids,
            *earlier,
            *(IDENTITIES[m] for m in members),
            HUB_IDENTITY,
            CUSTOM[0],
            _id("indicator", "nobody sent it"),
        ]
    )
    # A report's own marking, mostly one most members receive, so that what tells them
    # apart is what its objects bring (granular markings, references, revocations).
    usual = _markings(draw, own_markings, WIDE)
    objects = []
    for n, (kind, oid) in enumerate(zip(kinds, ids, strict=True)):
        modified = f"2026-11-20T08:00:0{n}.000Z"
        obj: dict[str, Any] = {"type": kind, "spec_version": "2.1", "id": oid}
        sco = kind in ("email-addr", "user-account")
        if not sco:
            obj |= {"created": WHEN, "modified": modified}
            creator = draw(st.sampled_from([sender, sender, sender, *members, None]))
            if creator is not None:
                obj["created_by_ref"] = IDENTITIES[creator]
        if kind == "indicator":
            obj |= {
                "name": f"indicator {n}",
                "description": "C2 address",
                "pattern": f"[ipv4-addr:value = '198.51.100.{n}']",
                "pattern_type": "stix",
                "valid_from": "2026-11-20T08:00:00Z",
            }
        elif kind == "malware":
            obj |= {"name": f"malware {n}", "description": "encrypts", "is_family": False}
        elif kind == "relationship":
            obj |= {
                "relationship_type": "related-to",
                "source_ref": draw(pool),
                "target_ref": draw(pool),
                "description": "seen together",
            }
        elif kind == "note":
            refs = draw(st.lists(pool, unique=True, min_size=1, max_size=4))
            obj |= {"abstract": "analyst note", "content": "Seen twice.", "object_refs": refs}
        elif kind == "report":
            refs = draw(st.lists(pool, unique=True, min_size=1, max_size=6))
            obj |= {"name": "incident", "published": WHEN, "object_refs": refs}
        elif kind == "sighting":
            obj |= {"sighting_of_ref": draw(pool), "count": 2}
        elif kind == "identity":
            obj |= {"name": f"organisation {n}", "identity_class": "organization"}
        elif kind == "email-addr":
            obj |= {"value": f"victim{n}@example.org"}
            accounts = [i for i, k in zip(ids, kinds, strict=True) if k == "user-account"]
            if accounts and draw(st.booleans()):
                obj["belongs_to_ref"] = draw(st.sampled_from(accounts))
        elif kind == "user-account":
            obj |= {"user_id": f"u{n}", "account_login": f"login{n}"}
        elif kind == "marking-definition":
            obj = {
                "type": kind,
                "spec_version": "2.1",
                "id": oid,
                "created": WHEN,
                "definition_type": "statement",
                "definition": {"statement": f"terms {n}"},
            }
        if kind != "marking-definition" or draw(st.booleans()):
            # Most objects of a report carry its marking (they share a class), some their own.
            marks = usual if draw(st.integers(0, 2)) else _markings(draw, own_markings)
            marks = [m for m in marks if m != oid]
            if marks:
                obj["object_marking_refs"] = marks
        if draw(st.integers(0, 4)) == 0:
            obj["x_details"] = {"note": "more", "actor_ref": draw(pool)}
        if draw(st.booleans()):
            selectable = [k for k in obj if k not in ("type", "id", "spec_version")]
            if draw(st.integers(0, 3)):
                # Mostly what an object does without (else it is not delivered at all).
                selectable = [k for k in selectable if k in OPTIONAL] or selectable
            obj["granular_markings"] = [
                {
                    "marking_ref": draw(st.sampled_from([*TLPS, *CUSTOM, *own_markings])),
                    "selectors": draw(
                        st.lists(st.sampled_from(selectable), unique=True, min_size=1, max_size=2)
                    ),
                }
                for _ in range(draw(st.integers(1, 2)))
            ]
        if not sco and draw(st.integers(0, 2)) == 0:
            obj["confidence"] = draw(st.sampled_from([5, 30, 60, 95]))
        if not sco and kind != "marking-definition" and draw(st.integers(0, 4)) == 0:
            obj["revoked"] = True
        objects.append(obj)
    return objects


@st.composite
def cases(draw: st.DrawFn) -> Case:
    members = SLOTS[: draw(st.integers(3, 5))]
    member_regions = {
        m: sorted(draw(st.sets(st.sampled_from(REGIONS), min_size=1, max_size=2))) for m in members
    }
    rules = {m: draw(sharing_rules(members)) for m in members}
    federation = _federation(member_regions, rules)
    history, earlier = draw(histories(members))
    sender = draw(st.sampled_from(members))
    objects = draw(submissions(members, sender, earlier))
    return Case(federation, sender, objects, history)


def _features(case: Case, routed: list[Any]) -> None:
    """Name what the example exercised (`--hypothesis-show-statistics` counts them)."""
    for r in routed:
        withheld = {v.withheld for v in r.verdicts if v.allowed and v.rule != "own"}
        if len(withheld) > 1:
            event("recipients get the object with different properties withheld")
        for v in r.verdicts:
            event(f"verdict rule {v.rule}")
            if v.withheld:
                event("properties withheld")
            if v.own_rules is not None:
                event("decided on the sender's own terms too")
        for d in r.deliveries:
            event(f"delivered to {d.collection.split('-')[0]}")
            if d.accounts:
                event("delivered to named accounts")


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # Shrinking regenerates whole federations and submissions, minutes on a shared machine:
    # a failure is reported as found (its message names the object and the difference).
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(case=cases())
def test_routing_decides_as_the_reference_router(case: Case) -> None:
    policy = Policy(case.federation)
    sender = case.federation.member(case.sender)
    new = Router(policy, KEY).route(sender, case.objects, RECEIVED, case.history)
    old = reference_routing.Router(policy, KEY).route(sender, case.objects, RECEIVED, case.history)
    _features(case, old)
    for obj in case.objects:  # the walk rewritten for speed finds what the old one found
        assert references(obj) == list(reference_routing.references(obj))
    assert len(new) == len(old)
    for i, (got, want) in enumerate(zip(new, old, strict=True)):
        assert got.verdicts == want.verdicts, f"objects[{i}] ({case.objects[i]['id']}): verdicts"
        assert got.deliveries == want.deliveries, f"objects[{i}]: deliveries"
