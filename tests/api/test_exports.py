"""Exports (`GET /api/v1/exports/{collection}`) through a real hub: the shared test data as
blocklists, CSV, Suricata rules (checked by Suricata's own parser) and a STIX bundle; a
reader never gets what it may not read over TAXII (another member's TLP:AMBER or TLP:RED,
another region's feed, a revoked, superseded, expired or not yet valid indicator), sids
stay the same across exports, and wrong options get a 400 that says which."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from hub.api.exports import EXPORTS
from hub.export.formats import COMPLETE
from hub.export.suricata import SID_COUNT, SID_FIRST
from hub.signing.sources import Credentials
from tests.hubs import RunningHub, read_all, running_hub, submit
from tests.stixdata import TLP2, indicator, shared_objects

pytestmark = [
    pytest.mark.parametrize("bus_url", ["embedded"], indirect=True),
    pytest.mark.timeout(300),
]

SHARED = (
    "oasis-cti-documentation-examples/apt1.json",
    "oasis-cti-documentation-examples/poisonivy.json",
    "oasis-cti-documentation-examples/indicator-for-malicious-url.json",
    "oasis-cti-documentation-examples/malware-indicator-for-file-hash.json",
    "oasis-cti-documentation-examples/sighting-of-an-indicator.json",
    "oasis-cti-documentation-examples/using-granular-markings.json",
    "misp-stix-converted/test_events_collection_2_misp2stix21.json",
    "misp-stix-converted/test_objects_collection_1_misp2stix21.json",
)
ANALYST = "ke-cirt-analyst"  # a second reader of KE-CIRT, not named by the TLP:RED rule
SURICATA_YAML = """%YAML 1.1
---
vars:
  address-groups:
    HOME_NET: "any"
    EXTERNAL_NET: "any"
logging:
  default-log-level: info
  outputs:
    - console:
        enabled: yes
app-layer:
  protocols:
    tls:
      enabled: yes
    http:
      enabled: yes
    dns:
      tcp:
        enabled: yes
      udp:
        enabled: yes
"""


@pytest.fixture
async def hub(bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str):
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        extra_readers={ANALYST: "ke-cirt"},
    ) as running:
        yield running


async def export(hub: RunningHub, username: str, alias: str, **params: str) -> tuple[int, bytes]:
    """(status, body) of an export as `username`."""
    auth = {"Authorization": Credentials(username, hub.password(username)).header()}
    url = f"{hub.base_url}/api/v1/exports/{alias}"
    async with (
        aiohttp.ClientSession() as session,
        asyncio.timeout(60),
        session.get(url, params=params, headers=auth) as response,
    ):
        return response.status, await response.read()


async def exported(hub: RunningHub, username: str, alias: str, **params: str) -> str:
    status, body = await export(hub, username, alias, **params)
    assert status == 200, body
    return body.decode()


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def trailer(text: str) -> str:
    last = text.splitlines()[-1]
    assert last.startswith(COMPLETE), f"no closing line: {last!r}"
    return last


def marked(objects: list[dict[str, Any]], level: str) -> list[dict[str, Any]]:
    """The objects with `level` wherever they carry no marking (as a member would send)."""
    return [
        o
        if o["type"] == "marking-definition" or o.get("object_marking_refs")
        else {**o, "object_marking_refs": [TLP2[level]]}
        for o in objects
    ]


def suricata_check(rules: str, folder: Path) -> str:
    """Suricata's own verdict on `rules` (its output); fails the test unless all load."""
    binary = shutil.which("suricata")
    assert binary, "Debian's suricata is not installed: bash deploy/test.sh installs it"
    (folder / "rules").write_text(rules)
    (folder / "suricata.yaml").write_text(SURICATA_YAML)
    (folder / "log").mkdir(exist_ok=True)
    done = subprocess.run(
        [binary, "-T", "-c", "suricata.yaml", "-S", "rules", "-l", "log"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    return said


@pytest.fixture
async def shared(hub: RunningHub) -> AsyncIterator[RunningHub]:
    """ngCERT has posted the shared test data, TLP:GREEN (to West Africa)."""
    for source in SHARED:
        await submit(hub, "ng-cert-submit", marked(shared_objects(source), "green"))
    yield hub


async def test_the_shared_data_in_every_format(shared: RunningHub, tmp_path: Path) -> None:
    hub, reader, feed = shared, "gh-cert-read", "region-west-africa"
    taxii_ids = {o["id"] for o in await read_all(hub, feed, reader)}

    ips = await exported(hub, reader, feed, format="txt", kind="ipv4")
    assert {"223.166.0.0/15", "219.76.208.163", "113.10.246.30"} <= set(lines(ips))
    assert all(re.fullmatch(r"[0-9./]+", line) for line in lines(ips))
    assert len(lines(ips)) == len(set(lines(ips)))  # each value once
    domains = set(lines(await exported(hub, reader, feed, format="txt", kind="domain")))
    assert {"hugesoft.org", "www.webserver.dynssl.com", "circl.lu"} <= domains

    table = await exported(hub, reader, feed, format="csv")
    rows = list(csv.DictReader(io.StringIO("\n".join(lines(table)))))
    by_value = {row["value"]: row for row in rows}
    assert by_value["001dd76872d80801692ff942308c64e6"]["kind"] == "md5"
    assert by_value["http://x4z9arb.cn/4712/"]["kind"] == "url"
    sha = "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"
    assert by_value[sha]["kind"] == "sha256"
    assert {row["tlp"] for row in rows} == {"TLP:GREEN"}
    assert {row["source"] for row in rows} == {"ng-cert"}
    assert {row["object_id"] for row in rows} <= taxii_ids
    # [file:name = ...], [email-message:from_ref.value = ...] and a MATCHES give no value.
    skipped = int(re.search(r"(\d+) indicators skipped", trailer(table)).group(1))
    assert skipped >= 3

    rules = await exported(hub, reader, feed, format="suricata")
    said = suricata_check(rules, tmp_path)
    loaded = re.search(r"(\d+) rules successfully loaded, (\d+) rules failed", said)
    assert loaded and int(loaded.group(1)) == len(lines(rules)) and loaded.group(2) == "0", said
    assert re.search(r"\b\d+ values with no Suricata rule", trailer(rules))

    observables = await exported(hub, reader, feed, format="csv", types="domain-name,ipv4-addr")
    rows = list(csv.DictReader(io.StringIO("\n".join(lines(observables)))))
    assert "circl.lu" in {row["value"] for row in rows}
    assert {row["object_id"].split("--")[0] for row in rows} == {"domain-name", "ipv4-addr"}

    bundle = orjson.loads(await exported(hub, reader, feed, format="stix"))
    assert bundle["type"] == "bundle"
    ids = [o["id"] for o in bundle["objects"]]
    assert ids and set(ids) <= taxii_ids and len(ids) == len(set(ids))
    assert {o["type"] for o in bundle["objects"]} <= {
        "indicator",
        "observed-data",
        "domain-name",
        "ipv4-addr",
        "file",
        "email-addr",
    }


async def test_a_reader_gets_only_what_it_may_read_and_what_is_current(hub: RunningHub) -> None:
    rw = hub.settings.federation.member("rw-csirt").identity
    green = indicator(rw, "[ipv4-addr:value = '198.51.100.1']", TLP2["green"])
    amber = indicator(rw, "[ipv4-addr:value = '198.51.100.2']", TLP2["amber"])
    red = indicator(rw, "[ipv4-addr:value = '198.51.100.3']", TLP2["red"])
    revoked = indicator(rw, "[ipv4-addr:value = '198.51.100.4']", TLP2["green"])
    expired = {
        **indicator(rw, "[ipv4-addr:value = '198.51.100.5']", TLP2["green"]),
        "valid_until": "2026-11-30T00:00:00Z",
    }
    future = {
        **indicator(rw, "[ipv4-addr:value = '198.51.100.6']", TLP2["green"]),
        "valid_from": "2999-01-01T00:00:00Z",
    }
    old = indicator(rw, "[ipv4-addr:value = '198.51.100.7']", TLP2["green"])
    await submit(hub, "rw-csirt-submit", [green, amber, red, revoked, expired, future, old])
    between = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    later = "2026-12-01T08:00:00.000Z"
    await submit(
        hub,
        "rw-csirt-submit",
        [
            {**revoked, "modified": later, "revoked": True},
            {**old, "modified": later, "pattern": "[ipv4-addr:value = '198.51.100.8']"},
        ],
    )
    # A hostile member of the other region posts to its own feed what would break a file.
    ng = hub.settings.federation.member("ng-cert").identity
    await submit(
        hub,
        "ng-cert-submit",
        [
            indicator(ng, "[ipv4-addr:value = '192.0.2.9']", TLP2["green"]),
            indicator(ng, "[domain-name:value = '=cmd|calc.example']", TLP2["clear"]),
        ],
    )

    def ips(text: str) -> set[str]:
        return set(lines(text))

    # rw-csirt's GREEN goes to every member: what is current, in its latest version only.
    for reader, feed in (
        ("ke-cirt-read", "region-east-africa"),
        ("ng-cert-read", "region-west-africa"),
    ):
        found = ips(await exported(hub, reader, feed, format="txt", kind="ipv4"))
        assert found & {f"198.51.100.{n}" for n in range(9)} == {"198.51.100.1", "198.51.100.8"}
    # `since`: what was added after that time (the new version of `old`; `revoked` is not current).
    found = ips(
        await exported(
            hub, "ke-cirt-read", "region-east-africa", format="txt", kind="ipv4", since=between
        )
    )
    assert found == {"198.51.100.8"}
    # AMBER goes to East Africa's member feeds; RED to the one account named.
    member_ke = ips(
        await exported(hub, "ke-cirt-read", "member-ke-cirt", format="txt", kind="ipv4")
    )
    assert {"198.51.100.2", "198.51.100.3"} <= member_ke
    analyst = ips(await exported(hub, ANALYST, "member-ke-cirt", format="txt", kind="ipv4"))
    assert "198.51.100.2" in analyst and "198.51.100.3" not in analyst
    # Other regions' and members' collections are not there for a reader, as over TAXII.
    for feed in ("member-ke-cirt", "region-east-africa", "member-rw-csirt"):
        status, body = await export(hub, "ng-cert-read", feed, format="csv")
        assert status == 404, body
        assert orjson.loads(body)["http_status"] == "404"
    status, _ = await export(hub, "ke-cirt-submit", "member-ke-cirt", format="csv")
    assert status in (403, 404)
    # What no reader's tool should ever take as a value: never written, counted.
    public = await exported(hub, "ke-cirt-read", "public", format="csv")
    assert "=cmd" not in public and "calc.example" not in public
    assert re.search(r"\b1 malformed values left out", trailer(public))
    # TLP at most, and confidence at least.
    assert "198.51.100.2" not in ips(
        await exported(
            hub, "ke-cirt-read", "member-ke-cirt", format="txt", kind="ipv4", tlp="green"
        )
    )
    assert "198.51.100.2" in ips(
        await exported(
            hub, "ke-cirt-read", "member-ke-cirt", format="txt", kind="ipv4", tlp="amber"
        )
    )
    # TLP 1.0's WHITE is CLEAR; `amber+strict` arrives as `amber strict` when not escaped.
    for level, wanted in (("white", set()), ("amber strict", {"198.51.100.1", "198.51.100.8"})):
        found = ips(
            await exported(
                hub, "ke-cirt-read", "region-east-africa", format="txt", kind="ipv4", tlp=level
            )
        )
        assert found & {f"198.51.100.{n}" for n in range(9)} == wanted
    assert (
        ips(
            await exported(
                hub,
                "ke-cirt-read",
                "region-east-africa",
                format="txt",
                kind="ipv4",
                min_confidence="1",
            )
        )
        == set()
    )


async def test_sids_stay_the_same_across_exports(shared: RunningHub, tmp_path: Path) -> None:
    hub, reader, feed = shared, "gh-cert-read", "region-west-africa"

    def sids(text: str) -> dict[str, int]:
        found = {}
        for rule in lines(text):
            sid = int(re.search(r"\bsid:(\d+);", rule).group(1))
            assert SID_FIRST <= sid < SID_FIRST + SID_COUNT
            obj = re.search(r"cirt_hub_object ([a-z0-9-]+--[0-9a-f-]{36})", rule).group(1)
            found[f"{obj} {rule.split('(msg:', 1)[0]} {rule.split('msg:', 1)[1][:80]}"] = sid
        assert len(set(found.values())) == len(found)
        return found

    first = sids(await exported(hub, reader, feed, format="suricata"))
    ng = hub.settings.federation.member("ng-cert").identity
    await submit(
        hub, "ng-cert-submit", [indicator(ng, "[domain-name:value = 'new.example']", TLP2["green"])]
    )
    second = sids(await exported(hub, reader, feed, format="suricata"))
    assert len(second) == len(first) + 2  # DNS and TLS SNI
    assert {k: second[k] for k in first} == first


async def test_pseudonymised_values_export_as_pseudonyms(hub: RunningHub) -> None:
    gh = hub.settings.federation.member("gh-cert").identity
    await submit(
        hub,
        "gh-cert-submit",
        [indicator(gh, "[email-addr:value = 'victim@mail.example.org']", TLP2["green"])],
    )
    found = await exported(hub, "ng-cert-read", "region-west-africa", format="txt", kind="email")
    assert "victim" not in found
    assert [v for v in lines(found) if v.endswith("@pseudonymised.invalid")]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"format": "xml"}, "format='xml'"),
        ({}, "format=''"),
        ({"format": "txt"}, "add kind="),
        ({"format": "txt", "kind": "mac"}, "kind='mac'"),
        ({"format": "csv", "tlp": "purple"}, "tlp='purple'"),
        ({"format": "csv", "since": "yesterday"}, "since='yesterday'"),
        ({"format": "csv", "min_confidence": "101"}, "min_confidence='101'"),
        ({"format": "csv", "types": "Indicator"}, "'Indicator' is not a STIX object type"),
        ({"format": "csv", "limit": "10"}, "unsupported query parameter(s): limit"),
        ({"format": "csv", "types": ",".join(f"x-{n}" for n in range(65))}, "at most 64"),
    ],
)
async def test_wrong_options_say_what_is_wrong(
    hub: RunningHub, params: dict[str, str], words: str
) -> None:
    status, body = await export(hub, "gh-cert-read", "region-west-africa", **params)
    assert status == 400
    error = orjson.loads(body)
    assert error["http_status"] == "400" and words in error["description"], error


async def test_a_member_runs_two_exports_at_once_and_others_are_not_held_up(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        extra_readers={"rw-csirt-analyst": "rw-csirt"},
        stream_write_timeout=30.0,
        stream_buffer_bytes=16 * 1024,
    ) as hub:
        ke = hub.settings.federation.member("ke-cirt").identity
        sent = [
            indicator(ke, f"[ipv4-addr:value = '10.0.{n // 250}.{n % 250}']", TLP2["green"])
            for n in range(3_000)
        ]
        for start in range(0, len(sent), 1_000):
            assert (await submit(hub, "ke-cirt-submit", sent[start : start + 1_000])).success_count
        # Two exports by rw-csirt's reader that read nothing: clients with tiny buffers.
        host, port = "127.0.0.1", int(hub.base_url.rsplit(":", 1)[1])
        token = Credentials("rw-csirt-read", hub.password("rw-csirt-read")).header()
        stalled = []
        for _ in range(2):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect((host, port))
            sock.sendall(
                f"GET /api/v1/exports/region-east-africa?format=stix HTTP/1.1\r\nHost: {host}"
                f"\r\nAuthorization: {token}\r\nConnection: close\r\n\r\n".encode()
            )
            stalled.append(sock)
        slots = hub.app[EXPORTS]
        async with asyncio.timeout(30):
            while slots.running["rw-csirt"] < 2:
                await asyncio.sleep(0.05)
        # A third for the same member, by another of its accounts, waits its turn ...
        status, body = await export(hub, "rw-csirt-analyst", "region-east-africa", format="csv")
        assert status == 429, body
        assert "retry when one ends" in orjson.loads(body)["description"]
        # HEAD says what a GET would send without running an export (nor taking a slot).
        analyst = Credentials("rw-csirt-analyst", hub.password("rw-csirt-analyst")).header()
        async with (
            aiohttp.ClientSession() as http,
            http.head(
                f"{hub.base_url}/api/v1/exports/region-east-africa?format=csv",
                headers={"Authorization": analyst},
            ) as head,
        ):
            assert head.status == 200 and head.content_type == "text/csv", head.headers
            assert "region-east-africa-all.csv" in head.headers["Content-Disposition"]
            assert await head.read() == b""
        # ... while another member's export goes through.
        assert "10.0.11.249" in await exported(
            hub, "ke-cirt-read", "region-east-africa", format="txt", kind="ipv4"
        )
        for sock in stalled:
            sock.close()
        async with asyncio.timeout(30):
            while slots.running["rw-csirt"]:
                await asyncio.sleep(0.05)
        status, _ = await export(hub, "rw-csirt-analyst", "region-east-africa", format="csv")
        assert status == 200


async def test_a_url_on_an_ipv6_host_keeps_its_brackets(hub: RunningHub, tmp_path: Path) -> None:
    # Without its brackets `http://[2001:db8::1]:8080/x` reads as host `2001:db8::1:8080`:
    # another address, no port, and the same text as `http://[2001:db8::1:8080]/x`.
    ke = hub.settings.federation.member("ke-cirt").identity
    urls = ("http://[2001:db8::1]:8080/x", "http://[2001:DB8::1:8080]:80/x")
    await submit(
        hub,
        "ke-cirt-submit",
        [indicator(ke, f"[url:value = '{url}']", TLP2["green"]) for url in urls],
    )
    reader, feed = "ke-cirt-read", "region-east-africa"
    wanted = ["http://[2001:db8::1]:8080/x", "http://[2001:db8::1:8080]/x"]
    assert lines(await exported(hub, reader, feed, format="txt", kind="url")) == wanted
    rows = csv.DictReader(io.StringIO(await exported(hub, reader, feed, format="csv")))
    assert [row["value"] for row in rows if row["kind"] == "url"] == wanted
    rules = await exported(hub, reader, feed, format="suricata")
    hosts = re.findall(r'http\.host; content:"([^"]*)"', rules)
    assert hosts == ["2001:db8::1", "2001:db8::1:8080"], rules
    suricata_check(rules, tmp_path)
