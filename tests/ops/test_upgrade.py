"""A data dir written by the previous release starts under this one, keeping what it held; a
data dir written by a later release stops this one, naming both versions.

The previous release's data dir is a fixture (tests/ops/fixtures/previous-release.tar.gz,
18 KB) made by running that commit's code (make_previous_release.py beside it says how),
so the test needs no git history and keeps testing the same old data dir as main moves on.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import aiohttp
import orjson

from hub.ops.datadir import CURRENT_FORMAT, FORMAT_FILE, hub_version
from tests.conftest import free_port
from tests.faults.support import TAXII, HubProcess, basic, collection_ids, settle
from tests.processes import stop

FIXTURES = Path(__file__).parent / "fixtures"
CLI = [sys.executable, "-m", "hub"]


def previous_release(into: Path) -> tuple[Path, dict]:
    with tarfile.open(FIXTURES / "previous-release.tar.gz") as tar:
        tar.extractall(into, filter="data")
    return into / "data", json.loads((FIXTURES / "previous-release.json").read_text())


async def versions(node: HubProcess, reader: str, password: str, feed: str, oid: str) -> list:
    headers = {"Authorization": basic(reader, password), "Accept": TAXII}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{node.base_url}/taxii2/hub/collections/", headers=headers) as r:
            listing = await r.json(content_type=None)
        cid = next(c["id"] for c in listing["collections"] if c.get("alias") == feed)
        url = f"{node.base_url}/taxii2/hub/collections/{cid}/objects/{oid}/versions/"
        async with http.get(url, headers=headers) as r:
            return (await r.json(content_type=None)).get("versions", [])


async def looked_up(node: HubProcess, reader: str, password: str, value: str) -> set[str]:
    headers = {"Authorization": basic(reader, password)}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{node.base_url}/api/v1/lookup", params={"value": value}, headers=headers) as r,
    ):
        assert r.status == 200, await r.text()
        return {o["id"] for o in (await r.json())["objects"]}


async def test_a_data_dir_of_the_previous_release_starts_and_keeps_everything(
    tmp_path: Path,
) -> None:
    data, made = previous_release(tmp_path)
    assert not (data / FORMAT_FILE).exists()  # the previous release recorded no format
    secrets = data / "demo-accounts.json"
    passwords = {u: e["password"] for u, e in orjson.loads(secrets.read_bytes())["secrets"].items()}
    node = HubProcess(data, free_port(), log_dir=tmp_path)
    node.start(secrets)
    try:
        await node.ready()
        reader = made["reader"]
        found = await settle(
            lambda: collection_ids(node.base_url, made["feed"], reader, passwords[reader]),
            set(made["ids"]),
            timeout=30,
        )
        assert set(made["ids"]) <= set(found)
        kept = await versions(node, reader, passwords[reader], made["feed"], made["indicator"])
        assert len(kept) == len(made["versions"]), kept
        # The lookup index, which that release did not have, finds what it held (its
        # indicator was revoked: its value is not current any more).
        assert await looked_up(node, reader, passwords[reader], "tax portal") == {
            next(i for i in made["ids"] if i.startswith("incident--"))
        }
        assert await looked_up(node, reader, passwords[reader], "203.0.113.45") == set()
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{node.base_url}/.well-known/jwks.json") as r,
        ):
            assert [k["kid"] for k in (await r.json())["keys"]] == made["kids"]
    finally:
        stop(node.proc)
    recorded = orjson.loads((data / FORMAT_FILE).read_bytes())
    assert recorded == {"format": CURRENT_FORMAT, "written_by": hub_version()}
    verified = await asyncio.to_thread(
        subprocess.run,
        [*CLI, "audit", "verify", "--data-dir", str(data)],
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_data_dir_of_a_later_release_stops_startup_naming_both_versions(
    tmp_path: Path,
) -> None:
    data, _ = previous_release(tmp_path)
    later = {"format": CURRENT_FORMAT + 1, "written_by": "9.4.0"}
    (data / FORMAT_FILE).write_bytes(orjson.dumps(later))
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    result = subprocess.run(
        [*CLI, "serve", "--data-dir", str(data), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "written by cirt-hub 9.4.0" in result.stderr
    assert f"this is cirt-hub {hub_version()}" in result.stderr
    assert f"data format {CURRENT_FORMAT + 1}" in result.stderr
    # Refused before anything opened the data dir: every file is as it was.
    after = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    assert {p: b for p, b in after.items() if p.name != ".upgrade.lock"} == before


async def test_the_upgrade_is_recorded_once_and_a_new_data_dir_starts_current(
    tmp_path: Path,
) -> None:
    from hub.ops.datadir import upgrade

    data, _ = previous_release(tmp_path)
    ran = await asyncio.to_thread(upgrade, data)
    assert [s.to for s in ran] == list(range(2, CURRENT_FORMAT + 1))
    assert await asyncio.to_thread(upgrade, data) == []  # forward-only, once
    fresh = tmp_path / "fresh"
    assert await asyncio.to_thread(upgrade, fresh) == []
    assert orjson.loads((fresh / FORMAT_FILE).read_bytes())["format"] == CURRENT_FORMAT
