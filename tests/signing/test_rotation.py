"""`cirt-hub keys rotate` on a running hub, on both buses: what was signed before still
verifies, what comes after carries the new kid, and the old key stays in the JWKS."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

from tests.hubs import KEY_PASSPHRASE, RunningHub
from tests.integration.test_taxii_flow import member_identity, read_all, submit
from tests.signing.support import CLI, EXTENSION_ID, get_json, run_verify, verdicts
from tests.stixdata import TLP2, incident_report


async def keys_command(*args: str, passphrase: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("CIRT_HUB_KEY_PASSPHRASE", None)
    if passphrase is not None:
        env["CIRT_HUB_KEY_PASSPHRASE"] = passphrase
    return await asyncio.to_thread(
        subprocess.run, [*CLI, "keys", *args], capture_output=True, text=True, env=env, timeout=60
    )


async def test_rotation_keeps_old_signatures_and_signs_new_objects_with_the_new_key(
    hub: RunningHub, tmp_path: Path
) -> None:
    keys_dir = str(hub.settings.signing_keys_dir)
    jwks_url = hub.base_url + "/.well-known/jwks.json"
    before = incident_report(member_identity(hub, "sn-cert"), "CERT-SN", TLP2["green"])
    assert (await submit(hub, "sn-cert-submit", before)).failure_count == 0
    _, _, old_jwks = await get_json(jwks_url)
    [old] = old_jwks["keys"]

    mistyped = await keys_command("rotate", "--keys-dir", keys_dir, passphrase="not it")
    assert mistyped.returncode == 2 and "passphrase does not open key" in mistyped.stderr
    rotated = await keys_command("rotate", "--keys-dir", keys_dir, passphrase=KEY_PASSPHRASE)
    assert rotated.returncode == 0, rotated.stderr
    new_kid = rotated.stdout.split("new current key ")[1].split(";")[0]
    assert new_kid != old["kid"]

    after = incident_report(member_identity(hub, "sn-cert"), "CERT-SN", TLP2["green"])
    assert (await submit(hub, "sn-cert-submit", after)).failure_count == 0
    kids = {
        o["id"]: o["extensions"][EXTENSION_ID]["kid"]
        for o in await read_all(hub, "region-west-africa", "gh-cert-read")
    }
    # [1:]: both reports hold the member's identity; its newer version is the one read.
    assert {kids[o["id"]] for o in before[1:]} == {old["kid"]}
    assert {kids[o["id"]] for o in after} == {new_kid}

    _, _, jwks = await get_json(jwks_url)
    assert [(k["kid"], k["status"]) for k in jwks["keys"]] == [
        (new_kid, "current"),
        (old["kid"], "retired"),
    ]
    assert jwks["keys"][1]["retired"] >= jwks["keys"][1]["created"]
    listed = await keys_command("list", "--keys-dir", keys_dir, passphrase=None)
    assert f"{new_kid} current" in " ".join(listed.stdout.split())
    assert f"{old['kid']} retired" in " ".join(listed.stdout.split())
    # Retiring destroys the private part: the old key can verify, never sign again.
    assert "private" not in json.loads(Path(keys_dir, f"{old['kid']}.json").read_text())
    assert "destroyed" in listed.stdout

    env = {**os.environ, "CIRT_HUB_PASSWORD": hub.password("gh-cert-read")}
    collection = hub.collection_url("region-west-africa")
    now = await run_verify(collection, "--jwks", jwks_url, "--user", "gh-cert-read", env=env)
    assert now.returncode == 0, now.stderr
    assert now.stdout.count("valid    ") == 7
    stale = tmp_path / "old-jwks.json"
    stale.write_text(json.dumps(old_jwks))
    result = await run_verify(
        collection, "--jwks", str(stale), "--user", "gh-cert-read", "--json", env=env
    )
    assert result.returncode == 1
    outcome = {v["id"]: v["reason"] for v in verdicts(result)}
    assert {outcome[o["id"]] for o in before[1:]} == {"valid"}
    assert {outcome[o["id"]] for o in after} == {"unknown-kid"}
