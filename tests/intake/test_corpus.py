"""The bad-input corpus, on both buses: over HTTP, and straight into members' Kafka intake.

Each test runs every case and reports all mismatches at once, so one run shows the whole
picture. No case may produce a 5xx, and no refused object may reach any feed.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import replace
from typing import Any

import aiohttp
import orjson

from hub.api.keys import BUS, COLLECTIONS, INTAKE_KEYS, VIEW
from hub.bus import Message
from hub.collections import feed_aliases
from hub.records import ACCOUNT, SIGNATURE
from hub.stix.predefined import is_predefined
from hub.store.view import ObjectQuery
from tests.hubs import RunningHub
from tests.intake.conftest import credentials, identities, member_record, wait_complete
from tests.intake.corpus import HTTP_CASES, OBJECT_CASES, TAXII, HttpCase, envelope, resolve
from tests.signing.support import new_member_key


async def post(
    session: aiohttp.ClientSession, hub: RunningHub, case: HttpCase
) -> tuple[int, dict[str, Any]]:
    alias = case.collection
    url = (
        hub.collection_url(alias)
        if alias in hub.app[COLLECTIONS]
        else f"{hub.api_root}collections/{alias}/"
    ) + "objects/"
    headers = {
        "Accept": TAXII,
        "Content-Type": TAXII,
        **credentials(hub, case.account),
        **case.headers,
    }
    headers = {k: v for k, v in headers.items() if v}
    async with session.post(url, data=case.body, headers=headers) as response:
        return response.status, orjson.loads(await response.read())


async def test_every_malformed_request_gets_its_4xx(corpus_hub: RunningHub) -> None:
    wrong = []
    async with aiohttp.ClientSession() as session:
        for case in HTTP_CASES:
            status, body = await post(session, corpus_hub, case)
            if status != case.status or case.words not in body.get("description", ""):
                wrong.append(f"{case.name}: {status} {body}")
            elif body.get("http_status") != str(status) or not body.get("title"):
                wrong.append(f"{case.name}: not a TAXII error body: {body}")
    assert not wrong, "\n".join(wrong)


async def everything_delivered(hub: RunningHub) -> set[str]:
    """Every object id in every feed of the node's view, but the hub's own published
    definitions exactly as published (a forged TLP definition under a standard id counts)."""
    view, ids = hub.app[VIEW], set()
    for alias in feed_aliases(hub.app[COLLECTIONS]):
        after = 0
        while True:
            page = await view.objects(
                ObjectQuery(alias, after_seq=after, versions=("all",), limit=1000)
            )
            objects = (orjson.loads(raw) for raw in page.objects)
            ids |= {obj["id"] for obj in objects if not is_predefined(obj)}
            if not page.more:
                break
            after = page.last_seq
    return ids


async def test_bad_objects_fail_alone_and_never_reach_a_feed(corpus_hub: RunningHub) -> None:
    hub, wrong, refused, accepted = corpus_hub, [], set(), set()
    names = identities(hub)
    async with aiohttp.ClientSession() as session:
        for case in OBJECT_CASES:
            objects = resolve(case.make(), names)
            submitter = case.account
            status, body = await post(
                session, hub, HttpCase(case.name, envelope(*objects), 202, "", account=submitter)
            )
            if status != 202:
                wrong.append(f"{case.name}: answered {status} {body}")
                continue
            doc = await wait_complete(session, hub, body["id"], submitter)
            failures = doc["failures"]
            bad_id = objects[case.bad]["id"] if isinstance(objects[case.bad], dict) else None
            messages = [f["message"] for f in failures]
            if len(failures) != 1 or case.words not in messages[0]:
                wrong.append(f"{case.name}: failures {messages}")
            if doc["success_count"] != len(objects) - 1:
                wrong.append(f"{case.name}: good siblings failed: {messages}")
            refused.add(bad_id)
            accepted |= {s["id"] for s in doc["successes"]}
    assert not wrong, "\n".join(wrong)
    await asyncio.sleep(0.5)
    leaked = (refused - accepted) & await everything_delivered(hub)
    assert not leaked, f"refused objects reached a feed: {leaked}"


async def read_rejected(hub: RunningHub, expect: int) -> list[dict[str, Any]]:
    reader = hub.app[BUS].reader([hub.settings.topics.rejected], {})
    await reader.start()
    try:
        found: list[dict[str, Any]] = []
        end = time.monotonic() + 60
        while len(found) < expect and time.monotonic() < end:
            found += [
                orjson.loads(r.value) | {"_key": r.key.decode(errors="replace") if r.key else None}
                for r in await reader.fetch(timeout=0.5)
            ]
        return found
    finally:
        await reader.stop()


async def test_the_corpus_through_kafka_intake_ends_in_rejected(corpus_hub: RunningHub) -> None:
    """Members' own producers write signed records to their intake topics; poison records,
    unsigned or forged ones and records on the wrong topic do not stall anything."""
    hub = corpus_hub
    names, intake = identities(hub), hub.settings.topics.intake
    intake_keys = hub.app[INTAKE_KEYS].read()
    assert intake_keys is not None
    good = envelope({"id": "x--1"})
    forged_hub_record = orjson.dumps(
        {"v": 1, "status_id": "s", "member": "gh-cert", "account": "gh-cert-submit",
         "received": "2026-01-01T00:00:00Z", "request_id": "r", "objects": []}
    )  # fmt: skip
    tampered = member_record(hub, "ng-cert", good)
    tampered = replace(tampered, value=envelope({"id": "x--2"}))
    unusable = replace(member_record(hub, "ng-cert", good), headers=((SIGNATURE, b"not a JWS"),))
    # name → (the record, its reason, the beginning of its message)
    poison: dict[str, tuple[Message, str, str]] = {
        "not json": (
            member_record(hub, "ng-cert", b"\x00\x01 not json"),
            "undecodable",
            "intake record is not JSON",
        ),
        "unsigned": (
            member_record(hub, "ng-cert", good, signer=""),
            "member-signature-missing",
            f"unsigned: a record on '{hub.settings.topics.member_intake('ng-cert')}' needs the "
            "'cirt-hub-signature' header",
        ),
        "other member's key": (
            member_record(hub, "ng-cert", good, signer="gh-cert"),
            "member-signature-wrong-member",
            "record signature refused: signed with key 'gh-cert-kafka' of gh-cert, not of",
        ),
        "unlisted key": (
            member_record(hub, "ng-cert", good, signer=new_member_key("stranger")),
            "member-signature-unknown-key",
            "record signature refused: signed with key 'stranger', which is not listed",
        ),
        "changed after signing": (
            tampered,
            "member-signature-invalid",
            "record signature refused: the member signature (key 'ng-cert-kafka') does not "
            "match the record value",
        ),
        "not a JWS": (
            unusable,
            "member-signature-malformed",
            "record signature refused: the member signature is not usable",
        ),
        "reader account": (
            member_record(hub, "ng-cert", good, account="ng-cert-read"),
            "not-authorized",
            "account 'ng-cert-read' may not submit for 'ng-cert'",
        ),
        "other member's account": (
            member_record(hub, "ng-cert", good, account="gh-cert-submit"),
            "not-authorized",
            "account 'gh-cert-submit' may not submit for 'ng-cert'",
        ),
        "hub record on a member topic": (
            member_record(hub, "ng-cert", forged_hub_record),
            "wrong-topic",
            f"'{hub.settings.topics.member_intake('ng-cert')}' is the intake topic of 'ng-cert'",
        ),
        "member record on intake": (
            Message(intake, good, headers=((ACCOUNT, b"ng-cert-submit"),)),
            "wrong-topic",
            f"a member's own records do not belong on '{intake}'",
        ),
        "unknown version": (
            Message(intake, b'{"v": 99}', headers=(intake_keys.header(b'{"v": 99}'),)),
            "undecodable",
            "intake record version 99",
        ),
        "hub record without the API's MAC": (
            Message(intake, forged_hub_record),
            "intake-mac-missing",
            "intake record refused: no 'cirt-hub-intake-mac' header",
        ),
    }
    poison_messages = [replace(m, key=name.encode()) for name, (m, _, _) in poison.items()]
    expected: dict[str, tuple[str, str]] = {}  # bad object id → (case, words)
    messages = poison_messages[:5]
    for case in OBJECT_CASES:
        objects = resolve(case.make(), names)
        expected[objects[case.bad]["id"]] = (case.name, case.words)
        member = hub.settings.federation.account(case.account).member
        messages.append(member_record(hub, member, envelope(*objects), account=case.account))
    messages += poison_messages[5:]
    # The request cases a member's own producer can also make (a body, not HTTP headers):
    # each body as an intake record, refused whole, for the reason HTTP gives.
    bodies = [c for c in HTTP_CASES if c.status in (400, 413, 422) and c.name != "too many bytes"]
    for case in bodies:
        member = hub.settings.federation.account(case.account).member
        messages.append(
            member_record(
                hub, member, case.body, account=case.account, record_key=case.name.encode()
            )
        )
    await hub.app[BUS].publish(messages)

    rejected = await read_rejected(hub, expect=len(poison) + len(OBJECT_CASES) + len(bodies))
    names_of_bodies = {c.name for c in bodies}
    by_case = {r["_key"]: r for r in rejected if "intake" in r and r["_key"] in names_of_bodies}
    wrong_bodies = [
        f"{c.name}: {by_case.get(c.name, {}).get('message')}"
        for c in bodies
        if c.words not in by_case.get(c.name, {}).get("message", "")
    ]
    assert not wrong_bodies, "\n".join(wrong_bodies)
    whole = {r["_key"]: r for r in rejected if "intake" in r and r["_key"] not in names_of_bodies}
    assert set(whole) == set(poison)
    wrong_poison = [
        f"{name}: {whole[name]['reason']}: {whole[name]['message']}"
        for name, (message, reason, beginning) in poison.items()
        if whole[name]["reason"] != reason
        or not whole[name]["message"].startswith(beginning)
        or whole[name]["intake"]["topic"] != message.topic
        or whole[name].get("member") != ("ng-cert" if message.topic != intake else None)
    ]
    assert not wrong_poison, "\n".join(wrong_poison)
    assert base64.b64decode(whole["not json"]["record_base64"]) == b"\x00\x01 not json"
    assert orjson.dumps(whole["unsigned"]["record"]) == orjson.dumps(orjson.loads(good))

    per_object = {r["id"]: r for r in rejected if "intake" not in r}
    wrong = []
    for obj_id, (name, words) in expected.items():
        record = per_object.get(obj_id)
        if record is None or words not in record["message"]:
            wrong.append(f"{name}: {record and record['message']}")
        elif record["object"]["id"] != obj_id or not record["account"]:
            wrong.append(f"{name}: rejected record lacks the object or the submitter")
    assert not wrong, "\n".join(wrong)
