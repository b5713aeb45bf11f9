"""Major-incident alerts on both buses, over real HTTP: members in several countries report
the same C2 domain in differently shaped objects; one alert per recipient, a new version as
each report arrives, only what each recipient may see inside, signed; below the threshold
or outside the window nothing; a restart keeps the count."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import stix2

from hub.api.keys import BUS, SIGNING_KEYS
from hub.bus import read_to
from hub.correlate.alerts import ALERT_PROPERTY
from hub.federation import Federation
from hub.signing.verify import Verifier, hub_keys
from tests.hubs import RunningHub, member_identity, read_all, running_hub, submit
from tests.stixdata import TLP2
from tests.stixdata import indicator as stix_indicator

DOMAIN = "c2.badcorp.example"


def with_rule(**rule: Any):
    def adjust(federation: Federation) -> Federation:
        return replace(federation, correlation={"rules": [{"scope": "all", **rule}]})

    return adjust


def indicator(identity: str, domain: str = DOMAIN) -> dict[str, Any]:
    pattern = f"[domain-name:value = '{domain}']"
    return stix_indicator(identity, pattern, name="C2 of the tax-portal ransomware")


def observed(identity: str, domain: str) -> list[dict[str, Any]]:
    """An observed-data of the domain (written as a CIRT's sensor would, in capitals)."""
    sco = orjson.loads(stix2.DomainName(value=domain).serialize())
    sco["object_marking_refs"] = [TLP2["green"]]
    seen = {
        "type": "observed-data",
        "spec_version": "2.1",
        "id": f"observed-data--{uuid.uuid4()}",
        "created": "2026-11-29T08:10:00.000Z",
        "modified": "2026-11-29T08:10:00.000Z",
        "first_observed": "2026-11-29T08:00:00Z",
        "last_observed": "2026-11-29T08:05:00Z",
        "number_observed": 40,
        "object_refs": [sco["id"]],
        "created_by_ref": identity,
        "object_marking_refs": [TLP2["green"]],
    }
    return [sco, seen]


def sighting(identity: str, of: str) -> dict[str, Any]:
    return {
        "type": "sighting",
        "spec_version": "2.1",
        "id": f"sighting--{uuid.uuid4()}",
        "created": "2026-11-29T08:20:00.000Z",
        "modified": "2026-11-29T08:20:00.000Z",
        "sighting_of_ref": of,
        "where_sighted_refs": [identity],
        "count": 12,
        "created_by_ref": identity,
        "object_marking_refs": [TLP2["green"]],
    }


async def alerts_of(hub: RunningHub, reader: str) -> list[dict[str, Any]]:
    """Every version of every alert `reader` may read, oldest first."""
    feed_objects = await read_all(hub, "alerts", reader, version="all")
    return sorted(feed_objects, key=lambda a: (a["id"], a["modified"]))


async def settled(hub: RunningHub, reader: str, versions: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while len(found := await alerts_of(hub, reader)) < versions:
        assert time.monotonic() < deadline, f"{reader} has {len(found)} alert versions"
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # nothing more arrives
    return await alerts_of(hub, reader)


async def test_three_countries_one_domain_one_alert_versioned_and_private(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    rule = with_rule(min_members=2, min_countries=2, window="PT1H")
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}.", adjust=rule
    ) as hub:
        ng, gh, sn, ke = (
            member_identity(hub, m) for m in ("ng-cert", "gh-cert", "sn-cert", "ke-cirt")
        )
        first = indicator(ng)
        assert (await submit(hub, "ng-cert-submit", [first])).success_count == 1
        await asyncio.sleep(1.5)
        assert await alerts_of(hub, "ng-cert-read") == []  # one member: no major incident
        # Another country's sensor saw it, written otherwise (capitals, a trailing dot).
        assert (
            await submit(hub, "gh-cert-submit", observed(gh, "C2.BadCorp.Example."))
        ).success_count == 2
        await settled(hub, "ng-cert-read", 1)
        assert (await submit(hub, "sn-cert-submit", [sighting(sn, first["id"])])).success_count == 1
        await settled(hub, "ng-cert-read", 2)
        far = indicator(ke)  # East Africa: its region only
        assert (await submit(hub, "ke-cirt-submit", [far])).success_count == 1
        west = await settled(hub, "ng-cert-read", 3)

        # One alert for ng-cert, in three versions, counts growing as reports arrived.
        assert len({a["id"] for a in west}) == 1
        counts = [(a[ALERT_PROPERTY]["members"], a[ALERT_PROPERTY]["countries"]) for a in west]
        assert counts == [(2, 2), (3, 3), (4, 4)]
        latest = west[-1]
        assert (
            latest["type"] == "grouping"
            and latest["created_by_ref"] == hub.settings.federation.hub.identity
        )
        # What ng-cert received, and nothing from East Africa that it did not.
        assert first["id"] in latest["object_refs"] and far["id"] not in latest["object_refs"]
        verifier = Verifier(hub_keys(hub.app[SIGNING_KEYS].jwks()))
        assert all(verifier.verify(a).valid for a in west)
        # The hub's own objects name the hub's id as their submitter, as the TLP definitions
        # do: on the feed record (what Kafka readers see) and in the signed provenance.
        hub_id = hub.settings.federation.hub.id
        topic = hub.settings.topics.feed("alerts")
        ends = await hub.app[BUS].end_offsets([topic])
        reader = hub.app[BUS].reader([topic], {tp: 0 for tp in ends})
        await reader.start()
        try:
            records = await read_to(reader, ends)
        finally:
            await reader.stop()
        assert records and {r.header("submitter") for r in records} == {hub_id.encode()}
        assert {verifier.verify(a).submitter for a in west} == {hub_id}

        # ke-cirt learns that four members in four countries saw it; not who, not what.
        [east] = await settled(hub, "ke-cirt-read", 1)
        assert east["object_refs"] == [far["id"]]
        assert east[ALERT_PROPERTY]["members"] == 4
        raw = orjson.dumps(east).decode()
        for secret in (first["id"], ng, gh, sn, "ng-cert", "gh-cert", "ngCERT", "Ghana"):
            assert secret not in raw, secret
        assert DOMAIN not in raw  # the value is in the reports, not in the alert
        # A member that saw none of the reports gets no alert at all.
        assert len(await alerts_of(hub, "rw-csirt-read")) == 1  # East Africa saw ke's report
        other = [a for a in await alerts_of(hub, "ke-cirt-read") if a["id"] != east["id"]]
        assert other == []


async def test_below_the_threshold_or_outside_the_window_there_is_no_alert(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    rule = with_rule(min_members=2, min_countries=2, window="PT3S")
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}.", adjust=rule
    ) as hub:
        ng, gh = member_identity(hub, "ng-cert"), member_identity(hub, "gh-cert")
        # Two reports of one member: one member is not a major incident.
        for _ in range(2):
            assert (await submit(hub, "ng-cert-submit", [indicator(ng)])).success_count == 1
        await asyncio.sleep(2)
        assert await alerts_of(hub, "ng-cert-read") == []
        await asyncio.sleep(2.5)  # the window has passed
        assert (await submit(hub, "gh-cert-submit", [indicator(gh)])).success_count == 1
        await asyncio.sleep(2)
        assert await alerts_of(hub, "gh-cert-read") == []
        # Within the window it would have been one.
        assert (await submit(hub, "ng-cert-submit", [indicator(ng)])).success_count == 1
        assert len(await settled(hub, "gh-cert-read", 1)) == 1


async def test_a_restart_keeps_the_count(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    rule = with_rule(min_members=3, min_countries=3, window="PT1H")
    data_dir, prefix = tmp_path / "data", f"t{unique}."
    async with running_hub(
        bus_url, data_dir, demo_secrets, topic_prefix=prefix, adjust=rule
    ) as hub:
        for member in ("ng-cert", "gh-cert"):
            report = indicator(member_identity(hub, member))
            assert (await submit(hub, f"{member}-submit", [report])).success_count == 1
        await asyncio.sleep(1.5)
        assert await alerts_of(hub, "ng-cert-read") == []
    async with running_hub(
        bus_url, data_dir, demo_secrets, topic_prefix=prefix, adjust=rule
    ) as hub:
        report = indicator(member_identity(hub, "sn-cert"))
        assert (await submit(hub, "sn-cert-submit", [report])).success_count == 1
        [only] = await settled(hub, "ng-cert-read", 1)  # the third member makes it one
        assert only[ALERT_PROPERTY]["members"] == 3
