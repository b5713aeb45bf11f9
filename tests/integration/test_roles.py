"""`--role api` and `--role pipeline` as separate nodes on one bus do the same work as `all`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from taxii2client.v21 import Collection

from hub.stix.predefined import predefined
from tests.hubs import running_hub
from tests.stixdata import TLP2, incident_report


async def test_api_node_and_pipeline_node_share_the_bus(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    data_dir = tmp_path / "shared"  # embedded: both nodes open the same SQLite log
    prefix = f"r{unique}."
    async with (
        running_hub(
            bus_url,
            data_dir,
            demo_secrets,
            topic_prefix=prefix,
            role="pipeline",
            node_id="worker-1",
        ) as worker,
        running_hub(
            bus_url, data_dir, demo_secrets, topic_prefix=prefix, role="api", node_id="api-1"
        ) as api,
    ):
        async with aiohttp.ClientSession() as session:
            async with session.get(worker.base_url + "/taxii2/") as response:
                assert response.status == 404  # a pipeline node serves no TAXII
            async with session.get(worker.base_url + "/readyz") as response:
                assert response.status == 200
        inbox = Collection(
            api.collection_url("inbox"),
            user="tz-cert-submit",
            password=api.password("tz-cert-submit"),
        )
        identity = api.settings.federation.member("tz-cert").identity
        report = incident_report(identity, "TZ-CERT", TLP2["clear"])
        status = await asyncio.to_thread(
            inbox.add_objects, {"objects": report}, poll_interval=0.05, timeout=60
        )
        assert status.status == "complete" and status.success_count == 4
        feed = Collection(
            api.collection_url("public"),
            user="rw-csirt-read",
            password=api.password("rw-csirt-read"),
        )
        got = (await asyncio.to_thread(feed.get_objects))["objects"]
        # `public` also holds the TLP definitions and the hub's extension-definition.
        assert {o["id"] for o in got} - predefined().keys() == {o["id"] for o in report}
