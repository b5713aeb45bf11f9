"""The member client sends zstd bodies to a hub that says it decodes them (Accept-Encoding
in its answers, remembered with the cached discovery), gzip to one that refuses zstd, and
reads zstd answers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from backports.zstd import compress as zstd_compress

from connectors.client import HubClient
from connectors.client.bundles import envelope
from connectors.client.codings import ZSTD_LEVEL
from tests.conftest import free_port
from tests.hubs import read_all, running_hub
from tests.stixdata import shared_objects


def attack(count: int) -> list[dict[str, Any]]:
    """ATT&CK for ICS objects, the small ones (under 8 KB each)."""
    found = shared_objects("mitre-attack/ics-attack-18.1.json")
    return [o for o in found if len(json.dumps(o)) < 8000][:count]


async def test_submit_sends_zstd_to_a_hub_that_decodes_it_and_reads_zstd_pages(
    tmp_path: Path, demo_secrets: Path
) -> None:
    objects = attack(60)
    batches = [objects[:30], objects[30:]]
    assert all(len(envelope(b)) < 60_000 for b in batches)  # each one request (64 KB at most)
    cache = tmp_path / "discovery.json"
    async with running_hub("embedded", tmp_path / "hub", demo_secrets) as hub:
        # The second run has its discovery cached: it asks the hub nothing before its POST.
        for batch in batches:
            client = HubClient(
                hub.base_url, "ke-cirt-submit", hub.password("ke-cirt-submit"), cache=cache
            )
            async with client:
                result = await client.submit(batch)
            assert result.accepted == len(batch), result.outcomes
            plain = envelope(batch)
            assert client.link.sent == len(zstd_compress(plain, ZSTD_LEVEL))
            assert client.link.sent < len(gzip.compress(plain, 9))
        reader = HubClient(hub.base_url, "ke-cirt-read", hub.password("ke-cirt-read"))
        async with reader:
            page, headers = await reader.objects("member-ke-cirt", {"limit": "100"})
        expected = await read_all(hub, "member-ke-cirt", "ke-cirt-read")
    assert headers["Content-Encoding"] == "zstd" and "zstd" in reader.hub_decodes
    assert {o["id"] for o in objects} <= {o["id"] for o in page["objects"]}
    assert page["objects"] == expected[:100]
    assert reader.link.received < len(gzip.compress(json.dumps(page).encode(), 6))


async def test_a_hub_node_that_refuses_zstd_gets_the_body_again_in_gzip(tmp_path: Path) -> None:
    # A node of the previous release behind the same name as one that said it decodes zstd.
    received: list[str | None] = []

    async def inbox(request: web.Request) -> web.Response:
        received.append(request.headers.get("Content-Encoding"))
        if request.headers.get("Content-Encoding") == "zstd":
            error = {
                "title": "Unsupported media type",
                "description": "Content-Encoding 'zstd' is not supported: send the body as "
                "gzip, deflate or identity",
                "http_status": "415",
            }
            return web.json_response(error, status=415)
        await request.read()
        return web.json_response({"id": "s", "status": "pending"}, status=202)

    app = web.Application()
    app.router.add_post("/taxii2/hub/collections/inbox/objects/", inbox)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        client = HubClient(f"http://127.0.0.1:{port}", "ke-cirt-submit", "secret")
        async with client:
            client.learn("zstd, gzip, deflate")
            answer, _ = await client.request(
                "POST",
                f"http://127.0.0.1:{port}/taxii2/hub/collections/inbox/objects/",
                body=envelope(attack(20)),
                expect=202,
            )
    finally:
        await runner.cleanup()
    assert answer == {"id": "s", "status": "pending"}
    assert received == ["zstd", "gzip"]
    assert "zstd" not in client.hub_decodes
