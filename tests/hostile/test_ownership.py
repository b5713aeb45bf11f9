"""Only the creator speaks for its objects: a member with valid accounts tries to make a new
version of, or revoke, what another member published (over TAXII and its own Kafka intake,
whether or not it ever received the object), relays third-party content a member already
shared, and versions the hub's own objects and alerts. Each attempt is refused per object,
without naming who owns the id, and no reader sees anything change; the owner's retries and
new versions go through as before, and the record of who owns what survives a restart and a
rebuilt node."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from connectors.client.keys import MemberKey
from connectors.kafka.connection import KafkaConnection
from connectors.kafka.member import IntakeProducer
from hub.federation import Federation
from hub.signing.provenance import EXTENSION_ID, without_extension
from hub.stix.predefined import extension_definition, response_definition
from tests.hubs import RunningHub, member_identity, read_all, running_hub, submit, with_member_key
from tests.intake.conftest import wait_complete
from tests.stixdata import TLP2, indicator, shared_objects

LATER = "2026-12-01T00:00:00.000Z"
GREEN, AMBER = TLP2["green"], TLP2["amber"]
WEST = "region-west-africa"
C2 = "[ipv4-addr:value = '203.0.113.45']"


def taken_over(original: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Another member's object as a hostile member read it, made a later, revoked version
    with its creator left out (the hub would fill in the hostile member's own)."""
    body = {k: v for k, v in without_extension(original).items() if k != "created_by_ref"}
    return {**body, "modified": LATER, "revoked": True, "name": "HIJACKED", **changes}


def refusal(failures: list[dict[str, Any]], object_id: str) -> str:
    [failure] = [f for f in failures if f["id"] == object_id]
    return str(failure["message"])


def says_taken_without_naming(hub: RunningHub, message: str, *members: str) -> None:
    """The refusal says the id is another member's, in words an analyst understands, and
    names neither the owner nor anyone that received the object."""
    assert "first published through the hub by another member" in message, message
    assert "only that member may publish new versions of it or revoke it" in message, message
    for member_id in members:
        member = hub.settings.federation.member(member_id)
        for secret in (member.id, member.identity, member.name):
            assert secret not in message, (secret, message)


async def versions(hub: RunningHub, alias: str, reader: str, object_id: str) -> list[dict]:
    """Every version of the object in the collection as `reader` reads it, without the
    hub's signature: what the members sent."""
    found = await read_all(hub, alias, reader, id=object_id, version="all")
    return [without_extension(o) for o in found]


async def test_a_new_version_of_another_members_object_is_refused_and_changes_nothing(
    hub: RunningHub,
) -> None:
    """The issue's attack: gh-cert reads ng-cert's TLP:GREEN indicator from its region feed
    and POSTs it back later, revoked, renamed, without `created_by_ref`."""
    original = indicator(member_identity(hub, "ng-cert"), C2, GREEN, name="C2 of the ransomware")
    assert (await submit(hub, "ng-cert-submit", [original])).success_count == 1
    [read] = await read_all(hub, WEST, "gh-cert-read", id=original["id"])

    status = await submit(hub, "gh-cert-submit", [taken_over(read)])
    assert status.failure_count == 1 and status.success_count == 0
    says_taken_without_naming(hub, refusal(status.failures, original["id"]), "ng-cert")
    for reader in ("gh-cert-read", "sn-cert-read"):
        assert await versions(hub, WEST, reader, original["id"]) == [original], reader

    # The owner: a retry of what it sent, then its own revocation, go through as before.
    assert (await submit(hub, "ng-cert-submit", [original])).success_count == 1
    revoked = {**original, "modified": LATER, "revoked": True}
    assert (await submit(hub, "ng-cert-submit", [revoked])).success_count == 1
    assert await versions(hub, WEST, "sn-cert-read", original["id"]) == [original, revoked]


async def test_a_member_that_never_received_an_object_cannot_revoke_it(hub: RunningHub) -> None:
    """ke-cirt (East Africa) knows only the id of gh-cert's TLP:AMBER indicator, which went
    to ng-cert and sn-cert; its revocation would have reached their `member-*` collections.
    It learns that the id is taken, in the very words a recipient of the object gets."""
    secret = indicator(member_identity(hub, "gh-cert"), C2, AMBER, name="C2, not to be shared")
    assert (await submit(hub, "gh-cert-submit", [secret])).success_count == 1

    def revocation(member: str) -> dict[str, Any]:
        own = indicator(member_identity(hub, member), "[ipv4-addr:value = '192.0.2.1']", AMBER)
        return {**own, "id": secret["id"], "modified": LATER, "revoked": True}

    outsider = await submit(hub, "ke-cirt-submit", [revocation("ke-cirt")])
    message = refusal(outsider.failures, secret["id"])
    says_taken_without_naming(hub, message, "gh-cert", "ng-cert", "sn-cert")
    recipient = await submit(hub, "ng-cert-submit", [revocation("ng-cert")])
    assert refusal(recipient.failures, secret["id"]) == message
    for member in ("ng-cert", "sn-cert"):
        seen = await versions(hub, f"member-{member}", f"{member}-read", secret["id"])
        assert seen == [secret], member


@pytest.mark.kafka
async def test_the_same_takeover_through_the_members_kafka_intake_is_refused(
    kafka_bootstrap: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    key = MemberKey.generate()
    async with running_hub(
        "kafka://" + kafka_bootstrap,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"ho{unique}.",
        adjust=with_member_key("gh-cert", key),
    ) as hub:
        original = indicator(member_identity(hub, "ng-cert"), C2, GREEN, name="C2 server")
        assert (await submit(hub, "ng-cert-submit", [original])).success_count == 1
        [read] = await read_all(hub, WEST, "gh-cert-read", id=original["id"])
        async with IntakeProducer(
            KafkaConnection(kafka_bootstrap), "gh-cert", key, topic_prefix=hub.settings.topic_prefix
        ) as producer:
            produced = await producer.send({"objects": [taken_over(read)]})
        async with aiohttp.ClientSession() as session:
            status = await wait_complete(session, hub, produced.status_id, "gh-cert-submit")
        assert status["failure_count"] == 1 and status["success_count"] == 0, status
        says_taken_without_naming(hub, refusal(status["failures"], original["id"]), "ng-cert")
        assert await versions(hub, WEST, "sn-cert-read", original["id"]) == [original]


def relayed(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Third-party content as a member relays it: TLP:GREEN added to the creator's markings."""
    return {**obj, "object_marking_refs": [*obj.get("object_marking_refs", []), GREEN], **changes}


async def test_third_party_content_belongs_to_the_member_that_first_relayed_it(
    hub: RunningHub,
) -> None:
    """ng-cert relays MITRE's technique (and MITRE's identity) to West Africa; gh-cert's later
    copy, or even an identical one, is refused, so West Africa keeps what ng-cert sent.
    Observables, whose ids are their values, stay anyone's to send."""
    attack = shared_objects("mitre-attack/ics-attack-18.1.json")
    [mitre] = [o for o in attack if o["type"] == "identity"]
    technique = next(o for o in attack if o["type"] == "attack-pattern")
    address = {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd",
        "value": "198.51.100.3",
        "object_marking_refs": [GREEN],
    }
    first = [relayed(mitre), relayed(technique), address]
    assert (await submit(hub, "ng-cert-submit", first)).success_count == 3

    newer = relayed(technique, modified=LATER, description="Rewritten by another relayer.")
    status = await submit(hub, "gh-cert-submit", [relayed(mitre), newer, address])
    assert (status.success_count, status.failure_count) == (1, 2), status.failures
    says_taken_without_naming(hub, refusal(status.failures, technique["id"]), "ng-cert")
    assert "relaying third-party content" in refusal(status.failures, mitre["id"])
    identical = await submit(hub, "gh-cert-submit", [relayed(technique)])
    assert identical.failure_count == 1
    for reader in ("gh-cert-read", "sn-cert-read"):
        assert await versions(hub, WEST, reader, technique["id"]) == [first[1]], reader


async def test_no_member_can_version_what_the_hub_publishes(hub: RunningHub) -> None:
    """The issue's attack on the hub's own objects: a member posts the identity that the
    hub's extension-definition names as its creator, then a new version of the definition
    with another `schema`; the hub's definition stays the only one anyone reads."""
    definition = extension_definition()
    creator = {
        "type": "identity",
        "spec_version": "2.1",
        "id": definition["created_by_ref"],
        "created": "2026-11-01T00:00:00.000Z",
        "modified": "2026-11-01T00:00:00.000Z",
        "name": "cirt-hub project",
        "identity_class": "organization",
        "object_marking_refs": [TLP2["clear"]],
    }
    forged = {
        **definition,
        "modified": LATER,
        "schema": "Property extension. Fields: none; trust whatever the submitter says.",
    }
    own = {**forged, "created_by_ref": member_identity(hub, "gh-cert")}
    responses = {**response_definition(), "modified": "2026-12-08T00:00:00.000Z"}
    for attempt in ([creator], [forged], [own], [responses]):
        status = await submit(hub, "gh-cert-submit", attempt)
        assert status.failure_count == 1, (attempt, status)
        assert "the hub" in status.failures[0]["message"], status.failures
    for reader in ("ng-cert-read", "gh-cert-read", "ke-cirt-read"):
        [published] = await read_all(hub, "public", reader, id=EXTENSION_ID, version="all")
        assert without_extension(published) == definition, reader
        [published] = await read_all(hub, "public", reader, id=responses["id"], version="all")
        assert published == response_definition(), reader
        assert await read_all(hub, "public", reader, id=creator["id"]) == []


def with_rule(federation: Federation) -> Federation:
    """A major incident: two members in two countries report the same thing within an hour."""
    rule = {"scope": "all", "min_members": 2, "min_countries": 2, "window": "PT1H"}
    return replace(federation, correlation={"rules": [rule]})


async def test_a_member_cannot_version_the_alert_the_hub_made_for_it(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"ha{unique}.", adjust=with_rule
    ) as hub:
        for member in ("ng-cert", "gh-cert"):
            report = indicator(member_identity(hub, member), "[domain-name:value = 'c2.example']")
            assert (await submit(hub, f"{member}-submit", [report])).success_count == 1
        deadline = time.monotonic() + 30
        while not (alerts := await read_all(hub, "alerts", "ng-cert-read")):
            assert time.monotonic() < deadline, "no alert"
            await asyncio.sleep(0.2)
        [alert] = alerts

        hour_later = datetime.now(UTC) + timedelta(hours=1)
        newer = hour_later.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        forged = taken_over(alert, modified=newer, object_marking_refs=[GREEN])
        status = await submit(hub, "ng-cert-submit", [forged])
        assert status.failure_count == 1, status
        assert "the hub publishes" in refusal(status.failures, alert["id"])
        for reader in ("ng-cert-read", "gh-cert-read", "sn-cert-read"):
            assert await read_all(hub, WEST, reader, id=alert["id"]) == [], reader
        assert [a["modified"] for a in await read_all(hub, "alerts", "ng-cert-read")] == [
            alert["modified"]
        ]


async def test_ownership_holds_after_a_restart_and_on_a_rebuilt_node(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    """Embedded: the hub restarts on its data dir. Kafka: a new node, with nothing of its
    own on disk, joins the same broker. Either way the ownership comes back from the bus."""
    prefix = f"hr{unique}."
    async with running_hub(bus_url, tmp_path / "first", demo_secrets, topic_prefix=prefix) as hub:
        original = indicator(member_identity(hub, "ng-cert"), C2, GREEN, name="C2 server")
        assert (await submit(hub, "ng-cert-submit", [original])).success_count == 1
        [read] = await read_all(hub, WEST, "gh-cert-read", id=original["id"])
    rebuilt = tmp_path / ("first" if bus_url == "embedded" else "rebuilt")
    async with running_hub(
        bus_url, rebuilt, demo_secrets, topic_prefix=prefix, node_id="node-rebuilt"
    ) as hub:
        status = await submit(hub, "gh-cert-submit", [taken_over(read)])
        says_taken_without_naming(hub, refusal(status.failures, original["id"]), "ng-cert")
        assert await versions(hub, WEST, "sn-cert-read", original["id"]) == [original]
