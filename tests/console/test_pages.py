"""The console's pages as an analyst uses them, against a real hub: the collections and what
arrived lately (newest first, paged, filtered), an object page (TLP first, sender, both
signatures checked and their keys named, versions, references both ways), the JSON of a
version, and the size of every page on a slow link."""

from __future__ import annotations

import gzip
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import orjson
import pytest

from connectors.client import MemberKey
from tests.console.client import Browser
from tests.hubs import (
    member_identity,
    read_all,
    running_hub,
    submit,
    with_member_key,
)
from tests.stixdata import TLP2, incident_report, indicator

PAGE_LIMIT = 100 * 1024  # bytes of HTML, before compression
OBJECT_LINK = re.compile(r'href="/console/objects/([a-z0-9-]+--[0-9a-f-]{36})"')


def listed(text: str) -> list[str]:
    return OBJECT_LINK.findall(text)


def main_of(text: str) -> str:
    return text.split("<main>", 1)[1]


async def every_page(browser: Browser, path: str) -> list[str]:
    """The object ids of a collection list, page after page ("Older"), in order."""
    ids: list[str] = []
    while True:
        answer = await browser.get(path)
        assert answer.status == 200, answer.text
        ids += listed(answer.text)
        older = re.search(r'<a rel="next" href="([^"]+)"', answer.text)
        if older is None:
            return ids
        path = path.split("?")[0] + older.group(1).replace("&amp;", "&")


async def test_an_analyst_browses_the_collections_and_opens_an_object(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    key = MemberKey.generate()
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        adjust=with_member_key("ng-cert", key),
    ) as hub:
        ng = member_identity(hub, "ng-cert")
        identity, incident, ind, sighting = incident_report(ng, "ngCERT", TLP2["green"])
        signed = [key.sign(o) for o in (identity, incident, ind, sighting)]
        assert (await submit(hub, "ng-cert-submit", signed)).success_count == 4
        modified = (datetime.now(UTC) + timedelta(seconds=1)).isoformat(timespec="milliseconds")
        later = key.sign({**ind, "modified": modified.replace("+00:00", "Z"), "confidence": 80})
        assert (await submit(hub, "ng-cert-submit", [later])).success_count == 1
        bulk = [indicator(ng, f"[domain-name:value = 'c2-{n}.example']") for n in range(55)]
        assert (await submit(hub, "ng-cert-submit", bulk)).success_count == 55

        browser = Browser(hub)
        await browser.log_in("gh-cert-read")
        home = await browser.get("/console/")
        assert "West Africa feed" in home.text and "East Africa" not in home.text
        assert len(home.text.encode()) < PAGE_LIMIT

        feed = "/console/collections/region-west-africa/"
        ids = await every_page(browser, feed)
        # Newest first, each object once (its latest version), nothing twice across pages.
        expected = [o["id"] for o in reversed(bulk)] + [ind["id"], sighting["id"], incident["id"]]
        assert ids[: len(expected)] == expected
        assert len(ids) == len(set(ids))
        taxii = {o["id"] for o in await read_all(hub, "region-west-africa", "gh-cert-read")}
        assert set(ids) == taxii

        async def filtered(query: str) -> tuple[int, list[str]]:
            answer = await browser.get(feed + query)
            return answer.status, listed(answer.text)

        assert await filtered("?type=sighting") == (200, [sighting["id"]])
        assert await filtered("?type=incident&tlp=green") == (200, [incident["id"]])
        assert await filtered("?tlp=amber") == (200, [])
        assert await filtered("?since=2999-01-01") == (200, [])
        status, since_today = await filtered("?since=2000-01-01&type=incident")
        assert (status, since_today) == (200, [incident["id"]])
        bad = await browser.get(feed + "?type=Not%20a%20type")
        assert bad.status == 400 and "is not a STIX type" in bad.text

        page = await browser.get(f"/console/objects/{ind['id']}")
        assert page.status == 200
        body = main_of(page.text)
        # TLP is the first thing on the page, as FIRST writes it, in its colour class.
        first_badge = re.search(r'<span class="(tlp [^"]+)">([^<]+)</span>', body)
        assert first_badge and first_badge.groups() == ("tlp tlp-green", "TLP:GREEN")
        assert body.index("TLP:GREEN") < body.index("<h1>")
        assert "ngCERT, Nigeria (demo) (ng-cert)" in body
        async with (
            aiohttp.ClientSession() as http,
            http.get(hub.base_url + "/.well-known/jwks.json") as r,
        ):
            (hub_kid,) = [k["kid"] for k in (await r.json(content_type=None))["keys"]]
        assert f"valid, key {hub_kid}" in body
        assert f"valid, key {key.kid}" in body
        assert '"confidence"' not in body and "<dt>confidence</dt>" in body  # the latest version
        versions = body.split("Versions</h2>", 1)[1]
        assert versions.count("<li>") == 2 and "?version=" in versions
        refers = body.split("Refers to</h2>", 1)[1].split("<h2>", 1)[0]
        assert listed(refers) == [identity["id"]]
        referred = body.split("Referred to by</h2>", 1)[1].split("<h2>", 1)[0]
        assert listed(referred) == [sighting["id"]]

        # The earlier version, from the versions list; and its JSON, as TAXII delivers it.
        earlier = re.search(r'href="\?version=([0-9]+)"', versions)
        assert earlier
        old = await browser.get(f"/console/objects/{ind['id']}?version={earlier.group(1)}")
        assert old.status == 200 and "an earlier version" in old.text
        assert "<dt>confidence</dt>" not in old.text
        download = await browser.get(f"/console/objects/{ind['id']}/json")
        assert download.headers["Content-Type"].startswith("application/stix+json")
        (delivered,) = await read_all(hub, "region-west-africa", "gh-cert-read", id=ind["id"])
        assert orjson.loads(download.text) == delivered

        # A tampered copy would say so: the same check as `cirt-hub verify`, on this page.
        sighting_page = await browser.get(f"/console/objects/{sighting['id']}")
        assert f"valid, key {hub_kid}" in sighting_page.text


async def test_every_page_stays_small_on_a_slow_link(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}."
    ) as hub:
        ng = member_identity(hub, "ng-cert")
        huge = {
            **indicator(ng, "[domain-name:value = 'big.example']", name="a large report"),
            "description": "x" * 400_000,
            "labels": [f"label-{n}-{'y' * 200}" for n in range(300)],
        }
        many = [indicator(ng, f"[domain-name:value = 'c2-{n}.example']") for n in range(60)]
        assert (await submit(hub, "ng-cert-submit", [huge, *many])).success_count == 61
        browser = Browser(hub, "fr")
        login = await browser.get("/console/login")
        sizes = {
            "/console/login": (len(login.text.encode()), len(gzip.compress(login.text.encode())))
        }
        await browser.log_in("gh-cert-read")
        for path in (
            "/console/",
            "/console/collections/region-west-africa/",
            "/console/alerts/",
            f"/console/objects/{huge['id']}",
            f"/console/objects/{many[0]['id']}",
            f"/console/objects/indicator--{uuid.uuid4()}",
        ):
            answer = await browser.get(path, headers={"Accept-Encoding": "identity"})
            assert answer.status in (200, 404), path
            size = len(answer.text.encode())
            sizes[path] = (size, len(gzip.compress(answer.text.encode())))
            assert size < PAGE_LIMIT, (path, size)
            assert "http://" not in answer.text and "https://" not in answer.text, path
        css = await browser.get("/console/console.css")
        sizes["console.css"] = (len(css.text.encode()), len(gzip.compress(css.text.encode())))
        for path, (size, packed) in sizes.items():
            print(f"console page {path}: {size} bytes, {packed} bytes gzip")
        big = await browser.get(f"/console/objects/{huge['id']}")
        assert "caractères de plus dans le JSON" in big.text  # cut, and says where the rest is


pytestmark = pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)
