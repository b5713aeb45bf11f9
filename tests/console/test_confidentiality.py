"""A hostile member's reader learns nothing through the console that TAXII would not give it:
not an object another member sent TLP:AMBER to someone else, not TLP:RED addressed to another
account of its own member, not a pseudonymised value; an id or a version guessed in the URL
answers exactly as an id that never existed. TAXII and the console list the same objects."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from tests.console.client import Browser
from tests.console.test_pages import every_page, listed
from tests.hubs import RunningHub, member_identity, read_all, running_hub, submit
from tests.stixdata import TLP2, indicator

VICTIM = "finance.director@ministry.example"
SHARING = {
    "ng-cert": {
        "recipients": {"amber": ["member:gh-cert"], "red": ["account:gh-cert-read2"]},
        "pseudonymise": ["email-addr"],
    }
}


def refusal(text: str, object_id: str) -> str:
    """A not-found page with the address it was asked for taken out (the language form
    sends the reader back to that address)."""
    return text.replace(object_id, "ID")


async def pages_of(hub: RunningHub, browser: Browser, username: str) -> dict[str, str]:
    """Every list page the reader can reach, and every object page they link to."""
    texts = {}
    for path in ("/console/", "/console/alerts/"):
        texts[path] = (await browser.get(path)).text
    for alias in ("public", "alerts", "region-west-africa", f"member-{username[:7]}"):
        path = f"/console/collections/{alias}/"
        texts[path] = (await browser.get(path)).text
    for object_id in {i for text in list(texts.values()) for i in listed(text)}:
        texts[object_id] = (await browser.get(f"/console/objects/{object_id}")).text
        texts[object_id + "/json"] = (await browser.get(f"/console/objects/{object_id}/json")).text
    return texts


@pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)
async def test_a_hostile_reader_sees_in_the_console_only_what_taxii_gives_it(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        sharing=SHARING,
        extra_readers={"gh-cert-read2": "gh-cert"},
    ) as hub:
        ng = member_identity(hub, "ng-cert")
        amber = indicator(ng, "[domain-name:value = 'amber.example']", TLP2["amber"], "amber")
        red = indicator(ng, "[domain-name:value = 'red.example']", TLP2["red"], "red")
        phish = indicator(ng, f"[email-addr:value = '{VICTIM}']", TLP2["green"], "phished")
        note = {
            "type": "note",
            "spec_version": "2.1",
            "id": f"note--{uuid.uuid4()}",
            "created": "2026-11-29T08:00:00.000Z",
            "modified": "2026-11-29T08:00:00.000Z",
            "content": "the phishing wave and its C2",
            "object_refs": [phish["id"], amber["id"]],
            "created_by_ref": ng,
            "object_marking_refs": [TLP2["green"]],
        }
        status = await submit(hub, "ng-cert-submit", [amber, red, phish, note])
        assert status.success_count == 4

        hostile, reader, other = Browser(hub), Browser(hub), Browser(hub)
        await hostile.log_in("sn-cert-read")
        await reader.log_in("gh-cert-read")
        await other.log_in("gh-cert-read2")

        never = f"indicator--{uuid.uuid4()}"
        nothing = await hostile.get(f"/console/objects/{never}")
        assert nothing.status == 404
        for secret in (amber, red):
            for suffix in ("", "/json", "?version=1", "/json?version=2"):
                answer = await hostile.get(f"/console/objects/{secret['id']}{suffix}")
                control = await hostile.get(f"/console/objects/{never}{suffix}")
                assert answer.status == control.status == 404
                assert refusal(answer.text, secret["id"]) == refusal(control.text, never)
        # TLP:RED addressed to one account of CERT-GH: its other account does not see it.
        refused = await reader.get(f"/console/objects/{red['id']}")
        assert refused.status == 404
        assert refusal(refused.text, red["id"]) == refusal(
            (await reader.get(f"/console/objects/{never}")).text, never
        )
        assert (await other.get(f"/console/objects/{red['id']}")).status == 200
        assert (await reader.get(f"/console/objects/{amber['id']}")).status == 200

        # Nothing anywhere the hostile reader can go names the AMBER or RED object or the
        # victim's address; it reads the pseudonym instead.
        texts = await pages_of(hub, hostile, "sn-cert-read")
        assert note["id"] in texts and phish["id"] in texts
        for where, text in texts.items():
            for secret in (amber["id"], red["id"], VICTIM, "amber.example", "red.example"):
                assert secret not in text, (where, secret)
        assert "@pseudonymised.invalid" in texts[phish["id"]]
        # The note refers to the phishing indicator only, as far as this reader can tell.
        refers = texts[note["id"]].split("Refers to</h2>", 1)[1].split("<h2>", 1)[0]
        assert listed(refers) == [phish["id"]]
        # Versions guessed by number show only this object's own versions, else not found.
        shown = set()
        for seq in range(1, 40):
            answer = await hostile.get(f"/console/objects/{phish['id']}?version={seq}")
            assert answer.status in (200, 404)
            if answer.status == 200:
                shown.add(seq)
                assert VICTIM not in answer.text and amber["id"] not in answer.text
        assert len(shown) == 1

        # The console lists exactly what TAXII gives each reader, collection by collection.
        for browser, username in ((hostile, "sn-cert-read"), (reader, "gh-cert-read")):
            for alias in ("public", "region-west-africa", f"member-{username.split('-read')[0]}"):
                console = await every_page(browser, f"/console/collections/{alias}/")
                taxii = [o["id"] for o in await read_all(hub, alias, username)]
                assert sorted(console) == sorted(set(taxii)), (username, alias)
            unreadable = "member-ng-cert" if username == "sn-cert-read" else "member-sn-cert"
            answer = await browser.get(f"/console/collections/{unreadable}/")
            missing = await browser.get("/console/collections/no-such-feed/")
            assert answer.status == missing.status == 404
            assert re.sub('[a-z-]+/"', "", answer.text) == re.sub('[a-z-]+/"', "", missing.text)
