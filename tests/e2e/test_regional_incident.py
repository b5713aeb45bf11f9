"""A regional incident, end to end (issue 25), on one embedded hub over real HTTP, a real SMTP
server and headless Chromium: analysts subscribe to new alerts; three members report the same
C2 domain and the alert goes out; each subscriber gets one e-mail in its language; two members
acknowledge (one named), the named one shares a mitigation, the third sights the indicator;
every recipient's alert shows the counts and names only the member that offered its name; the
alert's page, in French, shows it all."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from hub.correlate.alerts import ALERT_PROPERTY
from hub.correlate.responses import sighting_of
from hub.federation import Federation
from tests.correlate.test_alerts import indicator, settled, with_rule
from tests.correlate.test_mitigations import mitigate
from tests.correlate.test_responses import RECIPIENTS, respond, until
from tests.e2e.browser import browser_page
from tests.e2e.test_console import ARTIFACTS, shoot
from tests.hubs import RunningHub, member_identity, running_hub, submit, visible_to
from tests.notify.servers import password_file, smtp_server
from tests.notify.test_subscriptions import configured, subject, subscribe, text
from tests.notify.test_subscriptions import until as until_true

pytestmark = pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)

# Who subscribes, at which address, and the language its member's notifications are in.
SUBSCRIBERS = {"ng-cert-read": "soc@ngcert.example", "sn-cert-read": "veille@certsn.example"}
LANGUAGES = {"sn-cert": "fr"}
MITIGATION = {"name": "Sinkhole the C2 domain", "description": "Answer NXDOMAIN.", "tlp": "green"}


def quick_alerts(notify: dict[str, Any]) -> Any:
    """Three members in three countries within an hour make an alert; this `notify` block;
    CERT-SN's notifications in French."""

    def adjust(federation: Federation) -> Federation:
        federation = with_rule(min_members=3, min_countries=3, window="PT1H")(federation)
        return configured(notify, LANGUAGES)(federation)

    return adjust


async def about_the_alert(hub: RunningHub, member: str) -> str:
    """Everything `member`'s reader can read about its alert, as delivered over TAXII: the
    alert, and every note and sighting."""
    found = await visible_to(hub, f"{member}-read")
    kept = [
        o
        for objects in found.values()
        for o in objects
        if o["type"] in ("note", "sighting") or o["id"].startswith("grouping--")
    ]
    return orjson.dumps(kept).decode()


async def test_a_regional_incident_from_the_reports_to_the_alert_page(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    with smtp_server(tmp_path / "smtp") as box:
        notify = {
            "smtp": box.notify_block(password_file(tmp_path)),
            "console_url": "https://hub.example",
        }
        async with running_hub(
            bus_url,
            tmp_path / "data",
            demo_secrets,
            topic_prefix=f"t{unique}.",
            adjust=quick_alerts(notify),
        ) as hub:
            federation = hub.settings.federation
            ng, gh, sn = (federation.member(m) for m in RECIPIENTS)

            # (1) Analysts of ngCERT (English) and CERT-SN (French) subscribe to new alerts.
            for username, address in SUBSCRIBERS.items():
                await subscribe(hub, username, kind="alerts", email=address)

            # (2) Three members in three countries report the same C2 domain: the alert goes
            # out, one to each recipient.
            reports = {m: indicator(member_identity(hub, m)) for m in RECIPIENTS}
            for member, report in reports.items():
                assert (await submit(hub, f"{member}-submit", [report])).success_count == 1
            alerts = {m: (await settled(hub, f"{m}-read", 1))[-1] for m in RECIPIENTS}
            for alert in alerts.values():
                assert alert[ALERT_PROPERTY]["members"] == 3
                assert alert[ALERT_PROPERTY]["countries"] == 3

            # (3) Each subscriber hears of it by e-mail, in its language, TLP in the subject.
            await until_true(lambda: len(box.messages) >= 2, "both subscribers e-mailed")
            (english,) = box.to(SUBSCRIBERS["ng-cert-read"])
            (french,) = box.to(SUBSCRIBERS["sn-cert-read"])
            assert subject(english).startswith("[TLP:AMBER] New major-incident alert: 3 members")
            assert subject(french).startswith(
                "[TLP:AMBER] Nouvelle alerte d\u2019incident majeur : 3 membres"
            )
            assert english["Content-Language"] == "en" and french["Content-Language"] == "fr"
            assert f"https://hub.example/console/objects/{alerts['ng-cert']['id']}" in text(english)
            assert f"https://hub.example/console/objects/{alerts['sn-cert']['id']}" in text(french)
            for told in (english, french):  # counts, never who
                for member in (ng, gh, sn):
                    said = text(told) + subject(told)
                    assert member.name not in said and member.identity not in said, member.id

            # (4) ngCERT acknowledges and offers its name, and shares a mitigation; CERT-GH
            # acknowledges without its name; CERT-SN sights the indicator, unnamed.
            named = {"state": "acknowledged", "note": "sinkholing it now", "named": True}
            status, _ = await respond(hub, "ng-cert-submit", alerts["ng-cert"]["id"], named)
            assert status == 202
            quiet = {"state": "acknowledged", "note": "blocking at the border"}
            status, _ = await respond(hub, "gh-cert-submit", alerts["gh-cert"]["id"], quiet)
            assert status == 202
            status, _ = await mitigate(hub, "ng-cert-submit", alerts["ng-cert"]["id"], MITIGATION)
            assert status == 202
            seen = sighting_of(reports["sn-cert"]["id"], sn.identity, count=12)
            assert (await submit(hub, "sn-cert-submit", [seen])).success_count == 1

            # (5) Every recipient's latest alert, read over TAXII as that recipient, shows two
            # acknowledgements and one sighting, and names ngCERT alone.
            def complete(fields: dict[str, Any]) -> bool:
                return fields["responses"]["acknowledged"] == 2 and fields["sighted"] == 1

            for member in RECIPIENTS:
                fields = (await until(hub, member, complete))[ALERT_PROPERTY]
                assert fields["responses"] == {
                    "acknowledged": 2,
                    "investigating": 0,
                    "affected": 0,
                    "not-affected": 0,
                    "mitigated": 0,
                }, member
                assert fields["members"] == 3 and fields["sighted"] == 1, member
                assert fields["named"] == [
                    {
                        "identity": ng.identity,
                        "name": ng.name,
                        "sighted": False,
                        "state": "acknowledged",
                    }
                ], member
            for member in RECIPIENTS:
                readable = await about_the_alert(hub, member)
                for unnamed in (gh, sn):
                    if unnamed.id != member:
                        assert unnamed.identity not in readable, (member, unnamed.id)
                        assert unnamed.name not in readable, (member, unnamed.id)
                if member != "gh-cert":
                    assert "blocking at the border" not in readable, member

            # (6) CERT-SN's analyst opens the alert's page in French: the counts, ngCERT's
            # mitigation, and ngCERT, named, with its points of contact.
            async with browser_page(tmp_path / "chromium") as page:
                await page.send(
                    "Network.setExtraHTTPHeaders", headers={"Accept-Language": "fr-FR,fr;q=0.9"}
                )
                await page.send("Network.enable")
                await page.goto(hub.base_url + "/console/login")
                password = json.dumps(hub.password("sn-cert-read"))
                await page.evaluate(
                    "window.previousPage = true;"
                    "document.getElementById('username').value = 'sn-cert-read';"
                    f"document.getElementById('password').value = {password};"
                    "document.querySelector('form.login').submit()"
                )
                await page.wait_for("!window.previousPage && document.readyState === 'complete'")
                alert_page = hub.base_url + f"/console/objects/{alerts['sn-cert']['id']}"
                for _ in range(100):  # the mitigation shows once routed to CERT-SN
                    await page.goto(alert_page)
                    shown = await page.evaluate(
                        "document.querySelector('.alert-mitigations').innerText"
                    )
                    if MITIGATION["name"] in shown:
                        break
                    await asyncio.sleep(0.2)
                assert await page.evaluate("document.documentElement.lang") == "fr"
                responses = await page.evaluate(
                    "document.querySelector('.alert-responses').innerText"
                )
                assert "3 membres dans 3 pays" in responses, responses
                assert "Pris en compte\t2" in responses and "Observée par\n1 membre\n" in responses
                assert "Points de contact" in responses and "incident@ngcert.example" in responses
                assert ng.name in responses and gh.name not in responses
                assert MITIGATION["name"] in shown and MITIGATION["description"] in shown, shown
                assert f"Partagée par {ng.name} (ng-cert)" in shown and "valide, clé" in shown
                await page.evaluate("document.querySelector('.alert-responses').scrollIntoView()")
                await shoot(page, "regional-incident-fr")

            # Told once: the responses made new versions, not new e-mails.
            await asyncio.sleep(1)
    assert len(box.messages) == 2 and box.tls_sessions == 2
    assert (ARTIFACTS / "console-regional-incident-fr.png").stat().st_size > 10_000
