"""What the intake tests share: a hub with small limits, credentials, status polling."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from hub.federation import Limits
from tests.hubs import RunningHub, running_hub
from tests.intake.corpus import TAXII

LIMITS = Limits(max_content_length=256 * 1024, max_objects=50, max_depth=16, max_string_length=4096)


@pytest.fixture
async def corpus_hub(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> AsyncIterator[RunningHub]:
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"c{unique}.",
        adjust=lambda f: replace(f, hub=replace(f.hub, limits=LIMITS)),
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
