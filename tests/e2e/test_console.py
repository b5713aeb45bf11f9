"""The analysts' console in headless Debian Chromium against the real server, in English and
French: log in, browse a feed, open an object, switch language; at a phone's 360 px and at
desktop width. Screenshots go to test-artifacts/; with CIRT_HUB_REFRESH_SCREENSHOTS=1 they
also replace the documentation's copies in docs/console/ (a test run leaves the tree as it was)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.console.test_alert_page import with_speakers
from tests.correlate.test_alerts import indicator as alert_indicator
from tests.correlate.test_alerts import settled
from tests.correlate.test_responses import RECIPIENTS, until
from tests.e2e.browser import Page, browser_page
from tests.hubs import RunningHub, member_identity, running_hub, submit
from tests.stixdata import TLP2, incident_report, indicator

ARTIFACTS = ROOT / "test-artifacts"
DOCS = ROOT / "docs" / "console"

pytestmark = pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)


async def shoot(page: Page, name: str) -> None:
    """Desktop and phone screenshots of the page as it is; the phone one needs no sideways
    scrolling."""
    await page.screenshot(ARTIFACTS / f"console-{name}.png", 1280, 800)
    await page.screenshot(ARTIFACTS / f"console-{name}-phone.png", 360, 740, mobile=True)
    assert await page.evaluate("document.documentElement.scrollWidth <= 360"), name
    await page.send("Emulation.clearDeviceMetricsOverride")
    if os.environ.get("CIRT_HUB_REFRESH_SCREENSHOTS") != "1":
        return
    DOCS.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-phone"):
        shutil.copy(ARTIFACTS / f"console-{name}{suffix}.png", DOCS / f"{name}{suffix}.png")


async def test_an_analyst_uses_the_console_in_english_and_french(
    hub: RunningHub, tmp_path: Path
) -> None:
    ng, gh = member_identity(hub, "ng-cert"), member_identity(hub, "gh-cert")
    identity, incident, ind, sighting = incident_report(ng, "ngCERT", TLP2["green"])
    assert (await submit(hub, "ng-cert-submit", [identity, incident, ind, sighting])).success_count
    more = [
        indicator(gh, "[domain-name:value = 'kit.example']", TLP2["green"], "Phishing kit host"),
        indicator(gh, "[ipv4-addr:value = '198.51.100.7']", TLP2["green"], "Scanner"),
    ]
    assert (await submit(hub, "gh-cert-submit", more)).success_count == 2

    async with browser_page(tmp_path / "chromium") as page:
        # The browser asks for French: the login page is French, and says so.
        await page.send(
            "Network.setExtraHTTPHeaders", headers={"Accept-Language": "fr-FR,fr;q=0.9"}
        )
        await page.send("Network.enable")
        await page.goto(hub.base_url + "/console/")
        assert await page.evaluate("location.pathname") == "/console/login"
        assert await page.evaluate("document.documentElement.lang") == "fr"
        assert "Se connecter" in await page.evaluate("document.body.innerText")
        await shoot(page, "login-fr")

        async def submit_form(script: str) -> None:
            await page.evaluate("window.previousPage = true;" + script)
            await page.wait_for("!window.previousPage && document.readyState === 'complete'")

        await submit_form(
            "document.getElementById('username').value = 'gh-cert-read';"
            "document.getElementById('password').value = 'wrong';"
            "document.querySelector('form.login').submit()"
        )
        error = await page.evaluate("document.querySelector('.error').textContent")
        assert "Compte inconnu" in error
        password = json.dumps(hub.password("gh-cert-read"))
        await submit_form(
            "document.getElementById('username').value = 'gh-cert-read';"
            f"document.getElementById('password').value = {password};"
            "document.querySelector('form.login').submit()"
        )
        assert await page.evaluate("location.pathname") == "/console/"
        text = await page.evaluate("document.body.innerText")
        assert "Vos collections" in text and "Flux West Africa" in text
        await shoot(page, "collections-fr")

        # Switch to English with the page's own button: remembered from then on.
        await submit_form("document.querySelector('button[value=en]').click()")
        assert await page.evaluate("document.documentElement.lang") == "en"
        await page.goto(hub.base_url + "/console/collections/region-west-africa/")
        assert await page.evaluate("document.documentElement.lang") == "en"
        first_item = await page.evaluate("document.querySelector('.objects li').innerText")
        assert "TLP:GREEN" in first_item and "Scanner" in first_item  # newest first
        await shoot(page, "feed-en")

        await page.goto(hub.base_url + f"/console/objects/{ind['id']}")
        text = await page.evaluate("document.querySelector('main').innerText")
        assert text.startswith("TLP:GREEN") and "C2 server of the ransomware" in text
        assert "ngCERT, Nigeria (demo) (ng-cert)" in text and "valid, key" in text
        await shoot(page, "object-en")

        await submit_form("document.querySelector('button[value=fr]').click()")
        assert await page.evaluate("document.documentElement.lang") == "fr"
        text = await page.evaluate("document.querySelector('main').innerText")
        assert text.startswith("TLP:GREEN") and "Partagé par" in text and "valide, clé" in text
        await shoot(page, "object-fr")
        # Reading works without JavaScript: the same page with scripts off shows the same.
        await page.send("Emulation.setScriptExecutionDisabled", value=True)
        await page.send("Page.reload")
        await page.send("Emulation.setScriptExecutionDisabled", value=False)
        await page.wait_for("document.readyState === 'complete'")
        assert "Partagé par" in await page.evaluate("document.body.innerText")
    assert (ARTIFACTS / "console-object-fr.png").stat().st_size > 10_000


async def test_an_analyst_responds_to_an_alert_in_french(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    """The alert's page in French: the counts, and ngCERT's acknowledgement, named, sent with
    the page's own form by an account that may also submit."""
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}.", adjust=with_speakers
    ) as hub:
        for member in RECIPIENTS:
            report = alert_indicator(member_identity(hub, member))
            assert (await submit(hub, f"{member}-submit", [report])).success_count == 1
        alert = (await settled(hub, "ng-cert-read", 1))[-1]

        async with browser_page(tmp_path / "chromium") as page:
            await page.send(
                "Network.setExtraHTTPHeaders", headers={"Accept-Language": "fr-FR,fr;q=0.9"}
            )
            await page.send("Network.enable")

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
            await page.goto(hub.base_url + f"/console/objects/{alert['id']}")
            text = await page.evaluate("document.querySelector('main').innerText")
            assert "3 membres dans 3 pays" in text and "encore répondu" in text
            assert "Vu ici aussi" in text and "Envoyer la réponse" in text

            await submit_form(
                "document.querySelector('input[name=state][value=acknowledged]').checked = true;"
                "document.getElementById('note').value = 'blocage à la frontière';"
                "document.querySelector('form.respond input[name=named]').checked = true;"
                "document.querySelector('form.respond').submit()"
            )
            notice = await page.evaluate("document.querySelector('.notice').innerText")
            assert "Votre réponse est envoyée" in notice

            await until(hub, "ng-cert", lambda f: f["responses"]["acknowledged"] == 1)
            await page.goto(hub.base_url + f"/console/objects/{alert['id']}")
            text = await page.evaluate("document.querySelector('.alert-responses').innerText")
            assert "Pris en compte\t1" in text and "la première prise en compte" in text
            assert "ngCERT, Nigeria (demo)" in text and "encore répondu" not in text
            # Named, so its points of contact are given to the alert's recipients.
            assert "Points de contact" in text and "incident@ngcert.example" in text
            await page.evaluate("document.querySelector('.alert-responses').scrollIntoView()")
            await shoot(page, "alert-fr")

            # A mitigation from the same page, listed once routed, its signature checked.
            await submit_form(
                "document.getElementById('mitigation-name').value = 'Bloquer le domaine';"
                "document.getElementById('mitigation-description').value = 'Réponse NXDOMAIN.';"
                "document.querySelector('form.mitigate').submit()"
            )
            notice = await page.evaluate("document.querySelector('.notice').innerText")
            assert "atténuation a été envoyée" in notice
            for _ in range(100):
                await page.goto(hub.base_url + f"/console/objects/{alert['id']}")
                text = await page.evaluate("document.querySelector('.alert-mitigations').innerText")
                if "Bloquer le domaine" in text:
                    break
                await asyncio.sleep(0.2)
            assert "Bloquer le domaine" in text and "Réponse NXDOMAIN." in text, text
            assert "Partagée par ngCERT, Nigeria (demo) (ng-cert)" in text and "valide, clé" in text
            await page.evaluate("document.querySelector('.alert-mitigations').scrollIntoView()")
            await shoot(page, "alert-mitigations-fr")
    assert (ARTIFACTS / "console-alert-fr.png").stat().st_size > 10_000
    assert (ARTIFACTS / "console-alert-mitigations-fr.png").stat().st_size > 10_000
