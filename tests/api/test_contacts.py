"""Points of contact (issue 25), against a real hub: a member's read account and a hub
operator read every member's 24/7 contacts over the API, and the analyst in the console; a
sensor's submit-only account and a caller without an account never. An alert's page gives
the contacts of the members that chose to be named in its responses, and of nobody else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from tests.console.client import Browser
from tests.correlate.test_alerts import indicator, settled, with_rule
from tests.correlate.test_responses import RECIPIENTS, basic, respond, until
from tests.hubs import RunningHub, member_identity, running_hub, submit


async def contacts(hub: RunningHub, headers: dict[str, str]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{hub.base_url}/api/v1/contacts", headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


async def test_members_and_operators_see_the_contacts_an_outsider_never(
    tmp_path: Path, demo_secrets: Path
) -> None:
    async with running_hub("embedded", tmp_path / "data", demo_secrets) as hub:
        status, error = await contacts(hub, {})
        assert status == 401 and "incident@ngcert.example" not in str(error)
        wrong = {"Authorization": aiohttp.encode_basic_auth("gh-cert-read", "not-the-secret")}
        status, error = await contacts(hub, wrong)
        assert status == 401 and "incident@ngcert.example" not in str(error)
        status, error = await contacts(hub, basic(hub, "gh-cert-submit"))
        assert status == 403 and "read account" in error["description"], error

        for username in ("gh-cert-read", "hub-operator"):
            status, body = await contacts(hub, basic(hub, username))
            assert status == 200, body
            by_id = {m["id"]: m for m in body["members"]}
            assert by_id["ng-cert"]["contacts"] == [
                {
                    "role": "24/7 duty officer",
                    "name": "ngCERT incident desk",
                    "email": "incident@ngcert.example",
                    "phone": "+234 9 000 0000",
                    "languages": ["en"],
                    "key": {
                        "kind": "pgp",
                        "fingerprint": "3A1F 9C2B 7D44 E0A1 5B6C  8D90 12EF 3456 7890 ABCD",
                    },
                }
            ]
            assert by_id["sn-cert"]["contacts"][0]["key"]["kind"] == "smime"
            assert by_id["ke-cirt"]["contacts"] == []

        analyst = Browser(hub, language="en")
        away = await analyst.get("/console/contacts/")
        assert away.status == 303 and away.location.endswith("/console/login")
        await analyst.log_in("gh-cert-read")
        page = await analyst.get("/console/contacts/")
        assert page.status == 200, page.text
        assert "incident@ngcert.example" in page.text and "permanence@certsn.example" in page.text
        assert "This member declares no point of contact." in page.text  # ke-cirt
        assert 'href="/console/contacts/"' in (await analyst.get("/console/")).text
        french = Browser(hub, language="fr")
        await french.log_in("sn-cert-read")
        assert "Points de contact" in (await french.get("/console/contacts/")).text


async def test_an_alert_page_gives_the_contacts_of_the_named_responders_only(
    tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    rule = with_rule(min_members=3, min_countries=3, window="PT1H")
    async with running_hub(
        "embedded", tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}.", adjust=rule
    ) as hub:
        for member in RECIPIENTS:
            report = indicator(member_identity(hub, member))
            assert (await submit(hub, f"{member}-submit", [report])).success_count == 1
        alerts = {m: (await settled(hub, f"{m}-read", 1))[-1] for m in RECIPIENTS}
        # ng-cert responds and offers its name; sn-cert responds without.
        named = {"state": "acknowledged", "named": True}
        assert (await respond(hub, "ng-cert-submit", alerts["ng-cert"]["id"], named))[0] == 202
        anonymous = {"state": "investigating"}
        assert (await respond(hub, "sn-cert-submit", alerts["sn-cert"]["id"], anonymous))[0] == 202
        await until(hub, "gh-cert", lambda f: sum(f["responses"].values()) == 2)

        reader = Browser(hub, language="en")
        await reader.log_in("gh-cert-read")
        page = (await reader.get(f"/console/objects/{alerts['gh-cert']['id']}")).text
        section = page.split('<section class="alert-responses">', 1)[1].split("</section>")[0]
        assert "incident@ngcert.example" in section and "+234 9 000 0000" in section
        assert "permanence@certsn.example" not in page  # sn-cert did not offer its name
        assert "soc@certgh.example" not in page  # nor did the reader's own CIRT
