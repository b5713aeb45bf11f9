"""Reachability checks (issue 25), on both buses over real HTTP: the operator starts one from
the command line; a contact answers by its one-time link, another member by one click on the
console's banner; the dashboard and `cirt-hub reachability show` say who answered, how fast,
and who has not after N days; a restart keeps it all; a used, unknown or expired link writes
nothing; members and outsiders cannot start or read checks."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.connectors.test_client import run_cli
from tests.console.client import Browser
from tests.correlate.test_responses import basic
from tests.hubs import RunningHub, running_hub
from tests.notify.servers import password_file, smtp_server
from tests.notify.test_subscriptions import configured

LINK = re.compile(r"link for ([a-z-]+) \(([^)]+)\): (\S+)")


async def call(
    hub: RunningHub, method: str, path: str, username: str | None = None, body: Any = None
) -> tuple[int, Any]:
    headers = basic(hub, username) if username else {}
    data = orjson.dumps(body) if body is not None else None
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, hub.base_url + path, data=data, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


async def latest(hub: RunningHub) -> dict[str, Any]:
    status, body = await call(hub, "GET", "/api/v1/dashboard", "hub-operator")
    assert status == 200, body
    check: dict[str, Any] = body["reachability"]
    return check


def by_member(check: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["member"]: row for row in check["members"]}


async def test_a_check_from_start_to_answers_to_the_dashboard_through_a_restart(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    data_dir, prefix = tmp_path / "data", f"t{unique}."
    async with running_hub(bus_url, data_dir, demo_secrets, topic_prefix=prefix) as hub:
        # Neither an outsider nor a member may start or read checks.
        assert (await call(hub, "POST", "/api/v1/reachability/checks"))[0] == 401
        assert (await call(hub, "POST", "/api/v1/reachability/checks", "ng-cert-read"))[0] == 403
        assert (await call(hub, "GET", "/api/v1/reachability", "ng-cert-read"))[0] == 403
        status, error = await call(
            hub, "POST", "/api/v1/reachability/checks", "hub-operator", {"overdue_days": -1}
        )
        assert status == 400 and "overdue_days" in error["description"], error
        assert (await call(hub, "GET", "/api/v1/reachability", "hub-operator"))[1] == {
            "check": None
        }

        operator = ("--url", hub.base_url, "--user", "hub-operator")
        secret = hub.password("hub-operator")
        code, out, err = await run_cli(
            "reachability", "start", *operator, "--links", "--overdue-days", "0.00003",
            password=secret,
        )  # fmt: skip
        assert code == 0, err
        links = {member: (contact, link) for member, contact, link in LINK.findall(out)}
        assert set(links) == {"ng-cert", "gh-cert", "sn-cert"}, out  # those with contacts
        assert links["ng-cert"][0] == "incident@ngcert.example"
        ng_link = links["ng-cert"][1]
        assert ng_link.startswith(f"{hub.base_url}/console/reachability/")
        path = ng_link.removeprefix(hub.base_url)

        # ng-cert's desk opens its link: a page with one button; only the post answers.
        desk = Browser(hub, language="en")
        opened = await desk.get(path)
        assert opened.status == 200 and "We are reachable" in opened.text, opened.text
        assert "ngCERT, Nigeria (demo)" in opened.text
        assert not by_member(await latest(hub))["ng-cert"]["answered"]
        answered = await desk.post(path, {})
        assert answered.status == 200 and "recorded that your CIRT answered" in answered.text
        again = await desk.post(path, {})  # used: it says so, and writes nothing
        assert again.status == 200 and "by incident@ngcert.example" in again.text
        forged = path.rsplit("/", 1)[0] + "/" + "A" * 43
        assert (await desk.get(forged)).status == 404
        assert (await desk.post(forged, {})).status == 404

        # gh-cert's analyst sees the banner and answers with one click; sn-cert's does not.
        analyst = Browser(hub, language="en")
        await analyst.log_in("gh-cert-read")
        home = await analyst.get("/console/")
        [action] = re.findall(r'action="(/console/reachability/[^"]+/acknowledge)"', home.text)
        elsewhere = await analyst.post(action, {}, headers={"Sec-Fetch-Site": "cross-site"})
        assert elsewhere.status == 403
        clicked = await analyst.post(action, {})
        assert clicked.status == 303 and clicked.location == "/console/?done=reachable"
        home = await analyst.get("/console/?done=reachable")
        assert "recorded that your CIRT answered" in home.text and "/acknowledge" not in home.text
        assert (await analyst.post(action, {})).status == 404  # answered: nothing pending
        french = Browser(hub, language="fr")
        await french.log_in("sn-cert-read")
        assert "Nous sommes joignables" in (await french.get("/console/")).text

        await asyncio.sleep(3)  # past the check's overdue_days (about 2.6 s)
        check = by_member(await latest(hub))
        assert check["ng-cert"]["answered"] and check["ng-cert"]["via"] == "link"
        assert check["ng-cert"]["by"] == "incident@ngcert.example"
        assert check["gh-cert"]["by"] == "gh-cert-read" and check["gh-cert"]["via"] == "console"
        assert 0 <= check["ng-cert"]["seconds"] <= check["gh-cert"]["seconds"] < 60
        assert not check["sn-cert"]["answered"] and check["sn-cert"]["overdue"]
        assert not check["ke-cirt"]["answered"] and check["ke-cirt"]["overdue"]

    # A restart: the check and its answers come back from the bus.
    async with running_hub(bus_url, data_dir, demo_secrets, topic_prefix=prefix) as hub:
        check = by_member(await latest(hub))
        assert check["ng-cert"]["by"] == "incident@ngcert.example"
        assert check["gh-cert"]["by"] == "gh-cert-read"
        code, out, err = await run_cli(
            "reachability", "show", "--url", hub.base_url, "--user", "hub-operator",
            password=hub.password("hub-operator"),
        )  # fmt: skip
        assert code == 0, err
        assert "2 of 6 answered" in out, out
        assert re.search(r"answered\s+ng-cert\s+in \d+ s, by incident@ngcert.example \(link\)", out)
        assert re.search(r"overdue \(over [0-9.e-]+ days\)\s+sn-cert", out), out

        # A check whose links expired: they write nothing, and the banner is gone.
        status, started = await call(
            hub,
            "POST",
            "/api/v1/reachability/checks",
            "hub-operator",
            {"expires_days": 0.00002, "links": True},
        )
        assert status == 201 and started["sent"] == 0, started
        [sn_link] = [x["link"] for x in started["links"] if x["member"] == "sn-cert"]
        await asyncio.sleep(2.5)  # past its expiry
        late = Browser(hub, language="en")
        expired = await late.post(sn_link.removeprefix(hub.base_url), {})
        assert expired.status == 410 and "no longer answer" in expired.text
        assert not by_member(await latest(hub))["sn-cert"]["answered"]
        await late.log_in("sn-cert-read")
        assert "/acknowledge" not in (await late.get("/console/")).text  # no banner: it ended


@pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)
async def test_with_an_smtp_server_each_contact_gets_its_link_by_mail_in_its_language(
    bus_url: str, tmp_path: Path, demo_secrets: Path
) -> None:
    with smtp_server(tmp_path / "smtp") as box:
        notify = {"smtp": box.notify_block(password_file(tmp_path))}
        async with running_hub(
            bus_url, tmp_path / "data", demo_secrets, adjust=configured(notify)
        ) as hub:
            status, body = await call(
                hub, "POST", "/api/v1/reachability/checks", "hub-operator", {}
            )
            assert status == 201, body
            # The demo federation names a contact for three of its six members.
            assert body["sent"] == 3
            (english,) = box.to("incident@ngcert.example")
            assert english["Subject"] == "Reachability check: can we reach ngCERT, Nigeria (demo)?"
            assert english["Content-Language"] == "en"
            # CERT-SN's contact reads French first.
            (french,) = box.to("permanence@certsn.example")
            assert french["Content-Language"] == "fr"
            assert "joignable" in french["Subject"] and "répondre" in french.get_content()
            link = re.search(r"(http\S+/console/reachability/[\w-]+)", english.get_content())
            assert link is not None, english.get_content()
            async with aiohttp.ClientSession() as http, http.post(link[1]) as answered:
                assert answered.status == 200
            answer = by_member(await latest(hub))["ng-cert"]
            assert answer["answered"] and answer["via"] == "link", answer
            assert answer["by"] == "incident@ngcert.example"
