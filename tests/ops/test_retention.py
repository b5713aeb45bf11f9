"""Retention set in the federation file, applied to a running hub's data dir: superseded
versions go (never the latest, never a revocation, never the audit chain), so do processed
intake and rejected records; what it freed is reported; TAXII `versions` lists what is
left; and the hub goes on taking and serving submissions after it."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import orjson

from tests.conftest import free_port
from tests.faults.support import TAXII, HubProcess, account_passwords, basic
from tests.processes import stop
from tests.stixdata import TLP2, indicator

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "federation.yaml"
CLI = [sys.executable, "-m", "hub"]
SUBMITTER, READER, FEED = "sn-cert-submit", "gh-cert-read", "region-west-africa"
IDENTITY = "identity--00d8f8a4-6a4b-4b59-9bd1-5c0a5d6c1f10"  # sn-cert's, in the example


def federation_file(tmp_path: Path, secrets: Path, retention: str) -> Path:
    """The example federation with the demo secrets' hashes and a `hub.retention` block."""
    hashes = {u: e["secret_hash"] for u, e in orjson.loads(secrets.read_bytes())["secrets"].items()}
    lines, user = [], None
    for line in EXAMPLE.read_text().splitlines():
        if m := re.match(r"\s*- username: (\S+)", line):
            user = m.group(1)
        if "secret_hash:" in line and user:
            line = line.split("secret_hash:")[0] + f'secret_hash: "{hashes[user]}"'
        lines.append(line)
        if line == "hub:":
            lines.append(retention)
    path = tmp_path / "federation.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Client:
    def __init__(self, node: HubProcess, passwords: dict[str, str]) -> None:
        self.base = f"{node.base_url}/taxii2/hub/collections/"
        self.passwords = passwords

    def headers(self, user: str) -> dict[str, str]:
        auth = basic(user, self.passwords[user])
        return {"Authorization": auth, "Accept": TAXII, "Content-Type": TAXII}

    async def post(self, objects: list[dict]) -> None:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{self.base}inbox/objects/",
                data=orjson.dumps({"objects": objects}),
                headers=self.headers(SUBMITTER),
            ) as response,
        ):
            assert response.status == 202, await response.text()

    async def versions(self, oid: str) -> list[str]:
        async with aiohttp.ClientSession() as http:
            async with http.get(self.base, headers=self.headers(READER)) as r:
                listing = await r.json(content_type=None)
            cid = next(c["id"] for c in listing["collections"] if c.get("alias") == FEED)
            url = f"{self.base}{cid}/objects/{oid}/versions/"
            async with http.get(url, headers=self.headers(READER)) as r:
                if r.status == 404:
                    return []
                return (await r.json(content_type=None)).get("versions", [])

    async def until_versions(self, oid: str, count: int) -> list[str]:
        for _ in range(150):
            found = await self.versions(oid)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.2)
        raise AssertionError(f"{oid}: {found}")


async def topic_bytes(node: HubProcess, client: Client) -> dict[str, float]:
    """cirt_hub_topic_bytes by topic, from /metrics as an operator reads it."""
    auth = basic("hub-operator", client.passwords["hub-operator"])
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{node.base_url}/metrics", headers={"Authorization": auth}) as response,
    ):
        text = await response.text()
    found = {}
    for line in text.splitlines():
        if m := re.match(r'cirt_hub_topic_bytes\{topic="([^"]+)"\} (\S+)', line):
            found[m[1]] = float(m[2])
    return found


def version(obj: dict, modified: str, **more: object) -> dict:
    return {**obj, "modified": modified, **more}


async def run(*args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(
        subprocess.run, [*CLI, *args], capture_output=True, text=True, timeout=60
    )


async def test_retention_keeps_latest_versions_revocations_and_the_audit_chain(
    tmp_path: Path, demo_secrets: Path
) -> None:
    config = federation_file(
        tmp_path,
        demo_secrets,
        "  retention:\n    superseded_versions_days: 0\n    intake_days: 0\n    rejected_days: 0",
    )
    node = HubProcess(
        tmp_path / "data", free_port(), extra=("--config", str(config), "--insecure-dev-keys")
    )
    node.start(demo_secrets)
    client = Client(node, account_passwords(demo_secrets))
    bulky = "scan log excerpt " * 2000  # 34 KB: versions that fill pages of their own
    kept = indicator(IDENTITY, "[ipv4-addr:value = '198.51.100.7']", TLP2["green"])
    gone = indicator(IDENTITY, "[ipv4-addr:value = '198.51.100.8']", TLP2["green"])
    try:
        await node.ready()
        for n, modified in enumerate(("2030-01-01", "2030-02-01", "2030-03-01")):
            obj = version(kept, f"{modified}T00:00:00.000Z", description=f"{n} {bulky}")
            await client.post([obj])
        await client.post([version(gone, "2030-01-01T00:00:00.000Z")])
        await client.post([version(gone, "2030-04-01T00:00:00.000Z", revoked=True)])
        for _ in range(2):  # refused (no pattern): records on `rejected`, the last one kept
            await client.post([{"type": "indicator", "id": gone["id"].replace("8", "9")}])
        await client.until_versions(kept["id"], 3)
        await client.until_versions(gone["id"], 2)
        before = await run("audit", "verify", "--data-dir", str(node.data_dir))
        assert before.returncode == 0, before.stdout
        feed_bytes = (await topic_bytes(node, client))["cirt-hub.feed.region-west-africa"]
        assert feed_bytes > 3 * len(bulky)

        done = await run(
            "retention", "run", "--config", str(config), "--data-dir", str(node.data_dir)
        )
        assert done.returncode == 0, done.stderr
        printed = {line.split(":")[0]: line for line in done.stdout.splitlines()}
        # Two versions of `kept` and one of `gone`, in each feed a GREEN object reaches.
        for store in ("log", next(k for k in printed if k.startswith("view-"))):
            superseded = int(re.search(r"superseded (\d+)", printed[store])[1])
            assert superseded >= 3 and superseded % 3 == 0, printed[store]
        assert "intake " in printed["log"] and "rejected 1" in printed["log"], printed["log"]
        assert "receipts " in printed["log"], printed["log"]  # sn-cert's, on the embedded log
        freed = [int(re.search(r"freed (\d+) bytes", line)[1]) for line in printed.values()]
        assert all(f > 60_000 for f in freed), done.stdout  # the two bulky versions, each

        assert await client.versions(kept["id"]) == ["2030-03-01T00:00:00.000Z"]
        assert await client.versions(gone["id"]) == ["2030-04-01T00:00:00.000Z"]  # revoked
        # What the feed's topic holds, as /metrics counts it, went down by the two versions.
        left = (await topic_bytes(node, client))["cirt-hub.feed.region-west-africa"]
        assert feed_bytes - left > 2 * len(bulky), (feed_bytes, left)
        after = await run("audit", "verify", "--data-dir", str(node.data_dir))
        assert after.returncode == 0 and after.stdout == before.stdout  # the chain, whole

        # The log with holes goes on: a later version is taken, routed and read.
        await client.post([version(kept, "2030-05-01T00:00:00.000Z")])
        assert await client.until_versions(kept["id"], 2) == [
            "2030-03-01T00:00:00.000Z",
            "2030-05-01T00:00:00.000Z",
        ]
        again = await run(
            "retention", "run", "--config", str(config), "--data-dir", str(node.data_dir)
        )
        assert "log: deleted intake" in again.stdout, again.stdout  # the older intake record
    finally:
        stop(node.proc)

    # A view rebuilt from the pruned log holds what the pruned view held.
    for view in node.data_dir.glob("view-*"):
        view.unlink()
    node.start(demo_secrets)
    try:
        await node.ready()
        assert await client.until_versions(kept["id"], 1) == ["2030-05-01T00:00:00.000Z"]
        assert await client.versions(gone["id"]) == ["2030-04-01T00:00:00.000Z"]
    finally:
        stop(node.proc)


async def test_a_retention_that_cannot_work_stops_the_check_naming_the_field(
    tmp_path: Path, demo_secrets: Path
) -> None:
    config = federation_file(tmp_path, demo_secrets, "  retention:\n    intake_days: -3")
    result = await run("check-config", str(config))
    assert result.returncode == 2
    assert "hub.retention.intake_days:" in result.stderr, result.stderr


async def test_the_hub_applies_retention_by_itself_and_counts_it(
    tmp_path: Path, demo_secrets: Path
) -> None:
    config = federation_file(
        tmp_path,
        demo_secrets,
        "  retention:\n    superseded_versions_days: 0\n    interval_hours: 0.0005",  # 1.8 s
    )
    node = HubProcess(
        tmp_path / "data", free_port(), extra=("--config", str(config), "--insecure-dev-keys")
    )
    node.start(demo_secrets)
    passwords = account_passwords(demo_secrets)
    client = Client(node, passwords)
    obj = indicator(IDENTITY, "[ipv4-addr:value = '198.51.100.10']", TLP2["green"])
    try:
        await node.ready()
        await client.post([version(obj, "2030-01-01T00:00:00.000Z")])
        await client.post([version(obj, "2030-02-01T00:00:00.000Z")])
        for _ in range(100):
            if await client.versions(obj["id"]) == ["2030-02-01T00:00:00.000Z"]:
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(await client.versions(obj["id"]))
        headers = {"Authorization": basic("hub-operator", passwords["hub-operator"])}
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{node.base_url}/metrics", headers=headers) as response,
        ):
            text = await response.text()
        deleted = [line for line in text.splitlines() if "retention_deleted_total{" in line]
        assert any('store="log"' in line for line in deleted), deleted
        assert any('store="view"' in line for line in deleted), deleted
        assert "retention applied" in node.output()
    finally:
        stop(node.proc)
