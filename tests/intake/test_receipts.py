"""Receipts on both buses: every record of a member's intake topic gets exactly one record
on the member's `receipts.member-<id>`, keyed by where the record landed, holding the TAXII
status the API serves for it, or the reason the record was refused whole; the hub's own
records of the member's TAXII submissions too. No other member's receipts topic gets any."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import orjson

from hub.api.keys import BUS
from hub.bus import Record, read_to
from hub.records import STATUS_ID, ReceiptRecord, intake_position_key, member_status_id
from tests.hubs import RunningHub
from tests.intake.conftest import credentials, member_record, wait_complete
from tests.intake.corpus import TAXII, envelope, indicator

MEMBER = "ng-cert"


async def read_topic(hub: RunningHub, topic: str, expect: int) -> list[Record]:
    """The records of `topic` once it holds `expect` (or after 60 s), and any after them up
    to its end: a second receipt of a record would show."""
    bus = hub.app[BUS]
    reader = bus.reader([topic], {})
    await reader.start()
    try:
        found: list[Record] = []
        end = time.monotonic() + 60
        while len(found) < expect and time.monotonic() < end:
            found += await reader.fetch(timeout=0.5)
        return found + await read_to(reader, await bus.end_offsets([topic]))
    finally:
        await reader.stop()


async def post(hub: RunningHub, account: str, body: bytes) -> dict[str, Any]:
    url = f"{hub.collection_url('inbox')}objects/"
    headers = {"Content-Type": TAXII, "Accept": TAXII, **credentials(hub, account)}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=body, headers=headers) as response:
            assert response.status == 202, await response.text()
            accepted: dict[str, Any] = orjson.loads(await response.read())
        return await wait_complete(session, hub, accepted["id"], account)


async def test_each_intake_record_gets_one_receipt_with_its_status_or_refusal(
    corpus_hub: RunningHub,
) -> None:
    hub = corpus_hub
    topics = hub.settings.topics
    good, bad_object = indicator(), indicator(pattern="not a pattern")
    records = [
        member_record(hub, MEMBER, envelope(good, bad_object)),
        # Signed with another member's key: refused whole, it has no status.
        member_record(hub, MEMBER, envelope(indicator()), signer="gh-cert"),
    ]
    positions = await hub.app[BUS].publish(records)
    posted = await post(hub, "ng-cert-submit", envelope(indicator()))

    receipts = await read_topic(hub, topics.receipts(MEMBER), 3)
    keys = [r.key.decode() for r in receipts if r.key is not None]
    assert len(keys) == 3 and len(set(keys)) == 3, keys  # one each, none twice
    by_key = {r.key.decode(): r for r in receipts if r.key is not None}

    signed, forged = (by_key[intake_position_key(*p)] for p in positions)
    status_id = member_status_id(*positions[0])
    receipt = ReceiptRecord.from_record(signed, MEMBER)
    assert receipt.intake == positions[0]
    assert signed.header(STATUS_ID) == status_id.encode()
    async with aiohttp.ClientSession() as session:
        served = await wait_complete(session, hub, status_id, "ng-cert-submit")
    assert receipt.status == served  # what TAXII says, object by object
    assert receipt.status["success_count"] == 1 and receipt.status["failure_count"] == 1
    assert receipt.status["failures"][0]["id"] == bad_object["id"]

    doc = orjson.loads(forged.value)
    assert doc["outcome"] == "refused" and "status" not in doc
    assert doc["reason"] == "member-signature-wrong-member"
    assert doc["message"].startswith("record signature refused: signed with key 'gh-cert-kafka'")
    assert forged.header(STATUS_ID) is None

    # The hub's own record of a TAXII submission: the status the POST got.
    hub_receipts = [
        ReceiptRecord.from_record(r, MEMBER)
        for r in receipts
        if r.header(STATUS_ID) == posted["id"].encode()
    ]
    assert [r.status for r in hub_receipts] == [posted]
    assert hub_receipts[0].intake.topic == topics.member_intake(MEMBER)

    # Nothing of ng-cert's on another member's receipts topic (written in the same units).
    others = await hub.app[BUS].end_offsets([topics.receipts("gh-cert")])
    assert others and set(others.values()) == {0}, others
