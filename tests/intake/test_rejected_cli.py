"""`cirt-hub rejected list`: operators see what was refused, by whom, why, with the object."""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp

from tests.hubs import RunningHub
from tests.intake.conftest import credentials, wait_complete
from tests.intake.corpus import TAXII, envelope, indicator


async def test_rejected_list_shows_refusals_with_reason_and_object(corpus_hub: RunningHub) -> None:
    hub = corpus_hub
    good, bad = indicator(), indicator(pattern="[ipv4-addr:value = ]")
    headers = {"Accept": TAXII, "Content-Type": TAXII, **credentials(hub, "ng-cert-submit")}
    async with aiohttp.ClientSession() as session:
        url = hub.collection_url("inbox") + "objects/"
        async with session.post(url, data=envelope(good, bad), headers=headers) as response:
            status_id = (await response.json(content_type=None))["id"]
        await wait_complete(session, hub, status_id, "ng-cert-submit")

    settings = hub.settings
    command = [
        sys.executable,
        "-m",
        "hub",
        "rejected",
        "list",
        "--data-dir",
        str(settings.data_dir),
        "--bus",
        settings.bus_url,
        "--topic-prefix",
        settings.topic_prefix,
    ]
    listed = await asyncio.create_subprocess_exec(
        *command,
        "--member",
        "ng-cert",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await listed.communicate()
    assert listed.returncode == 0, err
    (entry,) = [json.loads(line) for line in out.splitlines()]
    assert entry["status_id"] == status_id and entry["account"] == "ng-cert-submit"
    assert entry["reason"] == "invalid-stix" and "pattern" in entry["message"]
    assert entry["object"] == bad
    assert b"1 refusal(s)" in err

    others = await asyncio.create_subprocess_exec(
        *command,
        "--member",
        "gh-cert",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await others.communicate()
    assert out == b"" and b"0 refusal(s)" in err
