"""The hub's own intake topic is believed only with the MAC of one of the hub's API nodes: a
record written straight to `<prefix>intake` (as with kcat, by a principal whose ACL is
wrong) passes for no member; a genuine record written again later (a replay) is refused;
a backlog written before the intake key existed is read once, as before; after `cirt-hub
keys rotate` the old key counts for its grace, then no more."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import aiokafka
import orjson
import pytest

from hub.api.keys import BUS, COLLECTIONS, INTAKE_KEYS, VIEW
from hub.bus import Bus, Message, TopicSpec
from hub.bus.url import open_bus
from hub.collections import feed_aliases
from hub.records import encode_intake
from hub.signing.intake import (
    RETIRED_GRACE,
    IntakeKeyFile,
    IntakeKeys,
    IntakeMacError,
    new_intake_key,
)
from hub.store.view import ObjectQuery
from tests.hubs import KEY_PASSPHRASE, RunningHub, running_hub, submit
from tests.intake.conftest import credentials
from tests.intake.corpus import TAXII, indicator
from tests.signing.support import CLI

FORGER = "ng-cert"  # whoever can write the topic
VICTIM = "gh-cert"  # the member it claims to be


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def api_record(hub: RunningHub, member: str, *, received: str | None = None) -> tuple[bytes, str]:
    """An intake record as the hub's API writes it, from `member`, of one TLP:GREEN indicator;
    and that indicator's id."""
    obj = indicator(created_by_ref=hub.settings.federation.member(member).identity)
    status_id = str(uuid.uuid4())
    value = encode_intake(
        status_id=status_id,
        member=member,
        account=f"{member}-submit",
        received=received or now(),
        request_id=status_id,
        objects=[obj],
    )
    return value, obj["id"]


async def rejected_by_key(hub: RunningHub, keys: set[str]) -> dict[str, dict[str, Any]]:
    reader = hub.app[BUS].reader([hub.settings.topics.rejected], {})
    await reader.start()
    found: dict[str, dict[str, Any]] = {}
    try:
        end = time.monotonic() + 60
        while not keys <= found.keys() and time.monotonic() < end:
            for record in await reader.fetch(timeout=0.5):
                found[record.key.decode() if record.key else ""] = orjson.loads(record.value)
        return found
    finally:
        await reader.stop()


async def delivered(hub: RunningHub, ids: set[str]) -> set[str]:
    found: set[str] = set()
    for alias in feed_aliases(hub.app[COLLECTIONS]):
        page = await hub.app[VIEW].objects(
            ObjectQuery(alias, ids=tuple(sorted(ids)), versions=("all",), limit=1000)
        )
        found |= {orjson.loads(raw)["id"] for raw in page.objects}
    return found


async def status_of(hub: RunningHub, status_id: str, account: str) -> tuple[int, dict[str, Any]]:
    url = f"{hub.api_root}status/{status_id}/"
    headers = {"Accept": TAXII, **credentials(hub, account)}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, orjson.loads(await response.read())


async def produce_with_timestamp(bus_url: str, message: Message, timestamp_ms: int) -> None:
    """Write as a replaying Kafka producer would: with the original record's timestamp."""
    producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bus_url.removeprefix("kafka://"))
    await producer.start()
    try:
        await producer.send_and_wait(
            message.topic,
            message.value,
            key=message.key,
            headers=list(message.headers),
            timestamp_ms=timestamp_ms,
        )
    finally:
        await producer.stop()


async def test_records_written_straight_to_intake_pass_for_no_member(
    hub: RunningHub, bus_url: str
) -> None:
    topic, keys = hub.settings.topics.intake, hub.app[INTAKE_KEYS].read()
    assert keys is not None
    stranger = IntakeKeys((new_intake_key(),), topic, {})
    ten_minutes_ago = datetime.now(UTC) - timedelta(minutes=10)
    forged: dict[str, tuple[Message, str]] = {}  # name → (record, reason)
    ids: set[str] = set()

    def forge(name: str, reason: str, header: Any = None, received: str | None = None) -> None:
        value, obj_id = api_record(hub, VICTIM, received=received)
        headers = () if header is None else (header(value),)
        forged[name] = (Message(topic, value, key=name.encode(), headers=headers), reason)
        ids.add(obj_id)

    forge("as with kcat", "intake-mac-missing")
    forge("another hub's key", "intake-mac-unknown-key", stranger.header)
    forge("MAC of other bytes", "intake-mac-invalid", lambda v: keys.header(v + b" "))
    forge("not a MAC", "intake-mac-malformed", lambda v: ("cirt-hub-intake-mac", b"x.y"))
    # A genuine record of ten minutes ago, written again now (a replay).
    replayed_at = ten_minutes_ago.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    forge("written again later", "intake-replayed", keys.header, received=replayed_at)

    *straight, replay = (message for message, _ in forged.values())
    await hub.app[BUS].publish(straight)
    if bus_url.startswith("kafka://"):
        # The copy keeps the original's timestamp; the intake topic stamps its own.
        await produce_with_timestamp(bus_url, replay, int(ten_minutes_ago.timestamp() * 1000))
    else:
        await hub.app[BUS].publish([replay])
    rejected = await rejected_by_key(hub, set(forged))

    wrong = [
        f"{name}: {rejected.get(name, {}).get('reason')}: {rejected.get(name, {}).get('message')}"
        for name, (_, reason) in forged.items()
        if rejected.get(name, {}).get("reason") != reason
        or not rejected[name]["message"].startswith("intake record refused: ")
    ]
    assert not wrong, "\n".join(wrong)
    # The pipeline went on; the victim's own submissions still work.
    report = [indicator(created_by_ref=hub.settings.federation.member(VICTIM).identity)]
    assert (await submit(hub, f"{VICTIM}-submit", report)).success_count == 1
    assert not await delivered(hub, ids)
    for message, _ in forged.values():
        status_id = orjson.loads(message.value)["status_id"]
        assert (await status_of(hub, status_id, f"{VICTIM}-submit"))[0] == 404


async def publish_old_api_record(
    bus: Bus, topic: str, partitions: int, value: bytes, *, create: bool
) -> None:
    """What the hub's API wrote before intake records carried a MAC."""
    if create:
        await bus.ensure_topics([TopicSpec(topic, partitions, retain_forever=False)])
    await bus.publish([Message(topic, value, key=FORGER.encode())])


async def test_a_backlog_from_before_the_intake_key_is_read_once_as_before(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    data_dir, prefix = tmp_path / "data", f"b{unique}."
    partitions = 1 if bus_url == "embedded" else 2
    topic = f"{prefix}intake"
    data_dir.mkdir()
    # The hub before the upgrade: its API wrote a record; then the hub was stopped.
    old_bus = open_bus(bus_url, data_dir, partitions=partitions)
    await old_bus.start()
    try:
        (before, before_id), (after, after_id) = (
            api_record_for(FORGER, demo_secrets) for _ in range(2)
        )
        await publish_old_api_record(old_bus, topic, partitions, before, create=True)
    finally:
        await old_bus.stop()

    async with running_hub(bus_url, data_dir, demo_secrets, topic_prefix=prefix) as hub:
        status_id = orjson.loads(before)["status_id"]
        deadline = time.monotonic() + 60
        while (found := await status_of(hub, status_id, f"{FORGER}-submit"))[1].get(
            "status"
        ) != "complete":
            assert time.monotonic() < deadline, f"the backlog record was not read: {found}"
            await asyncio.sleep(0.1)
        assert found[1]["success_count"] == 1, found
        assert await delivered(hub, {before_id}) == {before_id}

        # Once upgraded, the same kind of record, written now, is no longer believed.
        await hub.app[BUS].publish([Message(topic, after, key=b"after the upgrade")])
        rejected = await rejected_by_key(hub, {"after the upgrade"})
        assert rejected["after the upgrade"]["reason"] == "intake-mac-missing"
        assert not await delivered(hub, {after_id})


def api_record_for(member: str, secrets: Path) -> tuple[bytes, str]:
    """`api_record` before any hub runs: the demo federation's identity of `member`."""
    from hub.demo import demo_federation

    federation, _ = demo_federation(secrets.parent)
    identity = federation.member(member).identity
    obj = indicator(created_by_ref=identity)
    status_id = str(uuid.uuid4())
    value = encode_intake(
        status_id=status_id,
        member=member,
        account=f"{member}-submit",
        received=now(),
        request_id=status_id,
        objects=[obj],
    )
    return value, obj["id"]


@pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)
async def test_rotation_makes_a_new_intake_key_and_the_old_one_counts_for_its_grace(
    hub: RunningHub,
) -> None:
    keys_dir, topic = hub.settings.signing_keys_dir, hub.settings.topics.intake
    old = hub.app[INTAKE_KEYS].read()
    assert old is not None
    env = {**os.environ, "CIRT_HUB_KEY_PASSPHRASE": KEY_PASSPHRASE}
    rotated = await asyncio.to_thread(
        subprocess.run,
        [*CLI, "keys", "rotate", "--keys-dir", str(keys_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert rotated.returncode == 0, rotated.stderr
    new = IntakeKeyFile(keys_dir).read()
    assert new is not None and new.current.kid != old.current.kid
    assert f"new intake key {new.current.kid}" in rotated.stdout

    # The API node MACs with the new key at once; what the old key MACed still counts.
    report = [indicator(created_by_ref=hub.settings.federation.member(FORGER).identity)]
    assert (await submit(hub, f"{FORGER}-submit", report)).success_count == 1
    value, obj_id = api_record(hub, FORGER)
    await hub.app[BUS].publish([Message(topic, value, headers=(old.header(value),))])
    deadline = time.monotonic() + 60
    while not await delivered(hub, {obj_id}):
        assert time.monotonic() < deadline, "a record MACed just before the rotation was lost"
        await asyncio.sleep(0.1)

    # Past its grace, the old key no longer counts.
    later = datetime.now(UTC) + RETIRED_GRACE + timedelta(minutes=1)
    _, header = old.header(value)
    new.check(header, value)
    with pytest.raises(IntakeMacError) as refused:
        new.check(header, value, now=later)
    assert refused.value.reason == "intake-mac-unknown-key"
