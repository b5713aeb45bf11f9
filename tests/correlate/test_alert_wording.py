"""How an alert counts when a count is one: two members of one country (a national CIRT and a
sector CIRT, say) make an alert under a rule asking for one country. Its STIX name, the
console's alert list and page, in English and French, say "1 country", never "1 countries"."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from hub.federation import Federation
from tests.console.client import Browser
from tests.console.test_alert_page import facts
from tests.correlate.test_alerts import indicator, settled, with_rule
from tests.hubs import member_identity, running_hub, submit

REPORTERS = ("ng-cert", "gh-cert")


def one_country(federation: Federation) -> Federation:
    """The rule takes two members from one country; gh-cert is moved into ng-cert's."""
    federation = with_rule(min_members=2, min_countries=1, window="PT1H")(federation)
    country = next(m.country for m in federation.members if m.id == "ng-cert")
    members = tuple(
        replace(m, country=country) if m.id == "gh-cert" else m for m in federation.members
    )
    return replace(federation, members=members)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_an_alert_from_one_country_says_one_country_in_stix_and_both_languages(
    tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        "embedded", tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}.", adjust=one_country
    ) as hub:
        for member in REPORTERS:
            report = indicator(member_identity(hub, member))
            assert (await submit(hub, f"{member}-submit", [report])).success_count == 1
        alert = (await settled(hub, "ng-cert-read", 1))[-1]
        assert alert["name"].endswith("reported by 2 members in 1 country"), alert["name"]
        assert "2 member CIRTs in 1 country reported" in alert["description"]
        assert "2 members from 1 country of the federation" in alert["description"]

        said = {
            "en": ("2 members in 1 country", "1 countries"),
            "fr": ("2 membres dans 1 pays", "1 countries"),
        }
        for language, (shown, never) in said.items():
            reader = Browser(hub, language=language)
            await reader.log_in("ng-cert-read")
            listing = text((await reader.get("/console/alerts/")).text)
            page = facts((await reader.get(f"/console/objects/{alert['id']}")).text)
            assert shown in listing and shown in page, (language, listing, page)
            assert never not in listing + page
