"""The operators' dashboard in headless Debian Chromium against the real server: log in as
the operator, post reports, watch the counts change on the page and agree with /metrics,
and keep screenshots (desktop and phone) in test-artifacts/ for a person to look at."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.api.test_metrics import scrape
from tests.conftest import ROOT
from tests.correlate.test_alerts import indicator as alert_indicator
from tests.correlate.test_alerts import settled, with_rule
from tests.correlate.test_responses import RECIPIENTS, respond, until
from tests.e2e.browser import browser_page
from tests.hubs import RunningHub, member_identity, running_hub, submit
from tests.stixdata import TLP2, incident_report

ARTIFACTS = ROOT / "test-artifacts"
PAGE_BUDGET = 16 * 1024  # bytes on the wire (gzip) for the whole page: a slow link's share

pytestmark = pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)


async def test_the_dashboard_shows_live_counts_that_agree_with_metrics(
    hub: RunningHub, tmp_path: Path
) -> None:
    # The page alone, as a browser on a slow link fetches it: one small self-contained file.
    auth = aiohttp.encode_basic_auth("hub-operator", hub.password("hub-operator"))
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(
            hub.base_url + "/dashboard",
            headers={"Authorization": auth, "Accept-Encoding": "gzip"},
        ) as response,
    ):
        wire = await response.read()
        assert response.status == 200 and response.headers["Content-Encoding"] == "gzip"
    html = gzip.decompress(wire).decode()
    assert len(wire) < PAGE_BUDGET, f"{len(wire)} bytes"
    assert "http://" not in html and "https://" not in html  # no CDN, nothing external
    print(f"dashboard page weight: {len(html)} bytes, {len(wire)} bytes gzip")

    async with browser_page(tmp_path / "chromium") as page:
        await page.goto(hub.base_url + "/dashboard")
        assert await page.evaluate("location.pathname") == "/dashboard/login"

        async def log_in(username: str, secret: str) -> None:
            """Type into the form and send it; return once the answer page has loaded."""
            await page.evaluate(
                "window.previousPage = true;"
                f"document.getElementById('username').value = {json.dumps(username)};"
                f"document.getElementById('password').value = {json.dumps(secret)};"
                "document.querySelector('form').submit()"
            )
            await page.wait_for("!window.previousPage && document.readyState === 'complete'")

        # A wrong secret is refused on the page, saying so; so is a reader.
        await log_in("hub-operator", "wrong")
        assert "wrong secret" in await page.evaluate("document.querySelector('.error').textContent")
        await log_in("ng-cert-read", hub.password("ng-cert-read"))
        assert "operate" in await page.evaluate("document.querySelector('.error').textContent")
        await log_in("hub-operator", hub.password("hub-operator"))
        await page.wait_for("location.pathname === '/dashboard'")
        await page.wait_for("document.getElementById('node').textContent.startsWith('node ')")
        assert await page.evaluate("document.getElementById('total-accepted').textContent") == "0"

        identity = member_identity(hub, "ng-cert")
        for _ in range(3):
            report = incident_report(identity, "ngCERT", TLP2["green"])
            assert (await submit(hub, "ng-cert-submit", report)).success_count == 4
        bad = dict(report[2], id=f"indicator--{uuid.uuid4()}", modified="2000-01-01T00:00:00Z")
        assert (await submit(hub, "ng-cert-submit", [bad])).failure_count == 1

        samples = await scrape(hub)
        accepted = sum(samples["cirt_hub_objects_accepted_total"].values())
        refused = sum(samples["cirt_hub_objects_refused_total"].values())
        assert (accepted, refused) == (12, 1)
        # The page catches up by itself (it polls); no reload.
        await page.wait_for(
            "document.getElementById('total-accepted').textContent === '12' && "
            "document.getElementById('total-refused').textContent === '1'"
        )
        text = await page.evaluate("document.body.innerText")
        assert "invalid-stix" in text  # refusals by reason
        assert "ng-cert (NG)\t13\t12\t1" in text  # per member
        assert "West Africa" in text
        await page.wait_for(
            "document.getElementById('lat-p50').textContent !== '\\u2013' && "
            "(document.querySelector('#chart polyline')?.getAttribute('points') || '')"
            ".split(' ').length >= 3"
        )
        await page.screenshot(ARTIFACTS / "dashboard.png", 1280, 900)
        await page.screenshot(ARTIFACTS / "dashboard-phone.png", 390, 844, mobile=True)
        # On a phone's width nothing needs sideways scrolling.
        assert await page.evaluate("document.documentElement.scrollWidth <= 390")
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000


async def test_the_dashboard_shows_open_alerts_with_their_responses_and_age(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    rule = with_rule(min_members=3, min_countries=3, window="PT1H")
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}.", adjust=rule
    ) as hub:
        for member in RECIPIENTS:
            report = alert_indicator(member_identity(hub, member))
            assert (await submit(hub, f"{member}-submit", [report])).success_count == 1
        alerts = {m: (await settled(hub, f"{m}-read", 1))[-1] for m in RECIPIENTS}
        for member in ("ng-cert", "gh-cert"):
            body = {"state": "acknowledged", "named": member == "gh-cert"}
            status, _ = await respond(hub, f"{member}-submit", alerts[member]["id"], body)
            assert status == 202
        await until(hub, "sn-cert", lambda f: f["responses"]["acknowledged"] == 2)

        # One row for the alert, whatever the number of recipients' copies; counts, no names.
        auth = aiohttp.encode_basic_auth("hub-operator", hub.password("hub-operator"))
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                hub.base_url + "/api/v1/dashboard", headers={"Authorization": auth}
            ) as response,
        ):
            snapshot = await response.json()
        [row] = snapshot["open_alerts"]
        assert row["kind"] == "domain-name" and (row["members"], row["countries"]) == (3, 3)
        assert row["responses"]["acknowledged"] == 2 and row["responses"]["affected"] == 0
        assert row["sighted"] == 0 and 0 <= row["age_seconds"] < 600
        named = hub.settings.federation.member("gh-cert")
        assert named.name not in json.dumps(row) and "identity--" not in json.dumps(row)

        async with browser_page(tmp_path / "chromium") as page:
            await page.goto(hub.base_url + "/dashboard/login")
            await page.evaluate(
                "window.previousPage = true;"
                "document.getElementById('username').value = 'hub-operator';"
                f"document.getElementById('password').value = "
                f"{json.dumps(hub.password('hub-operator'))};"
                "document.querySelector('form').submit()"
            )
            await page.wait_for("location.pathname === '/dashboard'")
            await page.wait_for("document.querySelector('#open-alerts td:not(.empty)') !== null")
            text = await page.evaluate("document.getElementById('open-alerts').innerText")
            assert text.startswith("domain-name: 3 members, 3 countries (all)\t0 min\t2\t0"), text
            await page.evaluate("document.getElementById('h-open').scrollIntoView()")
            await page.screenshot(ARTIFACTS / "dashboard-open-alerts.png", 1280, 900)


async def test_the_dashboard_shows_who_answered_the_latest_reachability_check(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}."
    ) as hub:
        auth = {
            "Authorization": aiohttp.encode_basic_auth("hub-operator", hub.password("hub-operator"))
        }
        async with aiohttp.ClientSession() as session:
            async with session.post(
                hub.base_url + "/api/v1/reachability/checks",
                json={"overdue_days": 0.00001, "links": True},
                headers=auth,
            ) as response:
                assert response.status == 201
                started = await response.json()
            [link] = [x["link"] for x in started["links"] if x["member"] == "ng-cert"]
            async with session.post(link) as response:
                assert response.status == 200

        async with browser_page(tmp_path / "chromium") as page:
            await page.goto(hub.base_url + "/dashboard/login")
            await page.evaluate(
                "window.previousPage = true;"
                "document.getElementById('username').value = 'hub-operator';"
                f"document.getElementById('password').value = "
                f"{json.dumps(hub.password('hub-operator'))};"
                "document.querySelector('form').submit()"
            )
            await page.wait_for("location.pathname === '/dashboard'")
            await page.wait_for("document.querySelector('#reach-members td:not(.empty)') !== null")
            rows = await page.evaluate("document.getElementById('reach-members').innerText")
            lines = rows.splitlines()
            assert lines[0].startswith("ng-cert\tanswered (link)\t"), rows
            assert lines[0].endswith("\tincident@ngcert.example"), rows
            assert all("OVERDUE" in line for line in lines[1:]) and len(lines) == 6, rows
            summary = await page.evaluate("document.getElementById('reach').innerText")
            assert "1 of 6 answered" in summary and "no answer after" in summary, summary
            await page.evaluate("document.getElementById('h-reach').scrollIntoView()")
            await page.screenshot(ARTIFACTS / "dashboard-reachability.png", 1280, 900)
