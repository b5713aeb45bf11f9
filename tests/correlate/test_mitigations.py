"""Shared mitigations (issue 25), on both buses over real HTTP: a recipient of an alert shares
a course-of-action that `mitigates` what the alert refers to, through the API, the console,
the command line or plain TAXII; it goes where the sender's own rules send its TLP, never
further: another recipient of the alert those rules leave out sees it neither on its alert
page nor over TAXII. The alert's page lists the mitigations newest first, each signature
checked and its key named."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from connectors.client import MemberKey
from hub.federation import Federation
from tests.connectors.test_client import run_cli
from tests.console.client import Browser
from tests.correlate.test_alerts import indicator, settled, with_rule
from tests.correlate.test_responses import RECIPIENTS, basic
from tests.hubs import RunningHub, member_identity, running_hub, submit, visible_to, with_member_key
from tests.stixdata import TLP2

# ng-cert's TLP:AMBER reaches gh-cert alone: sn-cert receives the alert, not the mitigation.
SHARING = {"ng-cert": {"default_tlp": "amber", "recipients": {"amber": ["member:gh-cert"]}}}


async def mitigate(
    hub: RunningHub, username: str, alert_id: str, body: Any
) -> tuple[int, dict[str, Any]]:
    url = f"{hub.base_url}/api/v1/alerts/{alert_id}/mitigations"
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=data, headers=basic(hub, username)) as response,
    ):
        return response.status, await response.json(content_type=None)


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + 30
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


def mitigations_section(text: str) -> str:
    """The alert page's mitigations, tags dropped."""
    section = text.split('<section class="alert-mitigations">', 1)[1].split("</section>", 1)[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section))


async def names_shown(hub: RunningHub, reader: Browser, alert_id: str) -> list[str]:
    answer = await reader.get(f"/console/objects/{alert_id}")
    assert answer.status == 200, answer.text
    section = answer.text.split('<section class="alert-mitigations">', 1)[1].split("</section>")[0]
    return re.findall(r"<strong>([^<]+)</strong>", section)


async def actions_of(hub: RunningHub, username: str) -> dict[str, dict[str, Any]]:
    found = await visible_to(hub, username)
    return {
        o["name"]: o for objs in found.values() for o in objs if o["type"] == "course-of-action"
    }


async def test_a_mitigation_reaches_whom_the_senders_rules_allow_and_shows_on_the_alert_page(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    key = MemberKey.generate()

    def adjust(federation: Federation) -> Federation:
        """Three reports make an alert; gh-cert's read account may also speak for it."""
        federation = with_rule(min_members=3, min_countries=3, window="PT1H")(federation)
        federation = with_member_key("gh-cert", key)(federation)
        speaker = frozenset({"read", "submit"})
        return replace(
            federation,
            members=tuple(
                replace(
                    m,
                    accounts=tuple(
                        replace(a, roles=speaker) if a.username == "gh-cert-read" else a
                        for a in m.accounts
                    ),
                )
                for m in federation.members
            ),
        )

    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        sharing=SHARING,
        adjust=adjust,
    ) as hub:
        reports = {m: indicator(member_identity(hub, m)) for m in RECIPIENTS}
        for member, report in reports.items():
            assert (await submit(hub, f"{member}-submit", [report])).success_count == 1
        alerts = {m: (await settled(hub, f"{m}-read", 1))[-1] for m in RECIPIENTS}
        ng_alert = alerts["ng-cert"]["id"]

        # What the API refuses, each saying why, in a TAXII error body.
        status, error = await mitigate(hub, "sn-cert-submit", ng_alert, {"name": "Block it"})
        assert status == 404 and error["title"] == "Not found", error
        status, error = await mitigate(hub, "sn-cert-read", ng_alert, {"name": "Block it"})
        assert status == 403 and "submit" in error["description"], error
        for body, field in (
            ({"description": "no name"}, "name"),
            ({"name": "x", "tlp": "purple"}, "tlp"),
            ({"name": "x", "colour": "red"}, "colour"),
            ({"name": "x", "targets": ["indicator--" + str(uuid.uuid4())]}, "targets"),
            (b"{not json", "JSON"),
            ({"name": "x" * 201}, "name"),
        ):
            status, error = await mitigate(hub, "ng-cert-submit", ng_alert, body)
            assert status == 400 and field in error["description"], (body, error)
            assert error["http_status"] == "400" or error["http_status"] == 400, error

        # ng-cert shares one through the API, under its TLP:AMBER rule (gh-cert alone).
        status, pending = await mitigate(
            hub,
            "ng-cert-submit",
            ng_alert,
            {"name": "Sinkhole the C2 domain", "description": "Answer NXDOMAIN.", "tlp": "amber"},
        )
        assert status == 202, pending

        async def gh_has_it() -> bool:
            return "Sinkhole the C2 domain" in await actions_of(hub, "gh-cert-read")

        await eventually(gh_has_it, "gh-cert never received ng-cert's mitigation")
        ng = hub.settings.federation.member("ng-cert")
        action = (await actions_of(hub, "gh-cert-read"))["Sinkhole the C2 domain"]
        assert action["created_by_ref"] == ng.identity
        assert action["object_marking_refs"] == [TLP2["amber"]]
        relations = [
            o
            for objs in (await visible_to(hub, "gh-cert-read")).values()
            for o in objs
            if o["type"] == "relationship" and o["source_ref"] == action["id"]
        ]
        assert {r["target_ref"] for r in relations} == {r["id"] for r in reports.values()}
        assert {r["relationship_type"] for r in relations} == {"mitigates"}

        # gh-cert shares one over plain TAXII, signed with its member key, TLP:GREEN (its
        # region: ng-cert and sn-cert both); and one from its alert's page in the console.
        gh = member_identity(hub, "gh-cert")
        own = reports["gh-cert"]["id"]
        common = {"spec_version": "2.1", "created_by_ref": gh}
        stamp = "2026-12-07T22:00:00.000Z"
        plain = {
            "type": "course-of-action",
            "id": f"course-of-action--{uuid.uuid4()}",
            "created": stamp,
            "modified": stamp,
            "name": "Block at the resolvers",
            "object_marking_refs": [TLP2["green"]],
            **common,
        }
        link = {
            "type": "relationship",
            "id": f"relationship--{uuid.uuid4()}",
            "created": stamp,
            "modified": stamp,
            "relationship_type": "mitigates",
            "source_ref": plain["id"],
            "target_ref": own,
            "object_marking_refs": [TLP2["green"]],
            **common,
        }
        signed = [key.sign(plain), key.sign(link)]
        assert (await submit(hub, "gh-cert-submit", signed)).success_count == 2

        gh_reader = Browser(hub, language="en")
        await gh_reader.log_in("gh-cert-read")
        gh_page = f"/console/objects/{alerts['gh-cert']['id']}"

        async def gh_page_has_both() -> bool:
            shown = await names_shown(hub, gh_reader, alerts["gh-cert"]["id"])
            return shown == ["Block at the resolvers", "Sinkhole the C2 domain"]

        await eventually(gh_page_has_both, "gh-cert's alert page lacks the mitigations")

        # sn-cert hangs gh-cert's course of action on ng-cert's report: the page takes a
        # relationship only from the course of action's own sender.
        sn = member_identity(hub, "sn-cert")
        hung = {**link, "id": f"relationship--{uuid.uuid4()}", "created_by_ref": sn}
        hung["target_ref"] = reports["ng-cert"]["id"]
        assert (await submit(hub, "sn-cert-submit", [hung])).success_count == 1

        async def gh_has_the_hung_one() -> bool:
            found = await visible_to(hub, "gh-cert-read")
            return any(o["id"] == hung["id"] for objs in found.values() for o in objs)

        await eventually(gh_has_the_hung_one, "sn-cert's relationship never reached gh-cert")
        page = (await gh_reader.get(gh_page)).text
        [entry] = [
            li for li in page.split('<li class="mitigation">')[1:] if "Block at the resolvers" in li
        ]
        assert own in entry and reports["ng-cert"]["id"] not in entry.split("</li>")[0]
        shown = mitigations_section((await gh_reader.get(gh_page)).text)
        assert shown.count("Hub signature: valid, key") == 2, shown
        assert f"Member signature: valid, key {key.kid}" in shown, shown
        assert "Member signature: none" in shown and "Answer NXDOMAIN." in shown
        assert f"Shared by {ng.name} (ng-cert)" in shown
        assert 'class="mitigate"' in (await gh_reader.get(gh_page)).text
        sent = await gh_reader.post(
            gh_page + "/mitigate",
            {"name": "Reset exposed credentials", "description": "", "tlp": "green"},
        )
        assert sent.status == 303 and sent.location == gh_page + "?done=mitigated", sent.text
        empty = await gh_reader.post(gh_page + "/mitigate", {"name": "", "tlp": "green"})
        assert empty.status == 400 and "name" in empty.text

        async def gh_page_has_three() -> bool:
            shown = await names_shown(hub, gh_reader, alerts["gh-cert"]["id"])
            return shown[:1] == ["Reset exposed credentials"] and len(shown) == 3

        await eventually(gh_page_has_three, "the console's mitigation is not first")

        # sn-cert, a recipient of the alert that ng-cert's rules leave out: gh-cert's
        # TLP:GREEN ones reach it, ng-cert's TLP:AMBER one does not, page or TAXII.
        sn_reader = Browser(hub, language="en")
        await sn_reader.log_in("sn-cert-read")

        async def sn_page_has_greens() -> bool:
            shown = await names_shown(hub, sn_reader, alerts["sn-cert"]["id"])
            return shown == ["Reset exposed credentials", "Block at the resolvers"]

        await eventually(sn_page_has_greens, "sn-cert's page lacks gh-cert's mitigations")
        sn_page = (await sn_reader.get(f"/console/objects/{alerts['sn-cert']['id']}")).text
        assert "Sinkhole" not in sn_page and "NXDOMAIN" not in sn_page
        assert 'class="mitigate"' not in sn_page  # sn-cert-read may only read
        assert "Sinkhole the C2 domain" not in await actions_of(hub, "sn-cert-read")

        # The command line: sn-cert's submit account, on its own alert.
        code, out, err = await run_cli(
            "mitigate", alerts["sn-cert"]["id"],
            "--url", hub.base_url, "--user", "sn-cert-submit",
            "--name", "Patch the portal", "--description", "Version 4.2 closes it.",
            "--tlp", "green",
            password=hub.password("sn-cert-submit"),
        )  # fmt: skip
        assert code == 0, err
        assert out.startswith("shared    course-of-action--"), out

        async def ng_has_the_patch() -> bool:
            return "Patch the portal" in await actions_of(hub, "ng-cert-read")

        await eventually(ng_has_the_patch, "ng-cert never received sn-cert's mitigation")
        code, _, err = await run_cli(
            "mitigate", ng_alert,
            "--url", hub.base_url, "--user", "sn-cert-submit", "--name", "x",
            password=hub.password("sn-cert-submit"),
        )  # fmt: skip
        assert code == 1 and "Not found" in err, err

        # sn-cert floods the reports with mitigations: the page shows 20, in turns per
        # sender, so ng-cert's and gh-cert's stay listed.
        flood = []
        for n in range(25):
            action = {**plain, "id": f"course-of-action--{uuid.uuid4()}", "name": f"Flood {n}"}
            action["created_by_ref"] = sn
            flood += [
                action,
                {**hung, "id": f"relationship--{uuid.uuid4()}", "source_ref": action["id"]},
            ]
        assert (await submit(hub, "sn-cert-submit", flood)).success_count == 50

        async def gh_has_the_flood() -> bool:
            found = await visible_to(hub, "gh-cert-read")
            ids = {o["id"] for objs in found.values() for o in objs}
            return all(o["id"] in ids for o in flood)

        await eventually(gh_has_the_flood, "the flood never reached gh-cert")
        shown = await names_shown(hub, gh_reader, alerts["gh-cert"]["id"])
        assert len(shown) == 20 and sum(n.startswith("Flood") for n in shown) == 17, shown
        assert {"Sinkhole the C2 domain", "Block at the resolvers"} <= set(shown), shown
        assert "Reset exposed credentials" in shown, shown
