"""The console's search in headless Debian Chromium against the real server: an analyst types
an address into the header's search box on the collections page and reads, in English then in
French, the indicator whose network holds it and the sighting of the report's indicator, each
with its TLP badge and a link to its page; the same without JavaScript; at 360 px and desktop
width (screenshots console-search-en/-fr, as tests/e2e/test_console.py takes them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.browser import browser_page
from tests.e2e.test_console import ARTIFACTS, shoot
from tests.hubs import RunningHub, member_identity, submit
from tests.stixdata import TLP2, incident_report, indicator

pytestmark = pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)


async def test_an_analyst_asks_whether_an_address_was_seen(hub: RunningHub, tmp_path: Path) -> None:
    ng = member_identity(hub, "ng-cert")
    report = incident_report(ng, "ngCERT", TLP2["green"])  # 203.0.113.45, sighted
    network = indicator(ng, "[ipv4-addr:value = '203.0.113.0/24']", TLP2["amber"], "C2 network")
    other = indicator(ng, "[ipv4-addr:value = '198.51.100.7']", TLP2["green"], "Scanner")
    assert (await submit(hub, "ng-cert-submit", [*report, network, other])).success_count == 6

    async with browser_page(tmp_path / "chromium") as page:

        async def submit_form(script: str) -> None:
            await page.evaluate("window.previousPage = true;" + script)
            await page.wait_for("!window.previousPage && document.readyState === 'complete'")

        await page.goto(hub.base_url + "/console/login")
        password = json.dumps(hub.password("ng-cert-read"))
        await submit_form(
            "document.getElementById('username').value = 'ng-cert-read';"
            f"document.getElementById('password').value = {password};"
            "document.querySelector('form.login').submit()"
        )
        assert await page.evaluate("location.pathname") == "/console/"
        await submit_form(
            "document.querySelector('form.search input[name=q]').value = '203.0.113.45';"
            "document.querySelector('form.search').submit()"
        )
        assert await page.evaluate("location.pathname") == "/console/search"
        items = await page.evaluate(
            "[...document.querySelectorAll('.results li')].map(li => li.innerText)"
        )
        text = "\n".join(items)
        assert "C2 server of the ransomware" in text and "C2 network" in text
        assert "Scanner" not in text
        assert any(i.startswith("TLP:AMBER") and "203.0.113.0/24 contains it" in i for i in items)
        assert any("refers to what matched" in i for i in items)  # the sighting
        await shoot(page, "search-en")

        await submit_form("document.querySelector('button[value=fr]').click()")
        assert await page.evaluate("document.documentElement.lang") == "fr"
        text = await page.evaluate("document.querySelector('main').innerText")
        assert "avons-nous déjà vu ?" in text and "203.0.113.0/24 le contient" in text
        await shoot(page, "search-fr")

        # Without JavaScript: the same answer from the page's own form.
        await page.send("Emulation.setScriptExecutionDisabled", value=True)
        await page.send("Page.reload")
        await page.send("Emulation.setScriptExecutionDisabled", value=False)
        await page.wait_for("document.readyState === 'complete'")
        assert "203.0.113.0/24 le contient" in await page.evaluate("document.body.innerText")

        await page.evaluate(
            "document.querySelector('.results a').click(); window.previousPage = true"
        )
        await page.wait_for("!window.previousPage && document.readyState === 'complete'")
        assert (await page.evaluate("location.pathname")).startswith("/console/objects/")
    assert (ARTIFACTS / "console-search-fr.png").stat().st_size > 10_000
