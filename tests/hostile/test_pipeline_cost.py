"""A hostile member's costly objects: their cost grows with their size, not faster, and
they do not hold back what other members send.

Costs are counted in function calls (the same on any machine), not in seconds; the one
timed test is end to end, with a bound far above what the work takes and far below the
stall it replaces (32 s for the 8,000 selectors below, before).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from taxii2client.v21 import Collection

from hub.federation import Account, Federation, HubInfo, Limits, Member, Region
from hub.policy.dependencies import TOO_ENTANGLED, Shaped, settle
from hub.policy.entitlement import Policy
from hub.policy.routing import NoHistory, Router
from hub.stix.validation import Refuse, check_object
from tests.hubs import RunningHub, collection, member_identity, read_all, running_hub, submit
from tests.stixdata import TLP2, indicator

RECEIVED = "2026-11-20T08:00:00.000000Z"
# Seconds from another member's POST to its object being readable, while the hostile
# member's heavy object is in the pipeline ahead of it.
BOUND = 10.0


def calls(work: Callable[[], object]) -> int:
    """How many function calls `work` makes: a measure of its cost that no load can skew."""
    count = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        work()
    finally:
        sys.setprofile(None)
    return count


def labelled(n: int, *, marking: str = TLP2["amber"]) -> dict[str, Any]:
    """An indicator with `n` labels, each under its own granular selector."""
    return {
        **indicator(f"identity--{uuid.uuid4()}", "[ipv4-addr:value = '203.0.113.9']"),
        "labels": [f"label-{i}" for i in range(n)],
        "granular_markings": [
            {"marking_ref": marking, "selectors": [f"labels.[{i}]" for i in range(n)]}
        ],
    }


def test_checking_granular_selectors_costs_what_the_object_weighs() -> None:
    check_object(labelled(10), Limits())  # caches (schemas, patterns) filled first
    small, large = (calls(lambda n=n: check_object(labelled(n), Limits())) for n in (200, 800))
    # Four times the selectors, four times the work: not 16 (per selector, a walk of the
    # object) nor 64 (the stix2 library's walk, which searches each list for each index).
    assert large < 6 * small, (small, large)


def _federation() -> tuple[Federation, tuple[Member, ...]]:
    members = tuple(
        Member(
            name,
            name.upper(),
            "AA",
            ("west",),
            f"identity--{uuid.uuid5(uuid.NAMESPACE_DNS, name)}",
            (Account(f"{name}-read", frozenset({"read"}), "unused", name),),
            sharing={"recipients": {"green": ["all"]}},
        )
        for name in ("sender", "x", "y", "z")
    )
    hub = HubInfo("h", "Hub", "identity--5b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
    return Federation(hub, (Region("west", "West"),), members), members


def _chain(n: int) -> list[dict[str, Any]]:
    """`n` reports, each referring to the next; the last to an object nobody received, so
    each is denied in turn, the last first (a fixpoint of n rounds, judged round by round)."""
    ids = [f"report--{uuid.uuid4()}" for _ in range(n)] + [f"indicator--{uuid.uuid4()}"]
    return [
        {
            "type": "report",
            "spec_version": "2.1",
            "id": ids[i],
            "created": "2026-11-20T08:00:00Z",
            "modified": "2026-11-20T08:00:00Z",
            "name": f"part {i}",
            "published": "2026-11-20T08:00:00Z",
            "object_refs": [ids[i + 1]],
            "object_marking_refs": [TLP2["green"]],
        }
        for i in range(n)
    ]


def test_routing_a_chain_of_dependencies_costs_what_the_submission_weighs() -> None:
    federation, members = _federation()
    router = Router(Policy(federation), b"k" * 16)

    def route(n: int) -> None:
        routed = router.route(members[0], _chain(n), RECEIVED, NoHistory())
        denied = [v for r in routed for v in r.verdicts if v.member != "sender"]
        assert denied and not any(v.allowed for v in denied)
        assert {v.rule for v in denied} == {"dependencies"}

    route(5)
    small, large = calls(lambda: route(150)), calls(lambda: route(600))
    assert large < 6 * small, (small, large)


def test_a_fixpoint_past_its_work_cap_gives_the_recipient_nothing() -> None:
    """A crafted cycle: each round of denials sends one big object back to be judged, so
    the work would grow with the square of the submission; it stops at the cap instead."""
    n = 60
    # Object 0 (big) refers to all of 1..n; each of 1..n refers to the next, n to 1; object 1
    # alone is invalid from the start. Each object i>1 is valid only while i+1 is visible.
    refs = [tuple(f"o{i}" for i in range(1, n + 1))]
    refs += [(f"o{i % n + 1}",) for i in range(1, n + 1)]
    ids = [f"o{i}" for i in range(n + 1)]
    sizes = [50 * n] + [1] * n
    judged: list[int] = []

    def shape(i: int, visible: set[str]) -> Shaped:
        judged.append(i)
        broken = i == 1 or (i > 1 and not visible.issuperset(refs[i]))
        return Shaped((i, frozenset(), ()), {}, frozenset(), "broken" if broken else None)

    settled = settle(ids, refs, sizes, [True] * (n + 1), shape)
    assert settled.exhausted
    assert sum(sizes[i] for i in judged) <= 2 * sum(sizes) + max(sizes)
    assert "too tangled" in TOO_ENTANGLED


async def test_a_heavy_object_does_not_hold_back_another_members_submission(
    hub: RunningHub,
) -> None:
    # rw-csirt (hostile here) sends one indicator with 8,000 granular selectors, ~200 KB;
    # ng-cert sends an ordinary one right after it. ng-cert's is readable within BOUND.
    heavy = labelled(8_000)
    heavy["created_by_ref"] = member_identity(hub, "rw-csirt")
    inbox = collection(hub, "inbox", "rw-csirt-submit")
    await asyncio.to_thread(inbox.add_objects, {"objects": [heavy]}, wait_for_completion=False)

    small = indicator(member_identity(hub, "ng-cert"), "[ipv4-addr:value = '198.51.100.23']")
    theirs: Collection = collection(hub, "inbox", "ng-cert-submit")
    posted = time.monotonic()
    await asyncio.to_thread(theirs.add_objects, {"objects": [small]}, wait_for_completion=False)
    waited = 0.0
    while waited < BOUND:
        found = await read_all(hub, "region-west-africa", "gh-cert-read", id=small["id"])
        waited = time.monotonic() - posted
        if found:
            break
        await asyncio.sleep(0.1)
    assert found, f"ng-cert's indicator was not readable {BOUND} s after its POST"
    # The heavy object went through too: refused nothing, delivered to whom it may go.
    for _ in range(100):
        heavy_found = await read_all(hub, "region-east-africa", "ke-cirt-read", id=heavy["id"])
        if heavy_found:
            break
        await asyncio.sleep(0.1)
    assert heavy_found and len(heavy_found[0]["granular_markings"][0]["selectors"]) == 8_000


def chain(n: int) -> str:
    """A STIX pattern of `n` address comparisons joined by OR."""
    return (
        "[" + " OR ".join(f"ipv4-addr:value = '10.0.{i // 250}.{i % 250}'" for i in range(n)) + "]"
    )


def test_a_pattern_past_the_limits_is_refused_before_it_is_parsed() -> None:
    """The grammar's parser takes about 10 µs a character and recurses per chained operator:
    a 310,000-character pattern took 3 s to be refused as nested too deeply. Past the limits
    a pattern is refused by its length and its count of comparisons, at the cost of one
    look at each character, naming the limit."""
    too_long = indicator(f"identity--{uuid.uuid4()}", chain(9_000))  # about 310,000 characters
    too_many = indicator(f"identity--{uuid.uuid4()}", chain(600))  # 20,000 characters
    for obj, limit in ((too_long, "max_pattern_length"), (too_many, "max_pattern_comparisons")):
        with pytest.raises(Refuse) as refused:
            check_object(obj, Limits())
        assert refused.value.path == "pattern"
        assert f"(hub.limits.{limit})" in str(refused.value)

        def check(obj: dict[str, Any] = obj) -> None:
            with pytest.raises(Refuse):
                check_object(obj, Limits())

        # A few hundred calls, whatever the pattern's length (the parser: millions).
        assert calls(check) < 500


def with_pattern_limits(federation: Federation) -> Federation:
    limits = replace(federation.hub.limits, max_pattern_length=2_000, max_pattern_comparisons=20)
    return replace(federation, hub=replace(federation.hub, limits=limits))


@pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)
async def test_the_pattern_limits_are_the_federation_files_and_refuse_one_object(
    bus_url: str, tmp_path: Path, demo_secrets: Path
) -> None:
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, adjust=with_pattern_limits
    ) as hub:
        identity = member_identity(hub, "ng-cert")
        objects = [
            indicator(identity, chain(20)),  # 700 characters: within both
            indicator(identity, chain(21)),
            indicator(identity, f"[file:name = '{'x' * 2_000}']"),
        ]
        status = await submit(hub, "ng-cert-submit", objects)
    assert [s["id"] for s in status.successes] == [objects[0]["id"]]
    failures = {f["id"]: f["message"] for f in status.failures}
    assert "has 21 comparisons; this hub reads 20" in failures[objects[1]["id"]]
    assert "has 2,016 characters; this hub reads 2,000" in failures[objects[2]["id"]]
