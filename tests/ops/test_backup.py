"""`cirt-hub backup` while members post, then `cirt-hub restore` into an empty data dir: every
object that got its 202 before the backup began is readable from the restored hub, the audit
chain verifies, and the restored hub signs with the same (still sealed) keys."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import aiohttp
import orjson
import pytest

from hub.demo import demo_federation
from hub.signing.keyring import PASSPHRASE_ENV
from hub.signing.verify import Verifier, hub_keys
from tests.conftest import free_port
from tests.faults.support import (
    TAXII,
    HubProcess,
    Tally,
    account_passwords,
    basic,
    collection_ids,
    post_forever,
    settle,
)
from tests.processes import stop

CLI = [sys.executable, "-m", "hub"]
PASSPHRASE = {PASSPHRASE_ENV: "a passphrase the operator keeps elsewhere"}
READER, FEED = "sn-cert-read", "region-west-africa"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


async def jwks(node: HubProcess) -> dict:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{node.base_url}/.well-known/jwks.json") as response,
    ):
        return await response.json(content_type=None)


async def feed_objects(node: HubProcess, password: str) -> list[dict]:
    headers = {"Authorization": basic(READER, password), "Accept": TAXII}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{node.base_url}/taxii2/hub/collections/", headers=headers) as r:
            listing = await r.json(content_type=None)
        cid = next(c["id"] for c in listing["collections"] if c.get("alias") == FEED)
        url = f"{node.base_url}/taxii2/hub/collections/{cid}/objects/"
        async with http.get(url, headers=headers, params={"limit": "1000"}) as r:
            return (await r.json(content_type=None)).get("objects", [])


@pytest.mark.timeout(180)
async def test_backup_under_load_restores_every_accepted_object_chain_and_keys(
    tmp_path: Path, demo_secrets: Path
) -> None:
    federation, _ = demo_federation(demo_secrets.parent)
    passwords = account_passwords(demo_secrets)
    node = HubProcess(tmp_path / "hub", free_port(), env=PASSPHRASE)
    node.start(demo_secrets)
    tally, halt = Tally(), asyncio.Event()
    try:
        await node.ready()
        keys_before = await jwks(node)
        posters = [
            asyncio.create_task(
                post_forever(
                    node.base_url,
                    f"{member}-submit",
                    passwords[f"{member}-submit"],
                    federation.member(member).identity,
                    tally,
                    halt,
                    per_request=3,
                    pause=0.02,
                )
            )
            for member in ("ng-cert", "gh-cert")
        ]
        while len(tally.accepted) < 60:
            await asyncio.sleep(0.1)
        before_backup = set(tally.accepted)
        dest = tmp_path / "backup"
        taken = await asyncio.create_subprocess_exec(
            *CLI,
            "backup",
            str(dest),
            "--data-dir",
            str(node.data_dir),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await taken.communicate()
        during_backup = len(tally.accepted) - len(before_backup)
        halt.set()
        await asyncio.gather(*posters)
    finally:
        halt.set()
        stop(node.proc)
    assert taken.returncode == 0, err.decode()
    assert during_backup > 0, "the hub took no submission while the backup ran"
    assert set(tally.statuses) == {202}, tally.statuses
    manifest = orjson.loads((dest / "manifest.json").read_bytes())
    names = {f["path"] for f in manifest["files"]}
    assert {"data/bus.sqlite3", "data/node-id", "data/pseudonym.key", "keys/intake.key"} <= names
    assert not any(n.startswith("data/keys/") for n in names)  # keys are their own part
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    assert "log point:" in out.decode() and manifest["audit_head"]
    # The private signing key stays sealed under the passphrase in the backup.
    (key_file,) = [dest / n for n in names if n.startswith("keys/") and n.endswith(".json")]
    sealed = orjson.loads(key_file.read_bytes())["private"]
    assert sealed["kdf"] == "scrypt" and "ciphertext" in sealed

    restored = HubProcess(tmp_path / "restored", free_port(), env=PASSPHRASE)
    done = cli("restore", str(dest), "--data-dir", str(restored.data_dir))
    assert done.returncode == 0, done.stderr
    # The chain as it was at the backup point, before the restored hub adds to it.
    verified = cli("audit", "verify", "--data-dir", str(restored.data_dir))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"head: {manifest['audit_head']}" in verified.stdout

    restored.start(demo_secrets)
    try:
        await restored.ready()
        assert await jwks(restored) == keys_before
        found = await settle(
            lambda: collection_ids(restored.base_url, FEED, READER, passwords[READER]),
            before_backup,
            timeout=60,
        )
        missing = before_backup - set(found)
        assert not missing, f"{len(missing)} of {len(before_backup)} accepted objects lost"
        assert not set(found) - set(tally.accepted)
        verifier = Verifier(hub_keys(keys_before))
        objects = [o for o in await feed_objects(restored, passwords[READER]) if "pattern" in o]
        verdicts = [verifier.verify(o) for o in objects]
        assert verdicts and all(v.valid for v in verdicts), verdicts[:3]
        assert {v.kid for v in verdicts} == {k["kid"] for k in keys_before["keys"]}
    finally:
        stop(restored.proc)
    after = cli("audit", "verify", "--data-dir", str(restored.data_dir))
    assert after.returncode == 0, after.stdout + after.stderr


def test_restore_refuses_a_damaged_backup_and_a_data_dir_in_use(
    tmp_path: Path, demo_secrets: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "node-id").write_text("node-abc\n")
    (data / "keys").mkdir()
    (data / "keys" / "intake.key").write_text("{}")
    made = cli("backup", str(tmp_path / "b"), "--data-dir", str(data))
    assert made.returncode == 0, made.stderr

    in_use = cli("restore", str(tmp_path / "b"), "--data-dir", str(data))
    assert in_use.returncode == 1
    assert f"data dir {data} is not empty" in in_use.stderr

    (tmp_path / "b" / "data" / "node-id").write_text("node-xyz\n")
    damaged = cli("restore", str(tmp_path / "b"), "--data-dir", str(tmp_path / "new"))
    assert damaged.returncode == 1
    assert "data/node-id: damaged" in damaged.stderr
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())

    again = cli("backup", str(tmp_path / "b"), "--data-dir", str(data))
    assert again.returncode == 1 and "is not empty" in again.stderr


def test_on_kafka_the_backup_holds_keys_and_node_files_not_the_views(tmp_path: Path) -> None:
    data, keys = tmp_path / "data", tmp_path / "keys"
    data.mkdir()
    keys.mkdir()
    (data / "node-id").write_text("node-abc\n")
    (data / "pseudonym.key").write_text("k" * 64)
    (data / "view-node-abc.sqlite3").write_bytes(b"")  # rebuilt from the topics instead
    with closing(sqlite3.connect(data / "notify-node-abc.sqlite3")) as notify:
        notify.execute("CREATE TABLE subscriptions (id TEXT)")  # nowhere else: backed up
        notify.commit()
    (keys / "intake.key").write_text("{}")
    made = cli(
        "backup",
        str(tmp_path / "b"),
        "--data-dir",
        str(data),
        "--keys-dir",
        str(keys),
        "--bus",
        "kafka://127.0.0.1:9092",
    )
    assert made.returncode == 0, made.stderr
    assert "the topics are not in this backup" in made.stdout
    manifest = orjson.loads((tmp_path / "b" / "manifest.json").read_bytes())
    assert {f["path"] for f in manifest["files"]} >= {
        "data/node-id",
        "data/pseudonym.key",
        "data/notify-node-abc.sqlite3",
        "keys/intake.key",
    }
    assert not any("view-" in f["path"] for f in manifest["files"])
    restored = cli(
        "restore",
        str(tmp_path / "b"),
        "--data-dir",
        str(tmp_path / "d2"),
        "--keys-dir",
        str(tmp_path / "k2"),
    )
    assert restored.returncode == 0, restored.stderr
    assert (tmp_path / "k2" / "intake.key").read_text() == "{}"
    assert (tmp_path / "d2" / "node-id").read_text() == "node-abc\n"
