"""What the intake tests share: a hub with small limits and member keys, credentials, status
polling, and member records for Kafka intake signed with joserfc (as a CIRT's tooling would)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from joserfc.jwk import OKPKey

from hub.bus import Message
from hub.federation import Federation, Limits
from hub.records import ACCOUNT, SIGNATURE
from tests.hubs import RunningHub, running_hub
from tests.intake.corpus import TAXII
from tests.signing.support import detached_sign, new_member_key, public_jwk

LIMITS = Limits(
    max_content_length=256 * 1024,
    max_objects=50,
    max_object_bytes=8192,
    max_depth=16,
    max_string_length=4096,
)


@cache
def member_key(member: str) -> OKPKey:
    """The member's signing key, made once per test session."""
    return new_member_key(f"{member}-kafka")


def with_limits_and_keys(federation: Federation) -> Federation:
    """Small limits; every member lists a key, so each can produce to its Kafka intake topic."""
    members = tuple(
        replace(m, public_keys=(public_jwk(member_key(m.id)),)) for m in federation.members
    )
    return replace(federation, hub=replace(federation.hub, limits=LIMITS), members=members)


@pytest.fixture
async def corpus_hub(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> AsyncIterator[RunningHub]:
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"c{unique}.",
        adjust=with_limits_and_keys,
    ) as hub:
        yield hub


def identities(hub: RunningHub) -> dict[str, str]:
    federation = hub.settings.federation
    return {"hub": federation.hub.identity, **{m.id: m.identity for m in federation.members}}


def credentials(hub: RunningHub, account: str) -> dict[str, str]:
    if not account:
        return {}
    username, _, password = account.partition(":")
    secret = password or hub.password(username)
    token = base64.b64encode(f"{username}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def wait_complete(
    session: aiohttp.ClientSession, hub: RunningHub, status_id: str, account: str
) -> dict[str, Any]:
    url = f"{hub.api_root}status/{status_id}/"
    headers = {"Accept": TAXII, **credentials(hub, account)}
    end = time.monotonic() + 60
    while time.monotonic() < end:
        async with session.get(url, headers=headers) as response:
            doc = orjson.loads(await response.read())
        if doc.get("status") == "complete":
            return doc
        await asyncio.sleep(0.1)
    raise AssertionError(f"status {status_id} never completed")


def member_record(
    hub: RunningHub,
    member: str,
    value: bytes,
    *,
    account: str | None = None,
    signer: str | OKPKey | None = None,
    record_key: bytes | None = None,
) -> Message:
    """`value` on `member`'s intake topic, signed with `signer` (a key, or a member whose key;
    default the member's own; "" leaves it unsigned), naming `account` when given."""
    headers: list[tuple[str, bytes]] = []
    signer = member if signer is None else signer
    if signer != "":
        key = member_key(signer) if isinstance(signer, str) else signer
        headers.append((SIGNATURE, detached_sign(value, key).encode()))
    if account is not None:
        headers.append((ACCOUNT, account.encode()))
    topic = hub.settings.topics.member_intake(member)
    return Message(topic, value, key=record_key, headers=tuple(headers))
