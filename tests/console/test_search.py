"""The console's search box ("have we seen this?") as an analyst uses it, against a real hub:
from the header of every page, without script; results with their TLP badge, how they
matched, where and when they were shared and a link to their page, in English and French;
only what the reader may read (another member's TLP:AMBER answers as a value never shared)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.console.client import Browser
from tests.console.test_pages import listed, main_of
from tests.hubs import member_identity, running_hub, submit
from tests.stixdata import TLP2, incident_report, indicator

SHARING = {"ng-cert": {"recipients": {"amber": ["member:gh-cert"]}}}


def search(value: str, **more: str) -> str:
    return "/console/search?" + urlencode({"q": value, **more})


@pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)
async def test_an_analyst_searches_from_any_page(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}.", sharing=SHARING
    ) as hub:
        ng = member_identity(hub, "ng-cert")
        report = incident_report(ng, "ngCERT", TLP2["green"])  # 203.0.113.45 and a sighting
        network = indicator(ng, "[ipv4-addr:value = '203.0.113.0/24']", name="C2 network")
        amber = indicator(ng, "[domain-name:value = 'amber.example']", TLP2["amber"], "amber")
        await submit(hub, "ng-cert-submit", [*report, network, amber])
        reader, hostile = Browser(hub), Browser(hub, language="fr")
        assert (await reader.get(search("203.0.113.45"))).location == "/console/login"
        await reader.log_in("gh-cert-read")
        await hostile.log_in("sn-cert-read")

        home = await reader.get("/console/")
        form = re.search(r'<form class="search" method="get" action="([^"]+)"', home.text)
        assert form and form.group(1) == "/console/search" and 'name="q"' in home.text

        answer = await reader.get(search("203.0.113.45"))
        assert answer.status == 200
        body = main_of(answer.text)
        indicator_id, sighting_id = report[2]["id"], report[3]["id"]
        assert {indicator_id, sighting_id, network["id"]} <= set(listed(body))
        item = body.split(f'href="/console/objects/{network["id"]}"')[0].rsplit("<li>", 1)[1]
        assert 'class="tlp tlp-green">TLP:GREEN<' in item
        entry = body.split(f'href="/console/objects/{network["id"]}"')[1].split("</li>", 1)[0]
        assert "203.0.113.0/24 contains it" in entry and "West Africa" in entry
        assert "shared by" in entry and "<time datetime=" in entry
        assert "refers to what matched" in body

        # French, and the other member's AMBER as for a value never shared.
        answer = await hostile.get(search("amber.example"))
        assert answer.status == 200 and 'lang="fr"' in answer.text
        assert "Rien de ce que vous pouvez lire ne le mentionne." in answer.text
        assert amber["id"] not in answer.text
        never = await hostile.get(search("never.example"))
        assert main_of(never.text).replace("never", "amber") == main_of(answer.text)
        assert amber["id"] in listed(main_of((await reader.get(search("amber.example"))).text))

        # A value that is not of the kind chosen: said on the page, in the reader's language.
        wrong = await hostile.get(search("amber.example", kind="ipv4"))
        assert wrong.status == 400
        assert "ne peut pas être recherché comme ipv4" in wrong.text
