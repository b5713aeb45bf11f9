"""Responding together (issue 25), on both buses over real HTTP: three members report the
same C2 domain, the alert goes out, two acknowledge, the third sights it; every recipient's
alert shows the counts per state, how many sighted it, and the times; nobody learns a name
that was not offered; a member cannot respond to an alert it did not receive, nor count
twice. A rule may keep sightings apart from its threshold."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from hub.correlate.alerts import ALERT_PROPERTY
from hub.correlate.responses import RESPONSE_EXTENSION, response_note
from hub.federation import FederationError, parse_federation
from tests.correlate.test_alerts import alerts_of, indicator, settled, sighting, with_rule
from tests.hubs import RunningHub, member_identity, running_hub, submit, visible_to
from tests.test_federation import TEXT, line_of

RECIPIENTS = ("ng-cert", "gh-cert", "sn-cert")


def basic(hub: RunningHub, username: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(username, hub.password(username))}


async def respond(
    hub: RunningHub, username: str, alert_id: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    url = f"{hub.base_url}/api/v1/alerts/{alert_id}/responses"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=orjson.dumps(body), headers=basic(hub, username)) as response,
    ):
        return response.status, await response.json(content_type=None)


async def latest(hub: RunningHub, member: str) -> dict[str, Any]:
    """The member's one alert, its latest version."""
    found = await alerts_of(hub, f"{member}-read")
    assert len({a["id"] for a in found}) == 1, found
    return found[-1]


async def until(hub: RunningHub, member: str, holds: Any) -> dict[str, Any]:
    """The member's latest alert once `holds` is true of its alert property."""
    deadline = time.monotonic() + 30
    while not holds((found := await latest(hub, member))[ALERT_PROPERTY]):
        assert time.monotonic() < deadline, found[ALERT_PROPERTY]
        await asyncio.sleep(0.2)
    return found


async def test_two_acknowledge_one_sights_everyone_sees_the_counts_no_one_the_names(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    rule = with_rule(min_members=3, min_countries=3, window="PT1H")
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}.", adjust=rule
    ) as hub:
        reports = {m: indicator(member_identity(hub, m)) for m in RECIPIENTS}
        for member, report in reports.items():
            assert (await submit(hub, f"{member}-submit", [report])).success_count == 1
        alerts = {m: (await settled(hub, f"{m}-read", 1))[-1] for m in RECIPIENTS}
        for alert in alerts.values():
            fields = alert[ALERT_PROPERTY]
            assert fields["sighted"] == 0 and set(fields["responses"].values()) == {0}
            assert "first_acknowledged" not in fields and "named" not in fields

        # A member cannot respond to an alert another member received, by API or by TAXII.
        status, error = await respond(
            hub, "sn-cert-submit", alerts["ng-cert"]["id"], {"state": "affected"}
        )
        assert status == 404 and error["title"] == "Not found", error
        forged = response_note(
            alerts["ng-cert"]["id"], "affected", None, False, member_identity(hub, "sn-cert")
        )
        assert (await submit(hub, "sn-cert-submit", [forged])).success_count == 1
        # Nor with a reader account, nor with a state not in the list.
        status, _ = await respond(
            hub, "ng-cert-read", alerts["ng-cert"]["id"], {"state": "acknowledged"}
        )
        assert status == 403
        status, error = await respond(
            hub, "ng-cert-submit", alerts["ng-cert"]["id"], {"state": "panicking"}
        )
        assert status == 400 and "state" in error["description"], error

        # ng-cert acknowledges anonymously, twice (its latest counts, once); gh-cert names
        # itself; sn-cert sights ng-cert's indicator.
        for _ in range(2):
            status, accepted = await respond(
                hub, "ng-cert-submit", alerts["ng-cert"]["id"], {"state": "acknowledged"}
            )
            assert status == 202 and accepted["status"] == "pending", accepted
        body = {"state": "acknowledged", "note": "blocking at the border", "named": True}
        status, _ = await respond(hub, "gh-cert-submit", alerts["gh-cert"]["id"], body)
        assert status == 202
        sighted = sighting(member_identity(hub, "sn-cert"), reports["ng-cert"]["id"])
        assert (await submit(hub, "sn-cert-submit", [sighted])).success_count == 1

        def complete(fields: dict[str, Any]) -> bool:
            return fields["responses"]["acknowledged"] == 2 and fields["sighted"] == 1

        await asyncio.sleep(1.0)  # anything more (the forgery, the repeat) would be here too
        gh_name = hub.settings.federation.member("gh-cert")
        for member in RECIPIENTS:
            alert = await until(hub, member, complete)
            fields = alert[ALERT_PROPERTY]
            assert fields["responses"] == {
                "acknowledged": 2,
                "investigating": 0,
                "affected": 0,
                "not-affected": 0,
                "mitigated": 0,
            }, member
            assert fields["members"] == 3 and fields["sighted"] == 1
            assert fields["seconds_since_first_report"] >= 0
            assert fields["seconds_to_first_acknowledgement"] >= 0
            assert fields["first_acknowledged"] >= alert["created"]
            # gh-cert offered its name; nobody else did.
            assert fields["named"] == [
                {
                    "identity": gh_name.identity,
                    "name": gh_name.name,
                    "sighted": False,
                    "state": "acknowledged",
                }
            ]
            raw = orjson.dumps(alert).decode()
            for other in ("ng-cert", "sn-cert"):
                if other != member:
                    named = hub.settings.federation.member(other)
                    assert named.identity not in raw and named.name not in raw, (member, other)
            assert "blocking at the border" not in raw

        # The response notes themselves go nowhere but their sender's own collection.
        for member in ("gh-cert", "sn-cert", "ke-cirt"):
            seen = await visible_to(hub, f"{member}-read")
            notes = [
                o
                for objects in seen.values()
                for o in objects
                if RESPONSE_EXTENSION in (o.get("extensions") or {})
                and o.get("created_by_ref") != member_identity(hub, member)
            ]
            assert notes == [], (member, notes)
        own = await visible_to(hub, "ng-cert-read")
        assert any(
            RESPONSE_EXTENSION in (o.get("extensions") or {}) for o in own.get("member-ng-cert", [])
        )


async def test_a_rule_may_keep_sightings_apart_from_its_threshold(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    rule = with_rule(min_members=3, min_countries=3, window="PT1H", sightings="apart")
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}.", adjust=rule
    ) as hub:
        first = indicator(member_identity(hub, "ng-cert"))
        assert (await submit(hub, "ng-cert-submit", [first])).success_count == 1
        second = indicator(member_identity(hub, "gh-cert"))
        assert (await submit(hub, "gh-cert-submit", [second])).success_count == 1
        seen = sighting(member_identity(hub, "sn-cert"), first["id"])
        assert (await submit(hub, "sn-cert-submit", [seen])).success_count == 1
        await asyncio.sleep(2)
        assert await alerts_of(hub, "ng-cert-read") == []  # two reports and a sighting
        third = indicator(member_identity(hub, "ke-cirt"))
        assert (await submit(hub, "ke-cirt-submit", [third])).success_count == 1
        [alert] = await settled(hub, "ng-cert-read", 1)
        assert alert[ALERT_PROPERTY]["members"] == 3 and alert[ALERT_PROPERTY]["sighted"] == 1


def test_a_bad_sightings_setting_names_the_field() -> None:
    text = TEXT + "\ncorrelation:\n  rules:\n    - {scope: all, sightings: often}\n"
    try:
        parse_federation(text, "fed.yaml")
    except FederationError as exc:
        line = line_of(text, "sightings: often")
        assert f"fed.yaml:{line}: correlation.rules[0].sightings" in str(exc), str(exc)
    else:
        raise AssertionError("sightings: often was taken")
