"""Backpressure at intake: while the pipeline is further behind than the configured bound a
POST gets 503 with Retry-After (nothing stored), and intake opens again by itself once the
pipeline has caught up."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import orjson

from tests.faults.support import TAXII, basic, indicator
from tests.hubs import RunningHub, running_hub
from tests.stixdata import TLP2


async def post(hub: RunningHub, n: int, member: str = "ng-cert") -> aiohttp.ClientResponse:
    identity = hub.settings.federation.member(member).identity
    headers = {
        "Authorization": basic(f"{member}-submit", hub.password(f"{member}-submit")),
        "Content-Type": TAXII,
        "Accept": TAXII,
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            hub.collection_url("inbox") + "objects/",
            data=orjson.dumps({"objects": [indicator(identity, TLP2["green"], n)]}),
            headers=headers,
        ) as response,
    ):
        await response.read()
        return response


async def until_status(
    hub: RunningHub, wanted: int, start: int
) -> tuple[aiohttp.ClientResponse, int]:
    """POST (new objects) until the answer is `wanted`; that answer and the next free n."""
    deadline = time.monotonic() + 30
    n = start
    while True:
        response = await post(hub, n)
        n += 1
        if response.status == wanted:
            return response, n
        assert time.monotonic() < deadline, f"never {wanted}, last {response.status}"
        await asyncio.sleep(0.1)


async def test_intake_closes_over_the_lag_bound_and_opens_again(
    tmp_path: Path, demo_secrets: Path
) -> None:
    data_dir = tmp_path / "shared"
    tuning = {"max_intake_lag": 3, "intake_lag_interval": 0.1}
    # An API node alone: nothing works the intake off, so the lag grows with every 202.
    async with running_hub("embedded", data_dir, demo_secrets, role="api", **tuning) as api:
        refused, n = await until_status(api, 503, 0)
        assert n > 3  # the first submissions, within the bound, were taken
        assert refused.headers["Retry-After"].isdigit()
        body = await post(api, 10_000)
        assert body.status == 503
        # A pipeline node starts and catches up: intake opens again without anyone's help.
        async with running_hub(
            "embedded", data_dir, demo_secrets, role="pipeline", node_id="node-pipeline"
        ):
            accepted, _ = await until_status(api, 202, n)
    assert accepted.status == 202


async def test_one_members_backlog_does_not_close_intake_to_the_others(
    tmp_path: Path, demo_secrets: Path
) -> None:
    """Each member's submissions wait in a queue of their own (its intake topic), worked
    beside the others': one member far behind is refused, not everyone."""
    tuning = {"max_intake_lag": 3, "intake_lag_interval": 0.1, "role": "api"}
    async with running_hub("embedded", tmp_path / "data", demo_secrets, **tuning) as api:
        refused, _ = await until_status(api, 503, 0)
        assert "submissions of 'ng-cert' behind" in await refused.text()
        assert (await post(api, 10_001, member="gh-cert")).status == 202
        assert (await post(api, 10_002)).status == 503
