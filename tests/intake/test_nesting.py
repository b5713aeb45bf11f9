"""One nesting limit (`hub.limits.max_depth`), checked once on the submitted body, on both ways
in: depths around the limit, around what orjson's encoder (254 levels) and decoder (1,024
levels) hold, and far beyond. Over HTTP the answer is 202 or a 400 that names the limit and
where; a member's signed Kafka record is processed or ends in `rejected` (`too-deep`), and
the pipeline goes on after it. Never a 5xx."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from hub.api.keys import BUS
from hub.federation import Federation, Limits
from hub.records import member_status_id
from tests.hubs import RunningHub, running_hub
from tests.intake.conftest import credentials, member_key, member_record, wait_complete
from tests.intake.corpus import TAXII, indicator
from tests.signing.support import public_jwk

LIMIT = Limits().max_depth  # the default: what a hub runs with unless told otherwise
# Levels of `deep()` under one property of an indicator: the object is 1 + levels deep.
# Around the limit, around orjson's encoder (a 252-level property gave a 500 before) and
# decoder limits, and far past every one of them.
LEVELS = (
    LIMIT - 2,
    LIMIT - 1,
    LIMIT,
    LIMIT + 1,
    200,
    250,
    252,
    253,
    1021,
    1022,
    1023,
    1024,
    1030,
    5000,
)
SUBMITTER = "ng-cert-submit"


def with_keys(federation: Federation) -> Federation:
    """Default limits; every member lists its Kafka key."""
    return replace(
        federation,
        members=tuple(
            replace(m, public_keys=(public_jwk(member_key(m.id)),)) for m in federation.members
        ),
    )


@pytest.fixture
async def default_hub(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> AsyncIterator[RunningHub]:
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"n{unique}.", adjust=with_keys
    ) as hub:
        yield hub


def body(levels: int) -> bytes:
    # Built as text: orjson cannot write what is deeper than its own limit.
    obj = orjson.dumps(indicator(x_acme_tree="HOLE")).decode()
    tree = '{"down": ' * levels + '"bottom"' + "}" * levels
    return f'{{"objects": [{obj.replace(chr(34) + "HOLE" + chr(34), tree)}]}}'.encode()


def too_deep_words(levels: int) -> tuple[str, ...]:
    """What a refusal must say: the limit, which object, and the property path into it."""
    return (f"this hub accepts {LIMIT}", "hub.limits.max_depth", "objects[0]", "x_acme_tree")


async def test_nesting_over_http_is_202_or_a_400_naming_the_limit(default_hub: RunningHub) -> None:
    hub, wrong = default_hub, []
    headers = {"Accept": TAXII, "Content-Type": TAXII, **credentials(hub, SUBMITTER)}
    url = hub.collection_url("inbox") + "objects/"
    async with aiohttp.ClientSession() as session:
        for levels in LEVELS:
            async with session.post(url, data=body(levels), headers=headers) as response:
                status, doc = response.status, orjson.loads(await response.read())
            if 1 + levels <= LIMIT:
                if status != 202:
                    wrong.append(f"{levels}: {status} {doc}")
                    continue
                done = await wait_complete(session, hub, doc["id"], SUBMITTER)
                if done["success_count"] != 1:
                    wrong.append(f"{levels}: accepted, then {done}")
            elif status != 400 or doc.get("http_status") != "400":
                wrong.append(f"{levels}: {status} {doc}")
            else:
                missing = [w for w in too_deep_words(levels) if w not in doc["description"]]
                if missing and levels < 1000:
                    wrong.append(f"{levels}: {doc['description']!r} lacks {missing}")
                elif f"this hub accepts {LIMIT}" not in doc["description"]:
                    wrong.append(f"{levels}: {doc['description']!r} does not name the limit")
    assert not wrong, "\n".join(wrong)


async def rejected_by_key(hub: RunningHub, keys: set[str]) -> dict[str, dict[str, Any]]:
    reader = hub.app[BUS].reader([hub.settings.topics.rejected], {})
    await reader.start()
    found: dict[str, dict[str, Any]] = {}
    try:
        end = time.monotonic() + 60
        while not keys <= found.keys() and time.monotonic() < end:
            for record in await reader.fetch(timeout=0.5):
                key = record.key.decode() if record.key else ""
                found[key] = orjson.loads(record.value)
        return found
    finally:
        await reader.stop()


async def test_nesting_in_a_signed_kafka_record_is_routed_or_rejected(
    default_hub: RunningHub,
) -> None:
    hub, wrong = default_hub, []
    messages = [
        replace(member_record(hub, "ng-cert", body(levels)), key=f"depth-{levels}".encode())
        for levels in LEVELS
    ]
    positions = await hub.app[BUS].publish(messages)
    refused = {f"depth-{levels}" for levels in LEVELS if 1 + levels > LIMIT}
    rejected = await rejected_by_key(hub, refused)
    async with aiohttp.ClientSession() as session:
        for levels, position in zip(LEVELS, positions, strict=True):
            name = f"depth-{levels}"
            if name not in refused:
                status_id = member_status_id(*position)
                done = await wait_complete(session, hub, status_id, SUBMITTER)
                if done["success_count"] != 1:
                    wrong.append(f"{levels}: {done}")
                continue
            entry = rejected.get(name)
            if entry is None:
                wrong.append(f"{levels}: nothing in rejected")
                continue
            missing = [w for w in too_deep_words(levels) if w not in entry["message"]]
            if entry["reason"] != "too-deep" or (missing and levels < 1000):
                wrong.append(f"{levels}: {entry['reason']}: {entry['message']!r} lacks {missing}")
    assert not wrong, "\n".join(wrong)
