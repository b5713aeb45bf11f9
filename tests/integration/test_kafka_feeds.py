"""A member's own Kafka consumer, with the settings the README gives, reads a feed topic
directly: the same signed objects a TAXII reader gets, keyed by STIX id, with the headers
the README documents; and a transaction the pipeline aborted never shows."""

from __future__ import annotations

import aiokafka
import orjson
import pytest

from hub.signing.provenance import EXTENSION_ID
from tests.hubs import RunningHub, member_identity, read_all, submit
from tests.stixdata import TLP2, incident_report

pytestmark = pytest.mark.parametrize("bus_url", ["kafka"], indirect=True)


async def test_a_members_own_consumer_reads_what_taxii_readers_read(hub: RunningHub) -> None:
    report = incident_report(member_identity(hub, "gh-cert"), "CERT-GH", TLP2["green"])
    assert (await submit(hub, "gh-cert-submit", report)).success_count == 4
    bootstrap = hub.settings.bus_url.removeprefix("kafka://")
    consumer = aiokafka.AIOKafkaConsumer(
        hub.settings.topics.feed("region-west-africa"),
        bootstrap_servers=bootstrap,
        group_id="ng-cert-siem",
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        records = []
        while len(records) < len(report):
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, f"only {len(records)} of {len(report)} records arrived"
            records += [r for part in batch.values() for r in part]
    finally:
        await consumer.stop()
    by_id = {r.key.decode(): r for r in records}
    assert set(by_id) == {o["id"] for o in report}
    taxii = {o["id"]: o for o in await read_all(hub, "region-west-africa", "ng-cert-read")}
    for object_id, record in by_id.items():
        headers = dict(record.headers)
        assert headers["submitter"] == b"gh-cert"
        assert headers["content-type"].startswith(b"application/stix+json")
        assert "date-added" in headers and "accounts" not in headers
        value = orjson.loads(record.value)
        assert EXTENSION_ID in value["extensions"]  # signed, as TAXII serves it
        assert value == taxii[object_id]
