"""Per-member rate limits and quotas at the inbox, over a real server: a member over its
rate gets 429 with Retry-After and a TAXII error naming the limit, while another member
posting at the same time is unaffected; objects/s and bytes/day alike; all in metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from hub.federation import Federation, RateLimits
from tests.api.test_metrics import scrape, value
from tests.hubs import RunningHub, member_identity, running_hub
from tests.stixdata import TLP2, incident_report

TAXII = "application/taxii+json;version=2.1"
pytestmark = [pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="module")]

LIMITS = {
    "ng-cert": RateLimits(requests_per_second=2),
    "ke-cirt": RateLimits(objects_per_second=4),
    "sn-cert": RateLimits(bytes_per_day=3000),
}


def limited(federation: Federation) -> Federation:
    return replace(
        federation,
        members=tuple(
            replace(m, rate_limits=LIMITS.get(m.id, m.rate_limits)) for m in federation.members
        ),
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hub(
    tmp_path_factory: pytest.TempPathFactory, demo_secrets: Path
) -> AsyncIterator[RunningHub]:
    """One hub for the module: ng-cert 2 requests/s, ke-cirt 4 objects/s, sn-cert 3,000
    bytes a day, gh-cert unlimited."""
    data_dir = tmp_path_factory.mktemp("hub") / "data"
    async with running_hub("embedded", data_dir, demo_secrets, adjust=limited) as running:
        # Each account logs in once first, so a burst is not spread out by scrypt's first run.
        async with aiohttp.ClientSession() as session:
            for member in ("ng-cert", "gh-cert", "ke-cirt", "sn-cert"):
                username = f"{member}-submit"
                auth = aiohttp.encode_basic_auth(username, running.password(username))
                headers = {"Authorization": auth, "Accept": TAXII}
                async with session.get(running.api_root, headers=headers) as response:
                    assert response.status == 200
        yield running


async def post(
    session: aiohttp.ClientSession, hub: RunningHub, member: str, objects: int = 1
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """POST `objects` objects as `member`: an incident report's first ones, or its identity
    object repeated (the API counts objects; what the pipeline makes of them is not tested
    here)."""
    report = incident_report(member_identity(hub, member), member, TLP2["green"])
    body = {"objects": report[:objects] if objects <= len(report) else report[:1] * objects}
    username = f"{member}-submit"
    async with session.post(
        hub.api_root + "collections/inbox/objects/",
        data=json.dumps(body),
        headers={
            "Authorization": aiohttp.encode_basic_auth(username, hub.password(username)),
            "Content-Type": TAXII,
            "Accept": TAXII,
        },
    ) as response:
        return response.status, dict(response.headers), await response.json(content_type=None)


def assert_limited(answer: tuple[int, dict[str, str], dict[str, Any]], limit: str) -> int:
    """The answer is a 429 naming `limit`; its Retry-After (seconds)."""
    status, headers, body = answer
    assert status == 429, body
    assert body["http_status"] == "429" and body["title"] == "Too many requests"
    assert body["details"] == {"limit": limit} and limit in body["description"]
    assert "nothing was stored" in body["description"]
    return int(headers["Retry-After"])


async def test_a_member_over_its_rate_gets_429_while_another_member_is_unaffected(
    hub: RunningHub,
) -> None:
    async with aiohttp.ClientSession() as session:
        # Both members post 8 submissions at once; ng-cert may make 2 a second.
        answers = await asyncio.gather(
            *(post(session, hub, member) for _ in range(8) for member in ("ng-cert", "gh-cert"))
        )
        ng = [a for i, a in enumerate(answers) if i % 2 == 0]
        gh = [a for i, a in enumerate(answers) if i % 2 == 1]
        assert [a[0] for a in gh] == [202] * 8, gh
        assert sorted(a[0] for a in ng) == [202] * 2 + [429] * 6, ng
        waits = {assert_limited(a, "requests_per_second") for a in ng if a[0] == 429}
        assert waits == {1}
        await asyncio.sleep(1)
        assert (await post(session, hub, "ng-cert"))[0] == 202  # accepted again on its own
    samples = await scrape(hub)
    limited = "cirt_hub_rate_limited_total"
    assert value(samples, limited, member="ng-cert", limit="requests_per_second") == 6
    assert value(samples, limited, member="gh-cert", limit="requests_per_second") == 0
    assert value(samples, "cirt_hub_submissions_total", member="gh-cert", outcome="accepted") == 8


async def test_objects_per_second_takes_a_large_submission_whole_then_waits(
    hub: RunningHub,
) -> None:
    async with aiohttp.ClientSession() as session:
        assert (await post(session, hub, "ke-cirt", objects=12))[0] == 202  # 8 objects in debt
        wait = assert_limited(await post(session, hub, "ke-cirt"), "objects_per_second")
        assert 1 <= wait <= 2  # 8 objects at 4 a second, less what refilled meanwhile
        assert (await post(session, hub, "gh-cert", objects=12))[0] == 202  # unlimited
        await asyncio.sleep(wait)
        assert (await post(session, hub, "ke-cirt"))[0] == 202


async def test_bytes_per_day_refuses_until_the_next_utc_day(hub: RunningHub) -> None:
    async with aiohttp.ClientSession() as session:
        # A 4-object report is ~1,800 bytes: the second crosses 3,000 and is still taken.
        assert (await post(session, hub, "sn-cert", objects=4))[0] == 202
        assert (await post(session, hub, "sn-cert", objects=4))[0] == 202
        answer = await post(session, hub, "sn-cert", objects=1)
        wait = assert_limited(answer, "bytes_per_day")
        now = datetime.now(UTC)
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        assert abs(wait - (midnight - now).total_seconds()) < 5
    samples = await scrape(hub)
    assert value(samples, "cirt_hub_submitted_bytes_total", member="sn-cert") > 3000
    assert value(samples, "cirt_hub_rate_limited_total", member="sn-cert", limit="bytes_per_day")
