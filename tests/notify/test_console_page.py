"""The console's subscriptions page: a reader subscribes with the form (no script), sees its
subscription listed in its language, and deletes it; another reader of the same member sees
none of it and cannot delete it; a form posted from elsewhere makes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.console.client import Browser
from tests.hubs import running_hub
from tests.notify.test_subscriptions import configured

pytestmark = pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)
WEBHOOK = "https://soar.gh-cert.example/hooks/1"


async def test_a_reader_subscribes_lists_and_deletes_from_the_console(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    notify = {"webhook_prefixes": ["https://soar.gh-cert.example/"]}
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        extra_readers={"gh-cert-read2": "gh-cert"},
        adjust=configured(notify),
    ) as hub:
        reader, other = Browser(hub, language="fr"), Browser(hub)
        await reader.log_in("gh-cert-read")
        await other.log_in("gh-cert-read2")
        page = await reader.get("/console/subscriptions")
        assert page.status == 200 and "Vous n\u2019avez aucun abonnement." in page.text
        assert "<script" not in page.text and 'name="webhook"' in page.text
        assert 'name="email"' not in page.text  # the operator set up no SMTP server
        form = {
            "kind": "collection",
            "collection": "region-west-africa",
            "types": "indicator, malware",
            "min_confidence": "60",
            "max_tlp": "amber",
            "value": "WWW.Example.ORG",
            "value_kind": "domain",
            "webhook": WEBHOOK,
        }
        made = await reader.post("/console/subscriptions", form)
        assert made.status == 303 and made.location == "/console/subscriptions"
        page = await reader.get("/console/subscriptions")
        assert "Nouveaux objets dans region-west-africa" in page.text
        assert "indicator, malware" in page.text and "jusqu\u2019\u00e0 TLP:AMBER" in page.text
        assert 'name="value"' in page.text and "nommant www.example.org (domain)" in page.text
        refused = await reader.post("/console/subscriptions", {**form, "value": "203.0.113.0/33"})
        assert refused.status == 400 and "value: &#39;203.0.113.0/33&#39; is not a domain" in (
            refused.text
        )
        (delete,) = re.findall(r'action="(/console/subscriptions/[^"]+/delete)"', page.text)
        refused = await reader.post(
            "/console/subscriptions", {**form, "webhook": "http://127.0.0.1:9/"}
        )
        assert (
            refused.status == 400
            and "L\u2019abonnement n\u2019a pas \u00e9t\u00e9 cr\u00e9\u00e9" in refused.text
        )
        assert "webhook:" in refused.text
        elsewhere = await reader.post(
            "/console/subscriptions", form, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert elsewhere.status == 403
        theirs = await other.get("/console/subscriptions")
        assert "region-west-africa</" not in theirs.text and WEBHOOK not in theirs.text
        assert (await other.post(delete, {})).status == 303  # answers alike, deletes nothing
        page = await reader.get("/console/subscriptions")
        assert page.text.count('/delete"') == 1
        assert (await reader.post(delete, {})).status == 303
        page = await reader.get("/console/subscriptions")
        assert "Vous n\u2019avez aucun abonnement." in page.text
