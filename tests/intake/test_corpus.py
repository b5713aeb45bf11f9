"""The bad-input corpus, on both buses: over HTTP, and straight into the Kafka `intake` topic.

Each test runs every case and reports all mismatches at once, so one run shows the whole
picture. No case may produce a 5xx, and no refused object may reach any feed.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import aiohttp
import orjson

from hub.api.keys import BUS, COLLECTIONS, VIEW
from hub.bus import Message
from hub.collections import feed_aliases
from hub.pipeline.decode import ACCOUNT_HEADER
from hub.store.view import ObjectQuery
from tests.hubs import RunningHub
from tests.intake.conftest import credentials, identities, wait_complete
from tests.intake.corpus import HTTP_CASES, OBJECT_CASES, TAXII, HttpCase, envelope, resolve


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
    """Every object id in every feed of the node's view."""
    view, ids = hub.app[VIEW], set()
    for alias in feed_aliases(hub.app[COLLECTIONS]):
        after = 0
        while True:
            page = await view.objects(
                ObjectQuery(alias, after_seq=after, versions=("all",), limit=1000)
            )
            ids |= {orjson.loads(raw)["id"] for raw in page.objects}
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
    """A member's own producer writes to `intake`; poison records do not stall anything."""
    hub = corpus_hub
    names, intake = identities(hub), hub.settings.topics.intake
    poison = [
        Message(intake, b"\x00\x01 not json", headers=((ACCOUNT_HEADER, b"ng-cert-submit"),)),
        Message(intake, envelope({"id": "x--1"})),  # no account header
        Message(intake, envelope({"id": "x--1"}), headers=((ACCOUNT_HEADER, b"ng-cert-read"),)),
        Message(intake, b'{"v": 99}'),
    ]
    expected: dict[str, tuple[str, str]] = {}  # bad object id → (case, words)
    messages = list(poison[:2])
    for case in OBJECT_CASES:
        objects = resolve(case.make(), names)
        expected[objects[case.bad]["id"]] = (case.name, case.words)
        account = case.account.encode()
        messages.append(Message(intake, envelope(*objects), headers=((ACCOUNT_HEADER, account),)))
    messages += poison[2:]
    # The request cases a member's own producer can also make (a body, not HTTP headers):
    # each body as an intake record, refused whole, for the reason HTTP gives.
    bodies = [c for c in HTTP_CASES if c.status in (400, 413, 422) and c.name != "too many bytes"]
    for case in bodies:
        header = ((ACCOUNT_HEADER, case.account.encode()),)
        messages.append(Message(intake, case.body, key=case.name.encode(), headers=header))
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
    whole = [r for r in rejected if "intake" in r and r["_key"] not in names_of_bodies]
    beginnings = [
        "intake record is not JSON",
        "a member's intake record needs the 'cirt-hub-account' header",
        "account 'ng-cert-read' may not submit",
        "intake record version 99 is unknown",
    ]
    assert len(whole) == len(beginnings)
    for beginning in beginnings:
        assert any(r["message"].startswith(beginning) for r in whole), beginning

    assert all(r["reason"] == "undecodable" for r in whole)
    not_json = next(r for r in whole if r["message"].startswith("intake record is not JSON"))
    assert base64.b64decode(not_json["record_base64"]) == b"\x00\x01 not json"

    per_object = {r["id"]: r for r in rejected if "intake" not in r}
    wrong = []
    for obj_id, (name, words) in expected.items():
        record = per_object.get(obj_id)
        if record is None or words not in record["message"]:
            wrong.append(f"{name}: {record and record['message']}")
        elif record["object"]["id"] != obj_id or not record["account"]:
            wrong.append(f"{name}: rejected record lacks the object or the submitter")
    assert not wrong, "\n".join(wrong)
