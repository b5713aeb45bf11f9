"""Webhooks against a real local HTTP receiver, on both buses: the member's URL gets each new
and updated alert as a signed STIX object, after retries when the receiver fails."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import orjson
from aiohttp import web

from hub.api.keys import SIGNING_KEYS
from hub.correlate.alerts import ALERT_PROPERTY
from hub.federation import Federation
from hub.signing.verify import Verifier, hub_keys
from tests.conftest import free_port
from tests.correlate.test_alerts import indicator
from tests.hubs import member_identity, running_hub, submit


async def test_alerts_reach_the_members_webhook_through_failures(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    received: list[dict] = []
    answers = [503, 500]  # the receiver is down twice, then well

    async def receive(request: web.Request) -> web.Response:
        if answers:
            return web.Response(status=answers.pop(0))
        assert request.content_type == "application/stix+json"
        received.append(orjson.loads(await request.read()))
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/cirt-hub-alerts", receive)
    runner = web.AppRunner(receiver)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/cirt-hub-alerts"

    def adjust(federation: Federation) -> Federation:
        rules = [{"scope": "all", "min_members": 2, "min_countries": 2}]
        return replace(federation, correlation={"rules": rules, "webhooks": {"ng-cert": url}})

    try:
        async with running_hub(
            bus_url, tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}.", adjust=adjust
        ) as hub:
            for member in ("ng-cert", "gh-cert", "sn-cert"):
                report = indicator(member_identity(hub, member))
                assert (await submit(hub, f"{member}-submit", [report])).success_count == 1
            deadline = time.monotonic() + 30
            while len(received) < 2:
                assert time.monotonic() < deadline, f"{len(received)} alerts arrived"
                await asyncio.sleep(0.2)
            verifier = Verifier(hub_keys(hub.app[SIGNING_KEYS].jwks()))
    finally:
        await runner.cleanup()
    assert answers == []  # it was refused twice before the first one went through
    first, second = received[:2]
    assert first["id"] == second["id"] and first["modified"] < second["modified"]
    assert [a[ALERT_PROPERTY]["members"] for a in (first, second)] == [2, 3]
    assert all(verifier.verify(a).valid for a in received)
