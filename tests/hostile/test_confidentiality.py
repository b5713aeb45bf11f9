"""A member learns nothing of who received what, nor that TLP:RED it may not read exists.

Over real HTTP on both buses. ngCERT shares an indicator TLP:AMBER with KE-CIRT and another
TLP:RED with one KE-CIRT account; CERT-SN, hostile, posts revocations under those ids:
whatever the hub does with them, CERT-SN's explanation is the one it gets for revoking an id
nobody ever sent. And a TLP:RED report does not show in the major-incident alerts of the
reader accounts it was not addressed to.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.correlate.alerts import ALERT_PROPERTY
from hub.federation import Federation, FederationError, parse_federation
from tests.conftest import ROOT
from tests.hubs import RunningHub, member_identity, read_all, running_hub, submit, visible_to
from tests.stixdata import TLP2, indicator

SHARING = {
    "ng-cert": {"recipients": {"amber": ["member:ke-cirt"], "red": ["account:ke-cirt-read"]}},
    # The hostile member's own rules share AMBER with nobody.
    "sn-cert": {"recipients": {"amber": []}},
}


def basic(hub: RunningHub, username: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(username, hub.password(username))}


async def explanation(hub: RunningHub, username: str, object_id: str) -> tuple[int, Any]:
    url = f"{hub.base_url}/api/v1/explain/{object_id}"
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers=basic(hub, username)) as response,
    ):
        return response.status, await response.json(content_type=None)


async def explained(hub: RunningHub, username: str, object_id: str, versions: int) -> Any:
    """The explanation once `versions` decisions are in the view (the chainer runs apart)."""
    async with asyncio.timeout(30):
        while True:
            status, body = await explanation(hub, username, object_id)
            if status == 200 and len(body["decisions"]) >= versions:
                return body
            await asyncio.sleep(0.2)


def revocation(original: dict[str, Any], identity: str, object_id: str) -> dict[str, Any]:
    """A later version of `original` under `object_id`, revoked, by `identity`, TLP:AMBER."""
    return {
        **original,
        "id": object_id,
        "modified": "2026-11-29T09:00:00.000Z",
        "revoked": True,
        "created_by_ref": identity,
        "object_marking_refs": [TLP2["amber"]],
    }


def routing_of(decision: dict[str, Any]) -> dict[str, Any]:
    """What a decision says about recipients, whatever object it is about."""
    return {"verdicts": decision["verdicts"], "deliveries": decision["deliveries"]}


async def test_explain_shows_a_hostile_reviser_nothing_of_the_real_senders_recipients(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        sharing=SHARING,
        extra_readers={"ke-cirt-read2": "ke-cirt"},
    ) as hub:
        ng, sn = member_identity(hub, "ng-cert"), member_identity(hub, "sn-cert")
        amber = indicator(ng, "[domain-name:value = 'c2.amber.example']", TLP2["amber"])
        red = indicator(ng, "[domain-name:value = 'c2.red.example']", TLP2["red"])
        assert (await submit(hub, "ng-cert-submit", [amber, red])).success_count == 2
        owner = await explained(hub, "ng-cert-read", red["id"], 1)
        # The sender sees its own routing, the RED account it named included.
        (decision,) = owner["decisions"]
        assert {"collection": "member-ke-cirt", "accounts": ["ke-cirt-read"]} in [
            {k: d[k] for k in ("collection", "accounts")} for d in decision["deliveries"]
        ]

        control = f"indicator--{uuid.uuid4()}"  # an id nobody ever sent
        hostile = [
            revocation(amber, sn, amber["id"]),
            revocation(red, sn, red["id"]),
            revocation(amber, sn, control),
        ]
        status = await submit(hub, "sn-cert-submit", hostile)
        refused = {f["id"] for f in status.failures}
        seen = {}
        for obj in hostile:
            if obj["id"] in refused:
                # A hub that refuses the revocation has no decision of CERT-SN's to explain.
                code, body = await explanation(hub, "sn-cert-read", obj["id"])
                assert code == 404, body
            else:
                (seen[obj["id"]],) = (await explained(hub, "sn-cert-read", obj["id"], 1))[
                    "decisions"
                ]
        if control in seen:
            for object_id in (amber["id"], red["id"]):
                if object_id in seen:
                    assert routing_of(seen[object_id]) == routing_of(seen[control]), object_id
        for decision in seen.values():
            ke = next(v for v in decision["verdicts"] if v["member"] == "ke-cirt")
            assert not ke["allowed"], decision
            assert "ke-cirt-read" not in str(decision)
            assert "member-ke-cirt" not in str(decision)


async def test_the_owner_still_sees_where_its_own_revocation_went(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    """A legitimate revocation reaches whoever had the object, and its sender is told so:
    the RED account it named itself, and the member it shared with."""
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        sharing=SHARING,
        extra_readers={"ke-cirt-read2": "ke-cirt"},
    ) as hub:
        ng = member_identity(hub, "ng-cert")
        red = indicator(ng, "[domain-name:value = 'c2.red.example']", TLP2["red"])
        assert (await submit(hub, "ng-cert-submit", [red])).success_count == 1
        # Revoked as AMBER+STRICT, which ngCERT's rules give to nobody.
        revoked = {**revocation(red, ng, red["id"]), "object_marking_refs": [TLP2["amber+strict"]]}
        assert (await submit(hub, "ng-cert-submit", [revoked])).success_count == 1
        _, later = (await explained(hub, "ng-cert-read", red["id"], 2))["decisions"]
        ke = next(v for v in later["verdicts"] if v["member"] == "ke-cirt")
        assert ke["allowed"] and ke["rule"] == "revocation", later
        assert {"collection": "member-ke-cirt", "accounts": ["ke-cirt-read"]} in [
            {k: d[k] for k in ("collection", "accounts")} for d in later["deliveries"]
        ]


def one_member_is_a_major_incident_at_two(federation: Federation) -> Federation:
    rule = {"scope": "all", "min_members": 2, "min_countries": 1, "window": "PT1H"}
    return replace(federation, correlation={"rules": [rule]})


async def test_a_red_report_does_not_count_in_the_alerts_of_accounts_it_was_not_for(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        sharing={"gh-cert": {"recipients": {"red": ["account:ng-cert-read"]}}},
        extra_readers={"ng-cert-read2": "ng-cert"},
        adjust=one_member_is_a_major_incident_at_two,
    ) as hub:
        pattern = "[domain-name:value = 'c2.badcorp.example']"
        sent = [
            ("ng-cert", TLP2["green"]),
            ("gh-cert", TLP2["red"]),  # for ng-cert-read alone
            ("sn-cert", TLP2["green"]),
        ]
        for member, marking in sent:
            report = indicator(member_identity(hub, member), pattern, marking)
            assert (await submit(hub, f"{member}-submit", [report])).success_count == 1
        deadline = time.monotonic() + 30
        while not await read_all(hub, "alerts", "ng-cert-read2", version="all"):
            assert time.monotonic() < deadline, "no alert for ngCERT"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # the correlator has nothing more to say
        alerts = await read_all(hub, "alerts", "ng-cert-read2", version="all")
        # ngCERT and CERT-SN reported it where ng-cert-read2 may know; CERT-GH did not.
        assert [a[ALERT_PROPERTY]["members"] for a in alerts] == [2], alerts


def test_a_member_account_cannot_be_an_operator() -> None:
    """Metrics and the dashboard count deliveries per collection (`member-<id>` included)
    and show every member's alerts: a member's account with `operate` would see who
    received what. The federation file says so, naming the field."""
    text = (ROOT / "examples" / "federation.yaml").read_text()
    text = text.replace(
        "username: ke-cirt-read\n        roles: [read]",
        "username: ke-cirt-read\n        roles: [read, operate]",
    )
    assert "roles: [read, operate]" in text
    with pytest.raises(FederationError) as refused:
        parse_federation(text, "fed.yaml")
    line = next(i + 1 for i, t in enumerate(text.splitlines()) if "roles: [read, operate]" in t)
    assert (
        f"fed.yaml:{line}: members[3].accounts[1].roles[1]: 'operate' is for the hub's own"
        in str(refused.value)
    )


def note(identity: str, refs: list[str], marking: str) -> dict[str, Any]:
    return {
        "type": "note",
        "spec_version": "2.1",
        "id": f"note--{uuid.uuid4()}",
        "created": "2026-11-29T08:30:00.000Z",
        "modified": "2026-11-29T08:30:00.000Z",
        "content": "Both seen on the tax portal's front-end servers.",
        "object_refs": refs,
        "created_by_ref": identity,
        "object_marking_refs": [marking],
    }


async def test_a_reference_does_not_show_a_red_object_to_the_accounts_it_was_not_for(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    """Rwanda CSIRT sends TLP:RED to ke-cirt-read alone, and TLP:AMBER notes about it to all
    of East Africa (in the same submission, and later): KE-CIRT's other reader gets the notes
    without the reference, and so does its RED reader (a note reaches every reader)."""
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        extra_readers={"ke-cirt-read2": "ke-cirt"},
    ) as hub:
        rw = member_identity(hub, "rw-csirt")
        red = indicator(rw, "[domain-name:value = 'c2.red.example']", TLP2["red"])
        green = indicator(rw, "[domain-name:value = 'c2.green.example']", TLP2["green"])
        first = note(rw, [red["id"], green["id"]], TLP2["amber"])
        assert (await submit(hub, "rw-csirt-submit", [red, green, first])).success_count == 3
        later = note(rw, [red["id"], green["id"]], TLP2["amber"])
        assert (await submit(hub, "rw-csirt-submit", [later])).success_count == 1
        for username in ("ke-cirt-read2", "ke-cirt-read"):
            feeds = await visible_to(hub, username)
            notes = {
                o["id"]: o["object_refs"]
                for objs in feeds.values()
                for o in objs
                if o["type"] == "note"
            }
            assert notes == {first["id"]: [green["id"]], later["id"]: [green["id"]]}, username
        assert red["id"] not in str(await visible_to(hub, "ke-cirt-read2"))
        assert red["id"] in str(await visible_to(hub, "ke-cirt-read"))  # the RED itself


async def test_explain_does_not_tell_a_sender_who_holds_another_members_object(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    """CERT-SN received ngCERT's AMBER indicator, KE-CIRT did too, CERT-TZ did not. CERT-SN
    sends a note about it to both: KE-CIRT gets the note, CERT-TZ cannot (a note without
    the object it is about). CERT-SN's explanation must not show that difference: it would
    learn who else ngCERT shared with."""
    sharing = {
        "ng-cert": {"recipients": {"amber": ["member:ke-cirt", "member:sn-cert"]}},
        "sn-cert": {"recipients": {"amber": ["member:ke-cirt", "member:tz-cert"]}},
    }
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}.", sharing=sharing
    ) as hub:
        ng, sn = member_identity(hub, "ng-cert"), member_identity(hub, "sn-cert")
        amber = indicator(ng, "[domain-name:value = 'c2.amber.example']", TLP2["amber"])
        assert (await submit(hub, "ng-cert-submit", [amber])).success_count == 1
        note = {
            "type": "note",
            "spec_version": "2.1",
            "id": f"note--{uuid.uuid4()}",
            "created": "2026-11-29T10:00:00.000Z",
            "modified": "2026-11-29T10:00:00.000Z",
            "content": "Seen here too, on two mail gateways.",
            "object_refs": [amber["id"]],
            "created_by_ref": sn,
            "object_marking_refs": [TLP2["amber"]],
        }
        assert (await submit(hub, "sn-cert-submit", [note])).success_count == 1

        # What was delivered is as before: only the holder of the indicator gets the note.
        ke = {o["id"] for objs in (await visible_to(hub, "ke-cirt-read")).values() for o in objs}
        tz = {o["id"] for objs in (await visible_to(hub, "tz-cert-read")).values() for o in objs}
        assert note["id"] in ke and note["id"] not in tz

        (decision,) = (await explained(hub, "sn-cert-read", note["id"], 1))["decisions"]
        verdicts = {v["member"]: v for v in decision["verdicts"]}

        def anonymous(member: str) -> str:
            """The member's verdict with its own name taken out."""
            return str({k: v for k, v in verdicts[member].items() if k != "member"}).replace(
                member, "MEMBER"
            )

        assert anonymous("ke-cirt") == anonymous("tz-cert")
        assert (
            verdicts["tz-cert"]["allowed"]
            and "other members sent" in (verdicts["tz-cert"]["reason"])
        )
        assert [d["collection"] for d in decision["deliveries"]] == ["member-sn-cert"]
