"""The sender's other rules, as recipients see them over TAXII, on both buses: embargo,
revocation, redaction by granular markings, pseudonymisation, anonymity, dependencies."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import stix2

from hub.api.keys import SIGNING_KEYS
from hub.signing.provenance import EXTENSION_ID
from hub.signing.verify import Verifier, hub_keys
from tests.hubs import member_identity, read_all, running_hub, submit, visible_to
from tests.policy.test_sharing import feed_headers
from tests.stixdata import TLP2, incident_report, shared_objects

CUSTOM = "marking-definition--7a1c3c2e-5b4d-4f6a-9e8d-2c1b0a9f8e7d"


def hub_with(bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str, **sharing: Any):
    return running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}.", sharing=sharing
    )


def ids_in(feeds: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {o["id"] for objects in feeds.values() for o in objects}


def indicator(identity: str, marking: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": "2026-11-20T08:00:00.000Z",
        "modified": "2026-11-20T08:00:00.000Z",
        "name": "Phishing sender",
        "pattern": "[ipv4-addr:value = '203.0.113.9']",
        "pattern_type": "stix",
        "valid_from": "2026-11-20T08:00:00Z",
        "created_by_ref": identity,
        "object_marking_refs": [marking],
        **extra,
    }


async def test_an_embargo_holds_content_from_everyone_but_the_sender_until_it_ends(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    rules = {"ke-cirt": {"embargo": "PT4S"}}
    async with hub_with(bus_url, tmp_path, demo_secrets, unique, **rules) as hub:
        report = incident_report(member_identity(hub, "ke-cirt"), "KE-CIRT/CC", TLP2["green"])
        ids = {o["id"] for o in report}
        sent = time.monotonic()
        status = await submit(hub, "ke-cirt-submit", report)
        assert status.success_count == 4  # accepted now; delivered to others later
        assert ids_in(await visible_to(hub, "ke-cirt-read")) == ids
        assert ids_in(await visible_to(hub, "rw-csirt-read")) == set()
        assert await feed_headers(hub, "region-east-africa") == []  # not on the bus either
        while ids_in(await visible_to(hub, "rw-csirt-read")) != ids:
            assert time.monotonic() - sent < 30, "the embargo was never lifted"
            await asyncio.sleep(0.5)
        assert time.monotonic() - sent >= 3.5, "released before the embargo ended"
        assert ids_in(await visible_to(hub, "tz-cert-read")) == ids
        assert ids_in(await visible_to(hub, "ng-cert-read")) == set()  # other region
        # Released once: one record per object on the region's feed.
        assert len(await feed_headers(hub, "region-east-africa")) == 4


async def test_a_revocation_reaches_everyone_who_had_the_object_even_under_stricter_rules(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    rules = {"gh-cert": {"recipients": {"amber": ["member:ng-cert"]}}}
    async with hub_with(bus_url, tmp_path, demo_secrets, unique, **rules) as hub:
        first = indicator(member_identity(hub, "gh-cert"), TLP2["amber"])
        assert (await submit(hub, "gh-cert-submit", [first])).success_count == 1
        assert first["id"] in ids_in(await visible_to(hub, "ng-cert-read"))
        # The sender now marks it RED (named to nobody) and revokes it.
        revoked = dict(
            first,
            modified="2026-11-21T08:00:00.000Z",
            revoked=True,
            object_marking_refs=[TLP2["red"]],
        )
        assert (await submit(hub, "gh-cert-submit", [revoked])).success_count == 1
        latest = (await visible_to(hub, "ng-cert-read"))["member-ng-cert"]
        assert [o for o in latest if o["id"] == first["id"]] == [revoked]
        for reader in ("sn-cert-read", "ke-cirt-read", "tz-cert-read"):
            assert first["id"] not in ids_in(await visible_to(hub, reader)), reader


async def test_a_revocation_of_shared_content_reaches_the_region_feed_that_carried_it(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with hub_with(bus_url, tmp_path, demo_secrets, unique) as hub:
        first = indicator(member_identity(hub, "ke-cirt"), TLP2["green"])
        assert (await submit(hub, "ke-cirt-submit", [first])).success_count == 1
        assert [o["id"] for o in (await visible_to(hub, "rw-csirt-read"))["region-east-africa"]]
        # Revoked, and now AMBER named to nobody: the region's readers must still learn it.
        revoked = dict(
            first,
            modified="2026-11-21T08:00:00.000Z",
            revoked=True,
            object_marking_refs=[TLP2["amber"]],
        )
        assert (await submit(hub, "ke-cirt-submit", [revoked])).success_count == 1
        for reader in ("rw-csirt-read", "tz-cert-read"):
            feeds = await visible_to(hub, reader)
            latest = [o for o in feeds["region-east-africa"] if o["id"] == first["id"]]
            assert latest == [revoked], reader  # the latest version, where the reader looks
            assert first["id"] not in ids_in(
                {k: v for k, v in feeds.items() if k.startswith("member-")}
            )
        assert first["id"] not in ids_in(await visible_to(hub, "ng-cert-read"))


async def test_granular_markings_take_properties_from_recipients_not_entitled_to_them(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    rules = {
        "ng-cert": {
            "recipients": {"amber": ["member:gh-cert"]},
            "markings": {CUSTOM: ["member:sn-cert"]},
        }
    }
    async with hub_with(bus_url, tmp_path, demo_secrets, unique, **rules) as hub:
        obj = indicator(
            member_identity(hub, "ng-cert"),
            TLP2["green"],
            description="Seen on the tax portal's mail relay",
            labels=["phishing"],
            granular_markings=[
                {"marking_ref": TLP2["amber"], "selectors": ["description"]},
                {"marking_ref": CUSTOM, "selectors": ["labels"]},
                {"marking_ref": TLP2["red"], "selectors": ["name"]},
            ],
        )
        assert (await submit(hub, "ng-cert-submit", [obj])).success_count == 1
        gh = (await visible_to(hub, "gh-cert-read"))["member-gh-cert"]
        sn = (await visible_to(hub, "sn-cert-read"))["member-sn-cert"]
        assert [set(o) for o in gh] == [set(obj) - {"labels", "name"}]
        assert [set(o) for o in sn] == [set(obj) - {"description", "name"}]
        assert gh[0]["description"] == obj["description"] and sn[0]["labels"] == ["phishing"]
        # Selectors of what was withheld go too; the rest stay as the sender marked them.
        assert gh[0]["granular_markings"] == [obj["granular_markings"][0]]
        assert sn[0]["granular_markings"] == [obj["granular_markings"][1]]
        # Not uniform across West Africa, so the region feed does not carry it at all.
        assert (await visible_to(hub, "gh-cert-read"))["region-west-africa"] == []
        ng = await visible_to(hub, "ng-cert-read")
        assert ng["member-ng-cert"] == [obj]  # the sender keeps its own, whole
        # Each redacted variant is signed by the hub as delivered, and says it was redacted.
        verifier = Verifier(hub_keys(hub.app[SIGNING_KEYS].jwks()))
        for reader, alias in (
            ("gh-cert-read", "member-gh-cert"),
            ("sn-cert-read", "member-sn-cert"),
        ):
            [delivered] = await read_all(hub, alias, reader)
            assert verifier.verify(delivered).valid, reader
            assert delivered["extensions"][EXTENSION_ID]["redacted"] is True
            tampered = dict(delivered, name="put back")
            assert not verifier.verify(tampered).valid


def phishing_report(identity: str, victim: str) -> list[dict[str, Any]]:
    """A victim's mailbox and account, and an indicator that names the mailbox."""
    email = stix2.EmailAddress(value=victim, display_name="A. Victim")
    account = stix2.UserAccount(user_id="avictim", account_login="avictim", credential="hunter2")
    marks = [TLP2["green"]]
    sighting = stix2.ObservedData(
        id=f"observed-data--{uuid.uuid4()}",
        first_observed="2026-11-20T08:00:00Z",
        last_observed="2026-11-20T08:00:00Z",
        number_observed=1,
        object_refs=[email.id, account.id],
        created_by_ref=identity,
        object_marking_refs=marks,
    )
    pattern = f"[email-addr:value = '{victim}']"
    found = indicator(identity, TLP2["green"], pattern=pattern)
    objects = [orjson.loads(o.serialize()) for o in (email, account, sighting)] + [found]
    for obj in objects[:2]:
        obj["object_marking_refs"] = marks
    return objects


async def test_pseudonyms_are_stable_across_submissions_and_senders_and_hide_the_victim(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    rules = {m: {"pseudonymise": ["email-addr", "user-account"]} for m in ("ng-cert", "sn-cert")}
    async with hub_with(bus_url, tmp_path, demo_secrets, unique, **rules) as hub:
        victim = "minister.office@finance.example.gov"
        first = phishing_report(member_identity(hub, "ng-cert"), victim)
        second = phishing_report(member_identity(hub, "sn-cert"), victim)
        # The same mailbox written in capitals is the same mailbox: same pseudonym.
        second[-1]["pattern"] = f"[email-addr:value = '{victim.upper()}']"
        assert (await submit(hub, "ng-cert-submit", first)).success_count == 4
        assert (await submit(hub, "sn-cert-submit", second)).success_count == 4
        got = (await visible_to(hub, "gh-cert-read"))["region-west-africa"]
        raw = orjson.dumps(got).decode()
        for secret in (victim, "minister.office", "avictim", "hunter2", first[0]["id"]):
            assert secret.lower() not in raw.lower()
        emails = [o for o in got if o["type"] == "email-addr"]
        accounts = [o for o in got if o["type"] == "user-account"]
        # One mailbox, one pseudonym and one id, whoever sent it.
        assert len({o["value"] for o in emails}) == 1 and len({o["id"] for o in emails}) == 1
        assert len({o["user_id"] for o in accounts}) == 1 and "credential" not in accounts[0]
        pseudonym, email_id = emails[0]["value"], emails[0]["id"]
        assert pseudonym.endswith("@pseudonymised.invalid")
        observed = [o for o in got if o["type"] == "observed-data"]
        assert all(email_id in o["object_refs"] for o in observed)
        patterns = {o["pattern"] for o in got if o["type"] == "indicator"}
        assert patterns == {f"[email-addr:value = '{pseudonym}']"}
        # The senders keep the originals in their own feeds.
        own = (await visible_to(hub, "ng-cert-read"))["member-ng-cert"]
        assert victim in orjson.dumps(own).decode()


async def test_an_anonymous_sender_appears_as_the_hub_and_nowhere_by_name(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with hub_with(
        bus_url, tmp_path, demo_secrets, unique, **{"tz-cert": {"anonymous": True}}
    ) as hub:
        identity = member_identity(hub, "tz-cert")
        report = incident_report(identity, "TZ-CERT", TLP2["green"])
        assert (await submit(hub, "tz-cert-submit", report)).success_count == 4
        got = (await visible_to(hub, "ke-cirt-read"))["region-east-africa"]
        hub_identity = hub.settings.federation.hub.identity
        assert {o["id"] for o in got} == {o["id"] for o in report[1:]}  # not its identity
        assert all(o["created_by_ref"] == hub_identity for o in got)
        sighting = next(o for o in got if o["type"] == "sighting")
        assert sighting["where_sighted_refs"] == [hub_identity]
        for reader in ("ke-cirt-read", "rw-csirt-read"):
            raw = orjson.dumps(await visible_to(hub, reader)).decode()
            assert identity not in raw and "tz-cert" not in raw and "TZ-CERT" not in raw
        headers = await feed_headers(hub, "region-east-africa")
        assert {h["submitter"] for h in headers} == {b"anonymous"}
        assert all("status-id" not in h for h in headers)


async def test_relationships_to_hidden_objects_are_not_delivered_and_nothing_hidden_leaks(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    """OASIS's own walkthrough bundle: a GREEN report whose campaign the sender keeps AMBER."""
    objects = shared_objects(
        "oasis-cti-documentation-examples/threat-actor-leveraging-attack-patterns-and-malware.json"
    )
    marked = []
    hidden = next(o["id"] for o in objects if o["type"] == "threat-actor")
    for obj in objects:
        level = "amber" if obj["id"] == hidden else "green"
        marked.append({**obj, "object_marking_refs": [TLP2[level]]})
    async with hub_with(bus_url, tmp_path, demo_secrets, unique) as hub:
        status = await submit(hub, "sn-cert-submit", marked)
        assert status.failure_count == 0, status.failures
        got = (await visible_to(hub, "ng-cert-read"))["region-west-africa"]
        raw = orjson.dumps(got).decode()
        assert hidden not in raw  # neither the object nor any reference to it
        delivered = {o["id"] for o in got}
        for rel in (o for o in marked if o["type"] == "relationship"):
            ends = {rel["source_ref"], rel["target_ref"]}
            assert (rel["id"] in delivered) == (hidden not in ends)
        assert delivered == {o["id"] for o in marked} - {hidden} - {
            o["id"]
            for o in marked
            if o["type"] == "relationship" and hidden in (o["source_ref"], o["target_ref"])
        }


async def test_a_revocation_of_red_content_reaches_only_the_accounts_that_had_it(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        sharing={"rw-csirt": {"recipients": {"red": ["account:ke-cirt-read"]}}},
        extra_readers={"ke-cirt-analyst": "ke-cirt"},
    ) as hub:
        first = indicator(member_identity(hub, "rw-csirt"), TLP2["red"])
        assert (await submit(hub, "rw-csirt-submit", [first])).success_count == 1
        # Revoked under a marking that now names nobody: it still reaches who had it, only.
        revoked = dict(
            first,
            modified="2026-11-21T08:00:00.000Z",
            revoked=True,
            object_marking_refs=[TLP2["amber+strict"]],
        )
        assert (await submit(hub, "rw-csirt-submit", [revoked])).success_count == 1
        named = (await visible_to(hub, "ke-cirt-read"))["member-ke-cirt"]
        assert [o for o in named if o["id"] == first["id"]] == [revoked]
        assert first["id"] not in ids_in(await visible_to(hub, "ke-cirt-analyst"))
