"""The Kafka member example (`connectors.kafka.member`) against the real broker and a real hub:
a member makes its key, produces signed bundles to its intake topic (command line and code),
and reads its `feed.member-<id>` topic verifying every hub signature; an unsigned record and
one signed with another member's key end in `rejected` with their reasons, and the pipeline
goes on after them."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import aiokafka
import pytest

from connectors.client.hubkeys import HubKeys
from connectors.client.keys import MemberKey
from connectors.kafka.connection import KafkaConnection
from connectors.kafka.member import FeedConsumer, FeedObject, IntakeProducer
from hub.federation import Federation
from hub.signing.members import MemberKeys
from hub.signing.provenance import canonical, extension_of, without_extension
from tests.conftest import TESTDATA
from tests.hubs import RunningHub, running_hub, visible_to
from tests.intake.conftest import wait_complete
from tests.stixdata import TLP2

pytestmark = pytest.mark.kafka

EXAMPLES = TESTDATA / "oasis-cti-documentation-examples"
FILE_BUNDLE = EXAMPLES / "malware-indicator-for-file-hash.json"  # produced from the CLI
CODE_BUNDLE = EXAMPLES / "indicator-for-malicious-url.json"  # produced from code
REFUSED_BUNDLE = EXAMPLES / "identifying-a-threat-actor-profile.json"  # unsigned, or forged
MEMBER = "rw-csirt"  # its TLP:AMBER goes to East Africa (examples/federation.yaml)


async def member_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "connectors.kafka.member", *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def ids(path: Path) -> set[str]:
    return {o["id"] for o in json.loads(path.read_text())["objects"]}


def with_keys(rw_jwk: dict[str, str], ke_key: MemberKey):
    def adjust(federation: Federation) -> Federation:
        keys = {MEMBER: rw_jwk, "ke-cirt": ke_key.public_jwk()}
        return replace(
            federation,
            members=tuple(
                replace(m, public_keys=(keys[m.id],)) if m.id in keys else m
                for m in federation.members
            ),
        )

    return adjust


async def read_feed(consumer: FeedConsumer, expect: set[str]) -> list[FeedObject]:
    found: list[FeedObject] = []
    async with asyncio.timeout(20), aclosing(consumer.objects()) as objects:
        async for item in objects:
            found.append(item)
            if expect <= {f.obj["id"] for f in found}:
                return found
    raise AssertionError("unreachable: objects() ends only when told to")


async def rejected_list(hub: RunningHub) -> list[dict[str, Any]]:
    settings = hub.settings
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "hub", "rejected", "list", "--member", MEMBER, "--json"),
        *("--bus", settings.bus_url, "--topic-prefix", settings.topic_prefix),
        *("--data-dir", str(settings.data_dir)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()]


async def test_a_member_produces_signed_bundles_and_reads_its_feed(
    kafka_bootstrap: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    pem = tmp_path / "rw-csirt.pem"
    code, out, err = await member_cli("keygen", "--out", str(pem))
    assert code == 0, err
    rw_jwk, ke_key = json.loads(out), MemberKey.generate()
    async with running_hub(
        "kafka://" + kafka_bootstrap,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"km{unique}.",
        adjust=with_keys(rw_jwk, ke_key),
    ) as hub:
        prefix, connection = hub.settings.topic_prefix, KafkaConnection(kafka_bootstrap)
        common = ("--bootstrap", kafka_bootstrap, "--member", MEMBER, "--topic-prefix", prefix)
        code, out, err = await member_cli("produce", str(FILE_BUNDLE), "--key", str(pem), *common)
        assert code == 0, err
        file_status = re.search(r"status /taxii2/hub/status/([0-9a-f-]+)/", out)
        assert file_status, out

        # Refused: an unsigned record, and one signed with another member's listed key.
        topic = hub.settings.topics.member_intake(MEMBER)
        raw = aiokafka.AIOKafkaProducer(**connection.options())
        await raw.start()
        try:
            await raw.send_and_wait(topic, REFUSED_BUNDLE.read_bytes(), key=MEMBER.encode())
        finally:
            await raw.stop()
        async with IntakeProducer(connection, MEMBER, ke_key, topic_prefix=prefix) as forger:
            await forger.send(json.loads(REFUSED_BUNDLE.read_text()))

        # From a member's own code, after the refused ones: objects signed one by one too.
        key = MemberKey.load(pem)
        async with IntakeProducer(
            connection, MEMBER, key, topic_prefix=prefix, account="rw-csirt-submit"
        ) as producer:
            produced = await producer.send(json.loads(CODE_BUNDLE.read_text()), sign_objects=True)
        assert produced.topic == topic

        async with aiohttp.ClientSession() as session:
            for status_id in (file_status[1], produced.status_id):
                status = await wait_complete(session, hub, status_id, "rw-csirt-submit")
                assert status["success_count"] == 3 and status["failure_count"] == 0, status

        sent, refused = ids(FILE_BUNDLE) | ids(CODE_BUNDLE), ids(REFUSED_BUNDLE)
        readers = {"ke-cirt-read": True, "rw-csirt-read": True, "ng-cert-read": False}
        views = await asyncio.gather(*(visible_to(hub, reader) for reader in readers))
        for (reader, sees), view in zip(readers.items(), views, strict=True):
            visible = {o["id"] for objs in view.values() for o in objs}
            assert sent <= visible if sees else not sent & visible, reader
            assert not refused & visible, reader

        feed = FeedConsumer(
            connection,
            MEMBER,
            HubKeys.at(f"{hub.base_url}/.well-known/jwks.json"),
            topic_prefix=prefix,
            group=f"{MEMBER}-siem-{unique}",
        )
        async with feed:
            delivered = await read_feed(feed, sent)
        assert {d.obj["id"] for d in delivered} == sent
        assert all(d.verdict.valid and d.submitter == MEMBER for d in delivered), delivered
        by_id = {d.obj["id"]: d.obj for d in delivered}
        rw_keys = MemberKeys([(MEMBER, rw_jwk)])
        for obj in json.loads(CODE_BUNDLE.read_text())["objects"]:
            # As sent, plus what the hub adds (the default TLP, the sender as creator); the
            # member's own signature over what it sent travels along and still verifies.
            as_delivered = without_extension(by_id[obj["id"]])
            assert as_delivered == obj | {
                "created_by_ref": hub.settings.federation.member(MEMBER).identity,
                "object_marking_refs": [TLP2["amber"]],
            }
            signature = extension_of(by_id[obj["id"]])["member_signature"]
            assert rw_keys.check(signature, canonical(obj), MEMBER).kid == rw_jwk["kid"]

        # The same feed from the command line, in the member's default group.
        (code, out, err), listed = await asyncio.gather(
            member_cli(
                "consume", "--jwks", f"{hub.base_url}/.well-known/jwks.json", "--idle", "2", *common
            ),
            rejected_list(hub),
        )
        assert code == 0, err
        assert {json.loads(line)["id"] for line in out.splitlines()} == sent

        reasons = {e["reason"]: e for e in listed}
        assert set(reasons) == {"member-signature-missing", "member-signature-wrong-member"}
        assert reasons["member-signature-missing"]["message"].startswith("unsigned: a record on")
        wrong_member = reasons["member-signature-wrong-member"]["message"]
        assert "of ke-cirt, not of the submitting member 'rw-csirt'" in wrong_member
        assert all(e["intake"]["topic"] == topic for e in reasons.values())
