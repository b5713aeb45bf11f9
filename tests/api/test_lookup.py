"""`GET /api/v1/lookup` through a real hub: values matched as STIX patterns and observables
contain them (an address inside an indicator's network, a network holding indicators'
addresses, subdomains, hashes whatever their case, URLs as normalised, free text), with
where and when each was shared and the sightings and reports that refer to them; only the
current version of what the caller may read (never another member's TLP:AMBER, TLP:RED for
another account, a revoked or superseded value, a pseudonymised value but by its pseudonym);
and wrong parameters get a 400 naming them."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from hub.signing.sources import Credentials
from tests.hubs import RunningHub, member_identity, read_all, running_hub, submit
from tests.stixdata import TLP2, indicator

pytestmark = [
    pytest.mark.parametrize("bus_url", ["embedded"], indirect=True),
    pytest.mark.timeout(300),
]

VICTIM = "finance.director@ministry.example"
SHARING = {
    "ng-cert": {
        "recipients": {"amber": ["member:gh-cert"], "red": ["account:gh-cert-read2"]},
        "pseudonymise": ["email-addr"],
    }
}
SHA256 = "EF537F25C895BFA782526529A9B63D97AA631564D5D789C2B765448C8635FB6C"
LATER = "2026-12-01T08:00:00.000Z"


async def look(hub: RunningHub, username: str | None, **params: str) -> tuple[int, Any]:
    headers = {}
    if username is not None:
        headers["Authorization"] = Credentials(username, hub.password(username)).header()
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{hub.base_url}/api/v1/lookup", params=params, headers=headers) as response,
    ):
        return response.status, orjson.loads(await response.read())


async def found(hub: RunningHub, username: str, value: str, **params: str) -> dict[str, Any]:
    """id → the answer's entry for it, for a look-up that must succeed."""
    status, body = await look(hub, username, value=value, **params)
    assert status == 200, body
    return {entry["id"]: entry for entry in body["objects"]}


def stix(kind: str, ng: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "spec_version": "2.1",
        "id": f"{kind}--{uuid.uuid4()}",
        "created": "2026-11-29T08:00:00.000Z",
        "modified": "2026-11-29T08:00:00.000Z",
        "created_by_ref": ng,
        "object_marking_refs": [TLP2["green"]],
        **fields,
    }


async def test_what_a_reader_may_read_is_found_as_patterns_and_observables_say(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        sharing=SHARING,
        extra_readers={"gh-cert-read2": "gh-cert"},
    ) as hub:
        ng = member_identity(hub, "ng-cert")
        network = indicator(ng, "[ipv4-addr:value = '203.0.113.0/24']", name="C2 network")
        below = indicator(ng, "[domain-name:value LIKE '%.example.org']", name="any subdomain")
        sub = indicator(ng, "[domain-name:value = 'a.evil.example']", name="subdomain")
        hashed = indicator(ng, f"[file:hashes.'SHA-256' = '{SHA256}']", name="dropper")
        url = indicator(ng, "[url:value = 'HTTP://Phish.Example:80/login?x=1']", name="phish")
        six = indicator(ng, "[ipv6-addr:value ISSUBSET '2001:db8::/32']", name="v6 range")
        gate = indicator(ng, "[url:value = 'http://198.51.100.50:8080/gate.php']", name="gate")
        amber = indicator(ng, "[ipv4-addr:value = '198.51.100.7']", TLP2["amber"], "amber")
        red = indicator(ng, "[ipv4-addr:value = '198.51.100.8']", TLP2["red"], "red")
        phish = indicator(ng, f"[email-addr:value = '{VICTIM}']", name="phished")
        gone = indicator(ng, "[ipv4-addr:value = '192.0.2.1']", name="revoked later")
        moved = indicator(ng, "[ipv4-addr:value = '192.0.2.2']", name="changed later")
        address = stix("ipv4-addr", ng, value="198.51.100.99")
        address.pop("created"), address.pop("modified"), address.pop("created_by_ref")
        address["id"] = f"ipv4-addr--{uuid.uuid4()}"
        sighting = stix("sighting", ng, sighting_of_ref=network["id"], count=2)
        report = stix(
            "report",
            ng,
            name="Ransomware on the national tax portal",
            description="Files encrypted on two front-end servers.",
            published="2026-11-29T08:00:00Z",
            report_types=["incident"],
            object_refs=[hashed["id"]],
        )
        objects = [network, below, sub, hashed, url, six, gate, amber, red, phish, gone, moved]
        status = await submit(hub, "ng-cert-submit", [*objects, address, sighting, report])
        assert status.success_count == len(objects) + 3, status
        status = await submit(
            hub,
            "ng-cert-submit",
            [
                {**gone, "modified": LATER, "revoked": True},
                {**moved, "modified": LATER, "pattern": "[ipv4-addr:value = '192.0.2.3']"},
            ],
        )
        assert status.success_count == 2, status
        reader = "gh-cert-read"

        # An address inside an indicator's network, with where and when it was shared, and
        # the sighting of that indicator.
        hits = await found(hub, reader, "203.0.113.45")
        entry = hits[network["id"]]
        assert entry["matched"] == [{"value": "203.0.113.0/24", "relation": "contains"}]
        assert entry["collection"] == "region-west-africa"
        assert entry["date_added"].startswith("20") and entry["tlp"] == "TLP:GREEN"
        assert entry["name"] == "C2 network" and entry["type"] == "indicator"
        assert hits[sighting["id"]]["refers_to"] == [network["id"]]
        # A network query finds the indicators inside it and those holding it.
        assert hits.keys() == (await found(hub, reader, "203.0.113.0/24")).keys()
        wide = await found(hub, reader, "203.0.0.0/16")
        assert wide[network["id"]]["matched"][0]["relation"] == "within"
        assert network["id"] not in await found(hub, reader, "203.0.114.1")
        assert six["id"] in await found(hub, reader, "2001:db8:1::5")
        # Domains: a LIKE '%.example.org' pattern covers www.example.org, not example.org
        # itself (listed as within it); a query for a domain finds its subdomains and URLs.
        hits = await found(hub, reader, "www.example.org")
        assert hits[below["id"]]["matched"] == [{"value": "*.example.org", "relation": "contains"}]
        assert (await found(hub, reader, "example.org"))[below["id"]]["matched"][0][
            "relation"
        ] == "within"
        assert (await found(hub, reader, "evil.example"))[sub["id"]]["matched"][0][
            "relation"
        ] == "within"
        assert (await found(hub, reader, "phish.example"))[url["id"]]["matched"][0][
            "relation"
        ] == "host"
        assert url["id"] in await found(hub, reader, "http://phish.example/login?x=1")
        assert (await found(hub, reader, "198.51.100.50"))[gate["id"]]["matched"] == [
            {"value": "198.51.100.50", "relation": "host"}
        ]
        # A hash whatever its case, with the report that lists its indicator.
        for value in (SHA256, SHA256.lower()):
            hits = await found(hub, reader, value)
            assert hits[hashed["id"]]["matched"][0]["relation"] == "equal"
            assert hits[report["id"]]["refers_to"] == [hashed["id"]]
        # An observable by itself, and free text.
        assert address["id"] in await found(hub, reader, "198.51.100.99")
        assert report["id"] in await found(hub, reader, "tax portal", kind="text")
        # Only what is current: a revoked indicator, a value its next version dropped.
        assert gone["id"] not in await found(hub, reader, "192.0.2.1")
        assert moved["id"] not in await found(hub, reader, "192.0.2.2")
        assert moved["id"] in await found(hub, reader, "192.0.2.3")

        # AMBER to CERT-GH only; RED to one account of it.
        assert amber["id"] in await found(hub, reader, "198.51.100.7")
        assert red["id"] not in await found(hub, reader, "198.51.100.8")
        assert red["id"] in await found(hub, "gh-cert-read2", "198.51.100.8")
        # Another member's reader: the answer of a value never shared.
        for value in ("198.51.100.7", "198.51.100.8"):
            nothing = {"query": {"value": value, "kind": "ipv4"}, "objects": [], "more": False}
            assert await look(hub, "sn-cert-read", value=value) == (200, nothing)
        # A pseudonymised address is found by its pseudonym only.
        assert await found(hub, "sn-cert-read", VICTIM) == {}
        shown = {o["id"]: o for o in await read_all(hub, "region-west-africa", "sn-cert-read")}
        pseudonym = shown[phish["id"]]["pattern"].split("'")[1]
        assert pseudonym.endswith("@pseudonymised.invalid") and VICTIM not in pseudonym
        assert phish["id"] in await found(hub, "sn-cert-read", pseudonym)


async def test_a_url_on_an_ipv6_host_is_found_with_its_brackets(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    # Without its brackets `http://[2001:db8::1]:8080/x` reads as `http://2001:db8::1:8080/x`,
    # the same text as `http://[2001:db8::1:8080]/x`: a URL on another host.
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}."
    ) as hub:
        ng = member_identity(hub, "ng-cert")
        gate = indicator(ng, "[url:value = 'http://[2001:DB8::1]:8080/x']", TLP2["green"])
        await submit(hub, "ng-cert-submit", [gate])
        reader = "gh-cert-read"
        hit = (await found(hub, reader, "http://[2001:db8::1]:8080/x"))[gate["id"]]
        assert hit["matched"][0]["value"] == "http://[2001:db8::1]:8080/x", hit
        assert await found(hub, reader, "http://[2001:db8::1:8080]/x") == {}
        assert gate["id"] in await found(hub, reader, "2001:db8::1")


async def test_wrong_parameters_get_a_400_naming_them(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}."
    ) as hub:
        reader = "gh-cert-read"
        for params, named in (
            ({}, "value"),
            ({"value": "  "}, "value"),
            ({"value": "x" * 3000}, "value"),
            ({"value": "example.org", "kind": "ipv4"}, "value"),
            ({"value": "abc", "kind": "sha256"}, "value"),
            ({"value": "word " * 17, "kind": "text"}, "value"),
            ({"value": "1.2.3.4", "kind": "color"}, "kind"),
            ({"value": "1.2.3.4", "limit": "0"}, "limit"),
            ({"value": "1.2.3.4", "limit": "many"}, "limit"),
            ({"value": "1.2.3.4", "colour": "red"}, "colour"),
        ):
            status, body = await look(hub, reader, **params)
            assert status == 400, (params, body)
            assert body["http_status"] == "400" and body["title"], body
            assert body["description"].startswith(f"{named}:"), body
            assert body["details"] == {"parameter": named}, body
        status, body = await look(hub, None, value="1.2.3.4")
        assert status == 401 and body["http_status"] == "401"
        # Text that FTS5 would read as its own syntax is a phrase.
        assert await found(hub, reader, 'NEAR(" OR *', kind="text") == {}
