"""Every row of the sharing table, as members' reader accounts see it over TAXII, on both buses.

ngCERT (West Africa) shares five incident reports, one per TLP level, under rules that name
CERT-GH and all of East Africa for AMBER, CERT-SN alone for AMBER+STRICT, and one reader
account of KE-CIRT for RED. KE-CIRT has a second reader account the RED rule does not name.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from hub.bus.url import open_bus
from tests.hubs import RunningHub, member_identity, running_hub, submit, visible_to
from tests.stixdata import TLP1_WHITE, TLP2, incident_report

NG_RULES = {
    "recipients": {
        "amber": ["member:gh-cert", "region:east-africa"],
        "amber+strict": ["member:sn-cert"],
        "red": ["account:ke-cirt-read"],
    }
}
READERS = [
    "ng-cert-read",
    "gh-cert-read",
    "sn-cert-read",
    "ke-cirt-read",
    "ke-cirt-analyst",
    "rw-csirt-read",
    "tz-cert-read",
]


async def where_seen(hub: RunningHub, ids: set[str]) -> dict[str, dict[str, set[str]]]:
    """reader → object id → the collections in which that reader sees it."""
    seen: dict[str, dict[str, set[str]]] = {}
    for reader in READERS:
        per: dict[str, set[str]] = {}
        for alias, objects in (await visible_to(hub, reader)).items():
            for obj in objects:
                if obj["id"] in ids:
                    per.setdefault(obj["id"], set()).add(alias)
        seen[reader] = per
    return seen


async def feed_headers(hub: RunningHub, alias: str) -> list[dict[str, bytes]]:
    """The headers of every record on a feed topic, read straight from the bus."""
    settings = hub.settings
    bus = open_bus(settings.bus_url, settings.data_dir)
    await bus.start()
    try:
        topic = settings.topics.feed(alias)
        reader = bus.reader([topic], {tp: 0 for tp in await bus.end_offsets([topic])})
        await reader.start()
        records = []
        # Kafka's end offsets count transaction markers too: read until the log goes quiet.
        while batch := await reader.fetch(timeout=2.0):
            records += batch
        await reader.stop()
    finally:
        await bus.stop()
    return [dict(r.headers) for r in records]


async def test_each_tlp_level_reaches_exactly_whom_the_table_and_the_rules_say(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        sharing={"ng-cert": NG_RULES},
        extra_readers={"ke-cirt-analyst": "ke-cirt"},
    ) as hub:
        identity = member_identity(hub, "ng-cert")
        reports = {
            level: incident_report(identity, "ngCERT", marking)[1:]  # without the identity
            for level, marking in [
                ("clear", TLP2["clear"]),
                ("white", TLP1_WHITE),
                ("green", TLP2["green"]),
                ("amber", TLP2["amber"]),
                ("amber+strict", TLP2["amber+strict"]),
                ("red", TLP2["red"]),
            ]
        }
        status = await submit(hub, "ng-cert-submit", [o for r in reports.values() for o in r])
        assert status.success_count == 18, status.failures
        ids = {o["id"] for r in reports.values() for o in r}
        seen = await where_seen(hub, ids)

        def where(reader: str, level: str) -> set[str]:
            found = [seen[reader].get(o["id"], set()) for o in reports[level]]
            assert all(f == found[0] for f in found), f"{reader} sees {level} unevenly: {found}"
            return found[0]

        own = {"member-ng-cert"}
        for level in ("clear", "white"):
            assert where("ng-cert-read", level) == {"public"} | own
            for reader in READERS[1:]:
                assert where(reader, level) == {"public"}, reader
        assert where("ng-cert-read", "green") == {"region-west-africa"} | own
        for reader in ("gh-cert-read", "sn-cert-read"):
            assert where(reader, "green") == {"region-west-africa"}
        for reader in ("ke-cirt-read", "ke-cirt-analyst", "rw-csirt-read", "tz-cert-read"):
            assert where(reader, "green") == set(), reader
        expected_amber = {
            "ng-cert-read": own,
            "gh-cert-read": {"member-gh-cert"},
            "sn-cert-read": set(),
            "ke-cirt-read": {"member-ke-cirt"},
            "ke-cirt-analyst": {"member-ke-cirt"},
            "rw-csirt-read": {"member-rw-csirt"},
            "tz-cert-read": {"member-tz-cert"},
        }
        assert {r: where(r, "amber") for r in READERS} == expected_amber
        expected_strict = {r: set() for r in READERS} | {
            "ng-cert-read": own,
            "sn-cert-read": {"member-sn-cert"},
        }
        assert {r: where(r, "amber+strict") for r in READERS} == expected_strict
        expected_red = {r: set() for r in READERS} | {
            "ng-cert-read": own,
            "ke-cirt-read": {"member-ke-cirt"},
        }
        assert {r: where(r, "red") for r in READERS} == expected_red

        # AMBER+STRICT and RED are flagged as not for onward sharing where they are delivered.
        records = await feed_headers(hub, "member-sn-cert")
        assert records and all(h.get("onward-sharing") == b"no" for h in records)
        ke = await feed_headers(hub, "member-ke-cirt")
        red = [h for h in ke if h.get("accounts")]
        assert len(red) == 3 and all(h["accounts"] == b"ke-cirt-read" for h in red)
        assert all(h.get("onward-sharing") is None for h in ke if not h.get("accounts"))


async def test_green_to_all_members_fills_every_region_feed(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        sharing={"tz-cert": {"recipients": {"green": ["all"]}}},
    ) as hub:
        report = incident_report(member_identity(hub, "tz-cert"), "TZ-CERT", TLP2["green"])
        status = await submit(hub, "tz-cert-submit", report)
        assert status.success_count == 4
        for reader, alias in (
            ("ng-cert-read", "region-west-africa"),
            ("rw-csirt-read", "region-east-africa"),
        ):
            got = (await visible_to(hub, reader))[alias]
            assert {o["id"] for o in got} == {o["id"] for o in report}


def statement(text: str, *marks: str) -> dict[str, object]:
    """A statement marking definition of ngCERT's, with the TLP `marks` given (none: none)."""
    obj: dict[str, object] = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": f"marking-definition--{uuid.uuid4()}",
        "created": "2026-11-20T08:00:00.000Z",
        "definition_type": "statement",
        "definition": {"statement": text},
    }
    return {**obj, "object_marking_refs": list(marks)} if marks else obj


def marked(obj: dict[str, object], marking_id: str) -> dict[str, object]:
    refs = obj.get("object_marking_refs")
    return {**obj, "object_marking_refs": [*(refs if isinstance(refs, list) else []), marking_id]}


async def test_a_marking_definition_reaches_whoever_receives_what_it_marks(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    """Unmarked, a statement goes where the objects it marks go (and nowhere else); marked
    TLP:RED, what it marks goes only where it may go too."""
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        sharing={"ng-cert": NG_RULES},
        extra_readers={"ke-cirt-analyst": "ke-cirt"},
    ) as hub:
        identity = member_identity(hub, "ng-cert")
        terms = statement("Copyright ngCERT; share under the FIRST TLP only.")
        secret = statement("Operation BLUE: named accounts only.", TLP2["red"])
        green = [
            marked(o, terms["id"]) for o in incident_report(identity, "ngCERT", TLP2["green"])[1:]
        ]
        strict = [
            marked(o, terms["id"])
            for o in incident_report(identity, "ngCERT", TLP2["amber+strict"])[1:]
        ]
        gated_green = [
            marked(o, secret["id"]) for o in incident_report(identity, "ngCERT", TLP2["green"])[1:]
        ]
        gated_red = [
            marked(o, secret["id"]) for o in incident_report(identity, "ngCERT", TLP2["red"])[1:]
        ]
        sent = [terms, secret, *green, *strict, *gated_green, *gated_red]
        status = await submit(hub, "ng-cert-submit", sent)
        assert status.success_count == len(sent), status.failures
        seen = await where_seen(hub, {o["id"] for o in sent})

        def readers_of(objects: list[dict[str, object]]) -> dict[str, set[str]]:
            out: dict[str, set[str]] = {}
            for reader in READERS[1:]:
                found = set().union(*(seen[reader].get(str(o["id"]), set()) for o in objects))
                if found:
                    out[reader] = found
            return out

        # The statement: exactly in the collections of what it marks, for each reader.
        assert readers_of([terms]) == readers_of(green + strict)
        assert readers_of([terms]) == {
            "gh-cert-read": {"region-west-africa"},
            "sn-cert-read": {"region-west-africa", "member-sn-cert"},
        }
        # The TLP:RED statement reaches its named account only, and so does what it marks:
        # the GREEN objects it marks reach no one else, the RED ones their named account.
        assert readers_of([secret]) == {"ke-cirt-read": {"member-ke-cirt"}}
        assert readers_of(gated_green) == {}
        assert readers_of(gated_red) == {"ke-cirt-read": {"member-ke-cirt"}}
