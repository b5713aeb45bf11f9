"""The flow end to end over real HTTP with OASIS's taxii2-client, on both buses:
one CIRT submits, another reads, and nobody outside the sender's reach sees anything."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest
from requests import HTTPError
from stix2validator import ValidationOptions, validate_instance
from taxii2client.v21 import Server

from connectors.client.http import HubClient
from hub.signing.provenance import without_extension
from tests.hubs import RunningHub, member_identity, read_all, submit
from tests.stixdata import TLP2, incident_report, shared_objects

TAXII = "application/taxii+json;version=2.1"


async def test_discovery_gives_a_relative_api_root_that_clients_resolve(hub: RunningHub) -> None:
    server = Server(
        f"{hub.base_url}/taxii2/", user="gh-cert-read", password=hub.password("gh-cert-read")
    )
    await asyncio.to_thread(server.refresh)
    assert server.default.url == hub.api_root
    await asyncio.to_thread(server.default.refresh)
    aliases = {c.alias for c in server.default.collections}
    assert aliases == {"public", "alerts", "region-west-africa", "member-gh-cert"}
    # The member client (`cirt-hub submit`, `pull`) resolves it the same way.
    async with HubClient(hub.base_url, "gh-cert-read", hub.password("gh-cert-read")) as client:
        assert await client.api_root() == hub.api_root
    # The Host and X-Forwarded-* headers are anyone's to write: nothing is built from them,
    # so a cache between cannot be made to keep an attacker's address.
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{hub.base_url}/taxii2/",
            headers={
                "Host": "evil.example:666",
                "X-Forwarded-Host": "evil.example",
                "X-Forwarded-Proto": "http",
                "Accept": TAXII,
            },
        ) as response,
    ):
        text = await response.text()
    assert "evil" not in text
    found = orjson.loads(text)
    assert found["api_roots"] == ["/taxii2/hub/"] and found["default"] == "/taxii2/hub/"


async def test_green_incident_from_one_member_is_read_by_its_region(hub: RunningHub) -> None:
    report = incident_report(member_identity(hub, "ng-cert"), "ngCERT", TLP2["green"])
    status = await submit(hub, "ng-cert-submit", report)
    assert status.status == "complete"
    assert status.success_count == 4 and status.failure_count == 0
    assert {s["id"] for s in status.successes} == {o["id"] for o in report}

    received = await read_all(hub, "region-west-africa", "gh-cert-read")
    # Delivered as sent, plus the hub's signed provenance.
    as_sent = [without_extension(o) for o in received]
    assert sorted(as_sent, key=lambda o: o["id"]) == sorted(report, key=lambda o: o["id"])
    options = ValidationOptions(version="2.1")
    for obj in received:
        result = validate_instance(obj, options)
        assert result.is_valid, [str(e) for e in result.errors]

    # Another region, and another member's own feed, stay closed.
    with pytest.raises(HTTPError, match="404"):
        await read_all(hub, "region-west-africa", "ke-cirt-read")
    with pytest.raises(HTTPError, match="404"):
        await read_all(hub, "member-ng-cert", "gh-cert-read")


async def test_amber_and_unmarked_content_stays_with_the_sender(hub: RunningHub) -> None:
    amber = incident_report(member_identity(hub, "ke-cirt"), "KE-CIRT/CC", TLP2["amber"])
    oasis = shared_objects("oasis-cti-documentation-examples/indicator-for-malicious-url.json")
    status = await submit(hub, "ke-cirt-submit", amber + oasis)
    assert status.failure_count == 0, status.failures
    own = {o["id"] for o in await read_all(hub, "member-ke-cirt", "ke-cirt-read")}
    assert own == {o["id"] for o in amber + oasis}
    for username, alias in (
        ("rw-csirt-read", "region-east-africa"),
        ("tz-cert-read", "member-tz-cert"),
    ):
        seen = {o["id"] for o in await read_all(hub, alias, username)}
        assert not seen & own, f"{username} saw {seen & own}"


async def test_invalid_objects_are_refused_with_their_reason(hub: RunningHub) -> None:
    good = incident_report(member_identity(hub, "gh-cert"), "CERT-GH", TLP2["green"])
    broken = dict(
        good[2],
        id="indicator--5f1c2b8e-4a8a-4c27-9b1e-2a6f1e0c9d11",
        pattern="[ipv4-addr:value = ]",
    )
    older = dict(
        good[1],
        id="incident--7d1c2b8e-4a8a-4c27-9b1e-2a6f1e0c9d12",
        modified="2001-01-01T00:00:00.000Z",
    )
    status = await submit(hub, "gh-cert-submit", [*good, broken, older])
    assert status.success_count == 4
    failures = {f["id"]: f["message"] for f in status.failures}
    assert "pattern" in failures[broken["id"]]
    assert "earlier than created" in failures[older["id"]]
    delivered = {o["id"] for o in await read_all(hub, "region-west-africa", "sn-cert-read")}
    assert delivered == {o["id"] for o in good}


async def test_a_three_megabyte_report_goes_through(hub: RunningHub) -> None:
    """Kafka's default record limit is 1 MB; the hub's limit is what TAXII advertises."""
    report = incident_report(member_identity(hub, "sn-cert"), "CERT-SN", TLP2["green"])
    log_excerpt = "Nov 20 08:00:01 web01 sshd[811]: Failed password for root from 203.0.113.45\n"
    report[1]["description"] = log_excerpt * (3 * 1024 * 1024 // len(log_excerpt))
    status = await submit(hub, "sn-cert-submit", report)
    assert status.success_count == 4, status.failures
    received = {o["id"]: o for o in await read_all(hub, "region-west-africa", "gh-cert-read")}
    assert received[report[1]["id"]]["description"] == report[1]["description"]


async def test_the_oasis_incident_core_example_is_not_blocked(hub: RunningHub) -> None:
    """OASIS's validator flags its extension keys; the hub accepts it (see README)."""
    report = shared_objects("oasis-incident-core-examples/incident_ransom.json")
    status = await submit(hub, "ke-cirt-submit", report)
    assert status.failure_count == 0, status.failures
    delivered = {o["id"] for o in await read_all(hub, "member-ke-cirt", "ke-cirt-read")}
    assert delivered == {o["id"] for o in report}
