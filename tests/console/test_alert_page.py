"""An alert's page in the console, against a real hub on both buses: its state, the counts per
response state, how many sighted it, the times, the members that chose to be named; and, for
an account of the member that may also submit, its CIRT's response and "seen here too". A
read-only account, a page elsewhere and an alert the member did not receive change nothing."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from hub.correlate.alerts import ALERT_PROPERTY
from hub.federation import Federation
from tests.console.client import Browser
from tests.correlate.test_alerts import indicator, settled, with_rule
from tests.correlate.test_responses import RECIPIENTS, until
from tests.hubs import member_identity, running_hub, submit, visible_to

SPEAKERS = ("ng-cert-read", "sn-cert-read")  # read accounts also given `submit`


def with_speakers(federation: Federation) -> Federation:
    """Three members must report for an alert; two read accounts may also speak."""
    federation = with_rule(min_members=3, min_countries=3, window="PT1H")(federation)
    return replace(
        federation,
        members=tuple(
            replace(
                m,
                accounts=tuple(
                    replace(a, roles=frozenset({"read", "submit"})) if a.username in SPEAKERS else a
                    for a in m.accounts
                ),
            )
            for m in federation.members
        ),
    )


def facts(text: str) -> str:
    """The page's alert section as text, tags dropped (what a reader sees, in order)."""
    section = text.split('<section class="alert-responses">', 1)[1].split("</section>", 1)[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section))


async def test_an_alert_page_shows_the_responses_and_takes_the_members_own(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        adjust=with_speakers,
    ) as hub:
        reports = {m: indicator(member_identity(hub, m)) for m in RECIPIENTS}
        for member, report in reports.items():
            assert (await submit(hub, f"{member}-submit", [report])).success_count == 1
        alerts = {m: (await settled(hub, f"{m}-read", 1))[-1] for m in RECIPIENTS}

        # A read-only account sees the alert and its counts, and no form.
        reader = Browser(hub, language="en")
        await reader.log_in("gh-cert-read")
        gh_page = f"/console/objects/{alerts['gh-cert']['id']}"
        answer = await reader.get(gh_page)
        assert answer.status == 200, answer.text
        shown = facts(answer.text)
        assert "3 members in 3 countries" in shown and "nobody has responded yet" in shown
        assert "Acknowledged 0" in shown and "Sighted by 0 members" in shown
        assert "No recipient chose to be named." in shown
        assert 'class="respond"' not in answer.text and "also has the submit role" in shown
        refused = await reader.post(gh_page + "/respond", {"state": "acknowledged"})
        assert refused.status == 403 and "also has the submit role" in refused.text

        # ng-cert's analyst may speak for it: not from a page elsewhere, not on an alert
        # ng-cert did not receive, not with a state outside the list.
        speaker = Browser(hub, language="en")
        await speaker.log_in("ng-cert-read")
        ng_page = f"/console/objects/{alerts['ng-cert']['id']}"
        answer = await speaker.get(ng_page)
        assert 'class="respond"' in answer.text and 'name="named"' in answer.text
        elsewhere = await speaker.post(
            ng_page + "/respond",
            {"state": "affected"},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert elsewhere.status == 403 and "own page" in elsewhere.text
        assert (await speaker.post(gh_page + "/respond", {"state": "affected"})).status == 404
        wrong = await speaker.post(ng_page + "/respond", {"state": "panicking"})
        assert wrong.status == 400
        sent = await speaker.post(
            ng_page + "/respond",
            {"state": "acknowledged", "note": "blocking at the border", "named": "yes"},
        )
        assert sent.status == 303 and sent.location == ng_page + "?done=responded", sent.text

        # sn-cert's analyst sights it from its alert's page, without naming itself.
        seer = Browser(hub, language="en")
        await seer.log_in("sn-cert-read")
        sn_page = f"/console/objects/{alerts['sn-cert']['id']}"
        answer = await seer.get(sn_page)
        [target] = re.findall(r'action="/console/objects/([^"]+)/sight"', answer.text)
        assert target == reports["sn-cert"]["id"]
        seen = await seer.post(f"/console/objects/{target}/sight", {"next": sn_page})
        assert seen.status == 303 and seen.location == sn_page + "?done=sighted", seen.text

        def complete(fields: dict[str, Any]) -> bool:
            return fields["responses"]["acknowledged"] == 1 and fields["sighted"] == 1

        ng = hub.settings.federation.member("ng-cert")
        for member in RECIPIENTS:
            await until(hub, member, complete)
        answer = await reader.get(gh_page)
        shown = facts(answer.text)
        assert "Acknowledged 1" in shown and "Investigating 0" in shown, shown
        assert "Sighted by 1 member " in shown and "nobody has responded yet" not in shown
        assert f"{ng.name} {ng.identity} · Acknowledged" in shown, shown
        sn = hub.settings.federation.member("sn-cert")
        assert sn.name not in shown and sn.identity not in shown  # it did not offer its name
        assert "blocking at the border" not in answer.text

        # The sighting went out in sn-cert's name, sighted where sn-cert is; the response
        # note stayed in ng-cert's own collection.
        found = await visible_to(hub, "sn-cert-read")
        [sighting] = [
            o for objs in found.values() for o in objs if o.get("sighting_of_ref") == target
        ]
        assert sighting["created_by_ref"] == sn.identity
        assert sighting["where_sighted_refs"] == [sn.identity]
        assert (await speaker.get(ng_page + "?done=responded")).text.count("Your response") == 1
        assert alerts["gh-cert"][ALERT_PROPERTY]["members"] == 3
