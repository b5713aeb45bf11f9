"""MISP import: misp-stix's own test events, converted, marked and sent through a real hub.

No MISP server is installable here, so the REST path is tested against a small aiohttp
server that answers `/events/restSearch` and `/events/view/{id}` with the same files.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from taxii2client.v21 import Server, as_pages

from connectors.misp import commands
from connectors.misp.conversion import Conversion, convert_event, merged, tlp2_definition
from connectors.misp.sharing import table, tlp_name
from connectors.misp.sources import MispSourceError, events_in, read_file
from hub.signing.provenance import without_extension
from hub.stix.markings import Tlp, tlp_by_marking_id
from hub.stix.predefined import predefined
from tests.conftest import TESTDATA, free_port
from tests.hubs import RunningHub, running_hub, submit
from tests.stixdata import TLP2, oasis_errors

MISP_TESTS = TESTDATA / "misp-stix-tests"
CONVERTED = TESTDATA / "misp-stix-converted"
OASIS_TLP2 = {
    o["id"]: o
    for o in json.loads((TESTDATA / "tlp2/tlp2_all_markings_bundle.json").read_text())["objects"]
}
MISP_ORG = "identity--a0c22599-9e58-4da4-96ac-7051603fa951"
KEY = "misp-automation-key-for-tests-0123456789"


def shared_events(name: str) -> list[dict[str, Any]]:
    """The events of one of misp-stix's test files, as `{"Event": {...}}` copies."""
    return [{"Event": e.data} for e in read_file(MISP_TESTS / name)]


def marked(event: dict[str, Any], *tags: str, distribution: str | None = None) -> dict[str, Any]:
    """The event with these tags and this distribution added (the input is not changed)."""
    event = copy.deepcopy(event)
    event["Event"]["Tag"] = [*event["Event"].get("Tag", []), *({"name": t} for t in tags)]
    if distribution is not None:
        event["Event"]["distribution"] = distribution
    return event


def objects_event(
    name: str, uuid: str, tag: str | None = None, **distribution: str
) -> dict[str, Any]:
    """One of misp-stix's objects collections as one event's objects."""
    found = json.loads((MISP_TESTS / name).read_text())
    objects = [item["Object"] for item in found["response"]]
    for misp_object in objects:
        if misp_object["name"] in distribution:
            misp_object["distribution"] = distribution[misp_object["name"]]
    event = copy.deepcopy(shared_events("test_events_collection_1.json")[0])
    event["Event"].update(
        uuid=uuid,
        info=f"misp-stix {name} as an event",
        Attribute=[],
        Object=objects,
        Tag=[{"name": tag}] if tag else [],
    )
    return event


OBJECTS_1 = "test_objects_collection_1.json"
OBJECTS_2 = "test_objects_collection_2.json"


def content(conversion: Conversion) -> list[dict[str, Any]]:
    """The event's own objects: not the TLP definitions, not its creator's identity."""
    return [
        o for o in conversion.objects if o["type"] != "marking-definition" and o["id"] != MISP_ORG
    ]


def tlp_refs(obj: dict[str, Any]) -> list[str]:
    return [r for r in obj.get("object_marking_refs", []) if r in tlp_by_marking_id()]


# ---------------------------------------------------------------- conversion and mapping


def test_untagged_events_convert_exactly_as_misp_stix_does() -> None:
    for name in ("test_events_collection_1", "test_events_collection_2"):
        expected = json.loads((CONVERTED / f"{name}_misp2stix21.json").read_text())["objects"]
        conversions = [convert_event(e, f"{name}.json") for e in shared_events(f"{name}.json")]
        assert all(c.level is None and not c.notes for c in conversions)
        # With nothing to go on, nothing is marked: the hub applies the member's default.
        assert sorted(merged(conversions), key=lambda o: o["id"]) == sorted(
            expected, key=lambda o: o["id"]
        )


@pytest.mark.parametrize(
    ("tag", "level"),
    [
        ("tlp:white", "clear"),
        ("TLP:CLEAR", "clear"),
        ("tlp:green", "green"),
        ("Tlp:Amber", "amber"),
        ("tlp:amber+strict", "amber+strict"),
        ("TLP:RED", "red"),
    ],
)
def test_each_tlp_tag_becomes_the_standard_marking(tag: str, level: str) -> None:
    event = marked(shared_events("test_events_collection_2.json")[0], tag, "misp:tool=x")
    conversion = convert_event(event, "test")
    definitions = [o for o in conversion.objects if o["type"] == "marking-definition"]
    # The only marking-definition is OASIS's own for that level, whatever misp-stix made.
    assert definitions == [OASIS_TLP2[TLP2[level]]] == [tlp2_definition(Tlp.named(level))]
    others = [o for o in conversion.objects if o["type"] != "marking-definition"]
    assert len(others) == 7  # identity, grouping, observed-data, 2 SCOs, indicator, relationship
    for obj in others:
        assert obj["object_marking_refs"] == [TLP2[level]], obj["id"]
        assert not any(label.lower().startswith("tlp:") for label in obj.get("labels", []))
    grouping = next(o for o in others if o["type"] == "grouping")
    assert "misp:tool=x" in grouping["labels"]  # other tags stay as data


@pytest.mark.parametrize(
    ("tag", "distribution", "level"),
    [
        (None, "1", "amber"),
        (None, "2", "green"),
        (None, "3", "green"),
        (None, "4", "amber"),
        ("tlp:clear", "1", "amber"),  # the narrower of the two wins
        ("tlp:clear", "3", "green"),
        ("tlp:red", "3", "red"),
        ("tlp:amber+strict", "4", "amber+strict"),
        ("tlp:green", None, "green"),
    ],
)
def test_distribution_levels_narrow_and_never_widen(
    tag: str | None, distribution: str | None, level: str
) -> None:
    event = marked(
        shared_events("test_events_collection_1.json")[1],
        *([tag] if tag else []),
        distribution=distribution,
    )
    conversion = convert_event(event, "test")
    assert conversion.level is Tlp.named(level)
    assert {r for o in content(conversion) for r in tlp_refs(o)} == {TLP2[level]}


@pytest.mark.parametrize("distribution", ["0", "5", "9", "all"])
def test_events_not_meant_to_leave_are_skipped(distribution: str) -> None:
    event = marked(shared_events("test_events_collection_1.json")[0], distribution=distribution)
    conversion = convert_event(event, "events.json: response[0].Event")
    assert conversion.objects == []
    assert conversion.skipped and "events.json: response[0].Event" in conversion.skipped
    if distribution == "0":
        assert "your organisation only" in conversion.skipped


def test_the_mapping_is_the_documented_table() -> None:
    rules = table()
    assert set(rules.tags) == {
        "tlp:white", "tlp:clear", "tlp:green", "tlp:amber", "tlp:amber+strict", "tlp:red",
    }  # fmt: skip
    assert {value: d.tlp for value, d in rules.distributions.items()} == {
        "0": None, "1": Tlp.AMBER, "2": Tlp.GREEN, "3": Tlp.GREEN, "4": Tlp.AMBER, "5": None,
    }  # fmt: skip
    assert not rules.distributions["0"].imported and rules.distributions["5"].inherit


def test_attributes_take_the_narrowest_of_event_tag_and_distribution() -> None:
    event = copy.deepcopy(shared_events("test_events_collection_2.json")[0])
    first = event["Event"]["Attribute"][0]
    second, third, fourth = (copy.deepcopy(first) for _ in range(3))
    first.update(distribution="5")  # inherits the event's GREEN
    second.update(uuid="b1d7c3a4-0b7e-4e52-9f55-6b1a5c0e9a01", distribution="1")  # AMBER
    third.update(uuid="b1d7c3a4-0b7e-4e52-9f55-6b1a5c0e9a02", Tag=[{"name": "tlp:clear"}])
    fourth.update(uuid="b1d7c3a4-0b7e-4e52-9f55-6b1a5c0e9a03", distribution="0")
    event["Event"]["Attribute"] += [second, third, fourth]
    conversion = convert_event(marked(event, "tlp:green", distribution="3"), "ev.json")

    def levels_of(uuid: str) -> set[str]:
        return {r for o in conversion.objects if o["id"].endswith(uuid) for r in tlp_refs(o)}

    assert levels_of(first["uuid"]) == {TLP2["green"]}
    assert levels_of(second["uuid"]) == {TLP2["amber"]}
    assert levels_of(third["uuid"]) == {TLP2["green"]}  # tlp:clear does not widen the event
    assert fourth["uuid"] not in json.dumps(conversion.objects)  # distribution 0: never seen
    assert conversion.left_out == (
        f"ev.json.Event.Attribute[3] ({fourth['uuid']}): distribution 0 (your organisation "
        "only): never imported",
    )
    # Each relationship is as narrow as its ends; the report stays at the event's level.
    by_id = {o["id"]: o for o in conversion.objects}
    for relationship in (o for o in conversion.objects if o["type"] == "relationship"):
        ends = {
            Tlp(max(tlp_by_marking_id()[r] for r in tlp_refs(by_id[relationship[k]])))
            for k in ("source_ref", "target_ref")
        }
        assert tlp_refs(relationship) == [TLP2[tlp_name(max(ends))]]
    grouping = next(o for o in conversion.objects if o["type"] == "grouping")
    assert tlp_refs(grouping) == [TLP2["green"]]


def test_a_misp_object_is_as_narrow_as_its_narrowest_attribute() -> None:
    event = objects_event(OBJECTS_1, "5b4d1c0e-8c1f-4f0a-9c54-2f8e2f1a6b11", "tlp:green", file="0")
    email = event["Event"]["Object"][0]
    email["Attribute"][1]["Tag"] = [{"name": "tlp:RED"}]
    conversion = convert_event(event, "objects.json")
    kinds = {o["type"]: tlp_refs(o) for o in content(conversion)}
    assert "file" not in kinds and "directory" not in kinds  # the file object: distribution 0
    for kind in ("observed-data", "email-message", "email-addr", "indicator", "relationship"):
        assert kinds[kind] == [TLP2["red"]], kind
    assert [line.split(": ")[1] for line in conversion.left_out] == [
        "distribution 0 (your organisation only)"
    ]


def test_a_published_event_with_its_report_sighting_and_notes() -> None:
    event = marked(shared_events("test_events_collection_2.json")[0], "tlp:green", distribution="3")
    body = event["Event"]
    body.update(published=True, publish_timestamp="1603642980")
    attribute = body["Attribute"][0]
    body["EventReport"] = [
        {
            "uuid": "e1a2b3c4-0000-4000-8000-000000000001",
            "name": "What we saw",
            "content": f"Seen @[attribute]({attribute['uuid']})",
            "distribution": "1",
            "timestamp": "1603642920",
        }
    ]
    attribute["Sighting"] = [
        {
            "uuid": "5d0a9f0e-0000-4000-8000-000000000002",
            "date_sighting": "1603642925",
            "type": "0",
            "Organisation": {"name": "Other", "uuid": "6d0a9f0e-0000-4000-8000-000000000003"},
        }
    ]
    attribute["Note"] = [
        {
            "uuid": "7d0a9f0e-0000-4000-8000-000000000004",
            "note": "for our eyes only",
            "distribution": "0",
            "created": "2020-10-25T16:22:00",
            "modified": "2020-10-25T16:22:00",
        }
    ]
    conversion = convert_event(event, "ev.json")
    levels = {o["type"]: tlp_refs(o) for o in content(conversion)}
    assert levels["report"] == levels["sighting"] == levels["indicator"] == [TLP2["green"]]
    assert levels["note"] == [TLP2["amber"]]  # the event report's own distribution, 1
    assert "for our eyes only" not in json.dumps(conversion.objects)
    assert conversion.left_out == (
        "ev.json.Event.Attribute[0].Note[0] (7d0a9f0e-0000-4000-8000-000000000004): "
        "distribution 0 (your organisation only): never imported",
    )
    assert not [oasis_errors(o) for o in conversion.objects if oasis_errors(o)]


# ------------------------------------------------------------------------------- sources


def test_event_files_in_every_shape_misp_writes(tmp_path: Path) -> None:
    found = json.loads((MISP_TESTS / "test_events_collection_2.json").read_text())
    shapes = {
        "one.json": found["response"][0],
        "list.json": found["response"],
        "search.json": found,
        "bare.json": found["response"][1]["Event"],
    }
    for name, document in shapes.items():
        (tmp_path / name).write_text(json.dumps(document))
    assert [e.origin for e in read_file(tmp_path / "search.json")] == [
        f"{tmp_path / 'search.json'}: response[0].Event",
        f"{tmp_path / 'search.json'}: response[1].Event",
    ]
    assert len(read_file(tmp_path / "list.json")) == 2
    assert read_file(tmp_path / "one.json")[0].uuid == "50bf87fc-d134-499f-9e26-806cbe89ed37"
    assert read_file(tmp_path / "bare.json")[0].uuid == "71356f2b-eefe-48db-a93a-4aa2233e3a59"


def test_source_errors_name_the_file_and_the_json_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"response": [\n  {"Event": {"uuid": "x"}},\n  oops]}')
    with pytest.raises(MispSourceError, match=r"broken\.json: not JSON \(line 3, column 3\)"):
        read_file(broken)
    not_event = {"response": [{"Event": {"uuid": "a", "info": "ok"}}, {"Tag": []}]}
    with pytest.raises(MispSourceError, match=r"x\.json: response\[1\]: not a MISP event"):
        events_in(not_event, "x.json")
    no_uuid = {"response": [{"Event": {"info": "no uuid"}}]}
    with pytest.raises(MispSourceError, match=r"x\.json: response\[0\]\.Event\.uuid: missing"):
        events_in(no_uuid, "x.json")
    with pytest.raises(MispSourceError, match="attributes or objects without their event"):
        read_file(MISP_TESTS / "test_attributes_collection_1.json")


# ------------------------------------------------------------------ through a real hub

SENDER_RULES = {
    "ng-cert": {
        "default_tlp": "amber",
        "recipients": {
            "green": ["region:west-africa"],
            "amber": ["member:sn-cert"],
            "amber+strict": ["member:gh-cert"],
        },
    }
}
READERS = ("ng-cert-read", "gh-cert-read", "sn-cert-read", "ke-cirt-read")


def scenario() -> dict[str, dict[str, Any]]:
    """Events as a MISP would share them, each with the readers that may see it."""
    first, second = shared_events("test_events_collection_1.json")
    third, fourth = shared_events("test_events_collection_2.json")
    return {
        "green": {
            "event": marked(first, "tlp:green", distribution="3"),
            "readers": {"ng-cert-read", "gh-cert-read", "sn-cert-read"},
        },
        "amber+strict": {
            "event": marked(second, "TLP:AMBER+STRICT", distribution="1"),
            "readers": {"ng-cert-read", "gh-cert-read"},
        },
        "amber": {  # a sharing group, no tag: the member's AMBER recipients
            "event": marked(third, distribution="4"),
            "readers": {"ng-cert-read", "sn-cert-read"},
        },
        "never": {"event": marked(fourth, "tlp:clear", distribution="0"), "readers": set()},
        "clear": {
            "event": objects_event(
                OBJECTS_1, "5b4d1c0e-8c1f-4f0a-9c54-2f8e2f1a6b11", "tlp:clear", file="0"
            ),
            "readers": set(READERS),
        },
    }


async def test_misp_events_reach_exactly_their_readers_with_standard_markings(
    bus_url: str,
    tmp_path: Path,
    demo_secrets: Path,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cases = scenario()
    conversions = {
        name: convert_event(case["event"], f"scenario {name}") for name, case in cases.items()
    }
    assert conversions["never"].skipped and not conversions["never"].objects
    objects = merged(conversions.values())

    async with running_hub(
        bus_url, tmp_path / "hub", demo_secrets, topic_prefix=f"t{unique}.", sharing=SENDER_RULES
    ) as hub:
        status = await submit(hub, "ng-cert-submit", objects)
        assert status.failure_count == 0, status.failures
        assert status.success_count == len(objects)

        # The CLI (through the client SDK) imports another event, as another member.
        source = tmp_path / "gh.json"
        imported = objects_event(OBJECTS_2, "0c6f3b8e-2a4d-4e8f-9b1a-7d5e3c2b1a09", "tlp:green")
        source.write_text(json.dumps({"response": [imported]}))
        monkeypatch.setenv(commands.PASSWORD_ENV, hub.password("gh-cert-submit"))
        code = await commands.import_events(
            import_args(str(source), url=hub.base_url, user="gh-cert-submit")
        )
        printed = capsys.readouterr().out
        # Both events are the same MISP organisation's: its identity is ng-cert's to version
        # here, since ng-cert relayed it first (the rest of gh-cert's event goes through).
        assert code == 1, printed
        refused = [line for line in printed.splitlines() if line.startswith("refused ")]
        assert len(refused) == 1 and refused[0].startswith(f"refused {MISP_ORG}: "), printed
        assert "first published through the hub by another member" in refused[0]
        assert printed.strip().endswith(" accepted, 1 refused")

        seen = {reader: await delivered(hub, reader) for reader in READERS}

    for name, case in cases.items():
        for obj in content(conversions[name]) if name != "never" else []:
            readers = {r for r in READERS if obj["id"] in seen[r]}
            assert readers == case["readers"], (name, obj["id"])
            for reader in readers:
                assert tlp_refs(seen[reader][obj["id"]]) == [TLP2[name]], (reader, obj["id"])
    # Distribution 0 left no trace anywhere, not even in the sender's own collection.
    everything = json.dumps(seen)
    never = cases["never"]["event"]["Event"]["Attribute"][0]
    assert never["uuid"] not in everything and never["value"] not in everything
    assert "5e384ae7-672c-4250-9cda-3b4da964451a" not in everything  # the file object
    # gh-cert's own import (GREEN, West Africa) reached sn-cert, not ke-cirt.
    domain_ip = "observed-data--5ac337df-e078-4e99-8b17-02550a00020f"
    assert tlp_refs(seen["sn-cert-read"][domain_ip]) == [TLP2["green"]]
    assert domain_ip not in seen["ke-cirt-read"]
    # Every object as delivered (signed) is valid STIX 2.1; the TLP definitions are OASIS's.
    unique_objects = {json.dumps(o, sort_keys=True): o for v in seen.values() for o in v.values()}
    for obj in unique_objects.values():
        assert not oasis_errors(obj), (obj["id"], oasis_errors(obj))
        if obj["type"] == "marking-definition":
            assert without_extension(obj) == OASIS_TLP2[obj["id"]]


async def delivered(hub: RunningHub, reader: str) -> dict[str, dict[str, Any]]:
    """Every object a reader can read, as delivered (signed), found as a TAXII client would."""
    server = Server(f"{hub.base_url}/taxii2/", user=reader, password=hub.password(reader))

    def read() -> dict[str, dict[str, Any]]:
        return {
            obj["id"]: obj
            for feed in server.default.collections
            if feed.can_read
            for page in as_pages(feed.get_objects, per_request=500)
            for obj in page.get("objects", [])
            if obj["id"] not in predefined()  # the hub's own, in `public`
        }

    return await asyncio.to_thread(read)


# -------------------------------------------------------------------------- REST API


def import_args(*sources: str, **options: Any) -> argparse.Namespace:
    """What `cirt-hub misp import ...` parses to."""
    parser = argparse.ArgumentParser(prog="cirt-hub")
    commands.register(parser.add_subparsers(dest="command", required=True))
    argv = ["misp", "import", *sources]
    for option, value in options.items():
        for item in value if isinstance(value, list) else [value]:
            argv += [f"--{option.replace('_', '-')}", str(item)]
    return parser.parse_args(argv)


class FakeMisp:
    """A MISP's REST API as far as the connector uses it, over the shared test files."""

    def __init__(self) -> None:
        self.events = [
            e
            for name in ("test_events_collection_1.json", "test_events_collection_2.json")
            for e in shared_events(name)
        ]
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.authorised])
        app.router.add_post("/events/restSearch", self.search)
        app.router.add_get("/events/view/{id}", self.view)
        return app

    @web.middleware
    async def authorised(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.method == "POST" else None
        self.requests.append((request.method, request.path, body))
        if request.headers.get("Authorization") != KEY or "json" not in request.headers.get(
            "Accept", ""
        ):
            return web.json_response(
                {"name": "Authentication failed.", "message": "Authentication failed."},
                status=403,
            )
        return await handler(request)

    async def search(self, request: web.Request) -> web.Response:
        query = await request.json()
        assert query["returnFormat"] == "json" and query["last"] == "1d"
        start = (query["page"] - 1) * query["limit"]
        return web.json_response({"response": self.events[start : start + query["limit"]]})

    async def view(self, request: web.Request) -> web.Response:
        for event in self.events:
            if event["Event"]["uuid"] == request.match_info["id"]:
                return web.json_response(event)
        return web.json_response({"name": "Invalid event", "message": "Invalid event"}, status=404)


@pytest.fixture
async def fake_misp() -> AsyncIterator[tuple[str, FakeMisp]]:
    misp, port = FakeMisp(), free_port()
    runner = web.AppRunner(misp.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", misp
    finally:
        await runner.cleanup()


async def test_events_from_a_misp_rest_api_are_written_as_bundles(
    fake_misp: tuple[str, FakeMisp],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, misp = fake_misp
    monkeypatch.setenv(commands.MISP_KEY_ENV, KEY)
    wanted = misp.events[0]["Event"]["uuid"]
    args = import_args(misp_url=url, event=wanted, last="1d", out=tmp_path / "out")
    assert await commands.import_events(args) == 0
    written = sorted(Path(p).name for p in capsys.readouterr().out.split())
    assert written == sorted(f"{e['Event']['uuid']}.json" for e in misp.events)
    assert [(m, p) for m, p, _ in misp.requests] == [
        ("GET", f"/events/view/{wanted}"),
        ("POST", "/events/restSearch"),
    ]
    assert misp.requests[1][2] == {"last": "1d", "returnFormat": "json", "limit": 50, "page": 1}
    bundle = json.loads((tmp_path / "out" / f"{wanted}.json").read_text())
    assert bundle["type"] == "bundle" and bundle["id"] == f"bundle--{wanted}"
    assert any(o["type"] == "autonomous-system" for o in bundle["objects"])


async def test_misp_errors_name_the_url_and_status(
    fake_misp: tuple[str, FakeMisp], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = fake_misp
    args = import_args(misp_url=url, misp_key="wrong", last="1d", out=tmp_path)
    assert await commands.import_events(args) == 2
    error = capsys.readouterr().err
    assert f"MISP {url}/events/restSearch: HTTP 403 Forbidden: Authentication failed." in error
    args = import_args(misp_url=url, misp_key=KEY, event="42", out=tmp_path)
    assert await commands.import_events(args) == 2
    assert f"MISP {url}/events/view/42: HTTP 404 Not Found: Invalid event" in (
        capsys.readouterr().err
    )


def test_usage_errors_are_told_before_anything_is_read(capsys: pytest.CaptureFixture[str]) -> None:
    assert commands.run(import_args(misp_url="http://127.0.0.1:9", out="x")) == 2
    assert "--event ID ... or --last AGE" in capsys.readouterr().err
    assert commands.run(import_args("events.json", url="http://127.0.0.1:9")) == 2
    assert "--url needs --user" in capsys.readouterr().err
