"""/readyz: ready or not for anyone (a load balancer); the checks' details for operators."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.hubs import RunningHub, running_hub

pytestmark = pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)


async def readiness(hub: RunningHub, **headers: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(hub.base_url + "/readyz", headers=headers) as response,
    ):
        return response.status, await response.json()


def operator(hub: RunningHub) -> str:
    secret = f"hub-operator:{hub.password('hub-operator')}".encode()
    return "Basic " + base64.b64encode(secret).decode()


async def test_readyz_tells_anyone_ready_and_only_operators_the_details(hub: RunningHub) -> None:
    assert await readiness(hub) == (200, {"status": "ready"})
    status, body = await readiness(hub, Authorization=operator(hub))
    assert status == 200 and body["checks"]["keys"]["kid"], body
    assert body["checks"]["pipeline"] == {"ok": True, "restarts": 0}
    # A dashboard session counts as an operator's login too.
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            hub.base_url + "/dashboard/login",
            data={"username": "hub-operator", "password": hub.password("hub-operator")},
            allow_redirects=False,
        ) as response,
    ):
        session_cookie = response.headers["Set-Cookie"].split(";")[0]
    status, body = await readiness(hub, Cookie=session_cookie)
    assert "checks" in body, body
    # Credentials that are not an operator's are refused, not answered in detail.
    reader = f"ng-cert-read:{hub.password('ng-cert-read')}".encode()
    status, body = await readiness(hub, Authorization="Basic " + base64.b64encode(reader).decode())
    assert status == 403 and "checks" not in body


async def test_a_node_that_is_not_ready_says_which_kind_of_check_failed_and_no_more(
    bus_url: str, tmp_path: Path, demo_secrets: Path
) -> None:
    # An API node whose keys folder is still empty: no pipeline node has made the key yet.
    async with running_hub(
        bus_url, tmp_path / "data", demo_secrets, role="api", keys_dir=tmp_path / "keys"
    ) as hub:
        assert await readiness(hub) == (503, {"status": "not ready", "failing": ["keys"]})
        status, body = await readiness(hub, Authorization=operator(hub))
        assert status == 503 and "no signing key yet" in body["checks"]["keys"]["error"], body
