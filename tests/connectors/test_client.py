"""The member client (`cirt-hub submit | pull | export | member-key`) against a real hub:
store-and-forward through hub restarts and a killed client, splitting to the hub's limits,
pulls that verify and resume, offline bundles whose signatures survive the trip."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from connectors.client import MemberKey, SubmitQueue
from hub.federation import Federation, Limits
from hub.signing.provenance import EXTENSION_ID, without_extension
from tests.conftest import free_port
from tests.hubs import member_identity, read_all, running_hub, visible_to, with_member_key
from tests.signing.support import run_verify, verdicts
from tests.stixdata import TLP2, shared_objects
from tests.stixdata import indicator as stix_indicator

CLI = [sys.executable, "-m", "hub"]


def report_bundles(folder: Path, identity: str, count: int) -> list[str]:
    """`count` bundle files, each an indicator and a sighting of it, TLP:GREEN; their ids."""
    folder.mkdir()
    ids = []
    for n in range(count):
        pattern = f"[ipv4-addr:value = '198.51.{n // 250}.{n % 250}']"
        indicator = stix_indicator(identity, pattern, name=f"Scanner {n}")
        sighting = {
            "type": "sighting",
            "spec_version": "2.1",
            "id": f"sighting--{uuid.uuid4()}",
            "created": "2026-11-29T08:05:00.000Z",
            "modified": "2026-11-29T08:05:00.000Z",
            "sighting_of_ref": indicator["id"],
            "count": 1,
            "created_by_ref": identity,
            "object_marking_refs": [TLP2["green"]],
        }
        bundle = {
            "type": "bundle",
            "id": f"bundle--{uuid.uuid4()}",
            "objects": [indicator, sighting],
        }
        (folder / f"report-{n:04d}.json").write_text(json.dumps(bundle))
        ids += [indicator["id"], sighting["id"]]
    return ids


async def start_cli(*args: str, password: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "CIRT_HUB_PASSWORD": password}
    return await asyncio.create_subprocess_exec(
        *CLI, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


async def run_cli(*args: str, password: str = "") -> tuple[int, str, str]:
    proc = await start_cli(*args, password=password)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def outcome_lines(proc: asyncio.subprocess.Process, into: list[dict[str, Any]], until: int):
    """Read `--json` outcome lines from `proc` until `into` holds `until` of them (or EOF)."""
    assert proc.stdout is not None
    while len(into) < until:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line:
            return
        into.append(orjson.loads(line))


async def test_queue_delivers_every_object_once_through_hub_restarts_and_a_killed_client(
    tmp_path: Path, demo_secrets: Path
) -> None:
    key = MemberKey.generate()
    port, data = free_port(), tmp_path / "hub"
    hub_kwargs = {"port": port, "adjust": with_member_key("ng-cert", key)}
    key_file = tmp_path / "ng-cert.pem"
    key.save(key_file)
    async with running_hub("embedded", data, demo_secrets, **hub_kwargs) as hub:
        identity = member_identity(hub, "ng-cert")
        password = hub.password("ng-cert-submit")
    ids = report_bundles(tmp_path / "reports", identity, 500)
    queue = tmp_path / "queue"
    common = ("--queue", str(queue), "--url", f"http://127.0.0.1:{port}")
    submit = ("submit", str(tmp_path / "reports"), *common, "--user", "ng-cert-submit")
    submit += ("--key", str(key_file), "--max-objects", "25", "--json")
    seen: list[dict[str, Any]] = []

    async with running_hub("embedded", data, demo_secrets, **hub_kwargs):
        client = await start_cli(*submit, password=password)
        await outcome_lines(client, seen, 250)
    # The hub is down (stopped with requests in flight); the client keeps its queue.
    await asyncio.sleep(1.5)
    assert client.returncode is None, "the client gave up while the hub was down"
    async with running_hub("embedded", data, demo_secrets, **hub_kwargs):
        await outcome_lines(client, seen, 500)
        client.send_signal(signal.SIGKILL)
        await client.wait()
        # Killed mid-run; started again with the same files: nothing is queued twice.
        client = await start_cli(*submit, password=password)
        await outcome_lines(client, seen, 750)
    await asyncio.sleep(1.0)
    async with running_hub("embedded", data, demo_secrets, **hub_kwargs) as hub:
        await outcome_lines(client, seen, 10_000)
        assert await asyncio.wait_for(client.wait(), 60) == 0
        readable = [o["id"] for o in (await visible_to(hub, "gh-cert-read"))["region-west-africa"]]
        delivered = await read_all(hub, "region-west-africa", "gh-cert-read")

    assert Counter(readable) == Counter(ids), "not every object readable exactly once"
    assert all(o["ok"] for o in seen)
    # Outcomes of objects sent before the kill may be printed again by the second client
    # (it resumes the requests the first one posted); each object has at least one.
    assert {o["id"] for o in seen} == set(ids)
    queued = SubmitQueue(queue)
    try:
        assert queued.pending() == 0
        assert len(queued.journal()) == len(ids) and all(o.ok for o in queued.journal())
    finally:
        queued.close()
    # The member's own signature travelled with every object.
    signed = [o["extensions"][EXTENSION_ID].get("member_signature") for o in delivered]
    assert all(signed) and len(signed) == min(len(ids), 1000)


async def test_submit_splits_to_the_hubs_limit_and_names_each_refusal(
    tmp_path: Path, demo_secrets: Path
) -> None:
    def small_requests(federation: Federation) -> Federation:
        limits = Limits(max_content_length=64 * 1024)
        return replace(federation, hub=replace(federation.hub, limits=limits))

    # 300 ATT&CK objects that each fit in a request (the collection object alone does not).
    attack = [
        o for o in shared_objects("mitre-attack/ics-attack-18.1.json") if len(json.dumps(o)) < 8000
    ][:300]
    too_big = {
        "type": "note",
        "spec_version": "2.1",
        "id": f"note--{uuid.uuid4()}",
        "created": "2026-11-29T08:00:00.000Z",
        "modified": "2026-11-29T08:00:00.000Z",
        "content": "x" * 70_000,
        "object_refs": [attack[0]["id"]],
        "object_marking_refs": [TLP2["green"]],
    }
    wrong = {**attack[1], "id": "indicator--not-a-uuid"}
    bundle = tmp_path / "attack.json"
    bundle.write_text(
        json.dumps(
            {
                "type": "bundle",
                "id": f"bundle--{uuid.uuid4()}",
                "objects": [*attack, too_big, wrong],
            }
        )
    )
    async with running_hub(
        "embedded", tmp_path / "hub", demo_secrets, adjust=small_requests
    ) as hub:
        status, out, err = await run_cli(
            "submit",
            str(bundle),
            "--url",
            hub.base_url,
            "--user",
            "ke-cirt-submit",
            password=hub.password("ke-cirt-submit"),
        )
        readable = await visible_to(hub, "ke-cirt-read")
    assert status == 1, err
    lines = out.splitlines()
    assert lines, err
    accepted = [line.split()[1] for line in lines if line.startswith("accepted")]
    assert sorted(accepted) == sorted(o["id"] for o in attack)
    refused = {line.split()[1]: line for line in lines if line.startswith("refused")}
    assert set(refused) == {too_big["id"], wrong["id"]}
    assert "larger than this server accepts" in refused[too_big["id"]]
    assert "indicator--not-a-uuid" in refused[wrong["id"]]
    assert f"{len(attack)} accepted, 2 refused" in err
    mine = {o["id"] for o in readable["member-ke-cirt"]}
    assert {o["id"] for o in attack} <= mine and too_big["id"] not in mine


async def test_pull_verifies_every_signature_and_resumes_where_it_stopped(
    tmp_path: Path, demo_secrets: Path
) -> None:
    out = tmp_path / "feed"
    async with running_hub("embedded", tmp_path / "hub", demo_secrets) as hub:
        identity = member_identity(hub, "ng-cert")
        ids = report_bundles(tmp_path / "reports", identity, 60)
        submit_password = hub.password("ng-cert-submit")
        reader = ("--url", hub.base_url, "--user", "gh-cert-read")
        first = sorted((tmp_path / "reports").glob("*.json"))
        sender = ("--url", hub.base_url, "--user", "ng-cert-submit")
        status, _, err = await run_cli(
            "submit", *map(str, first[:40]), *sender, password=submit_password
        )
        assert status == 0, err
        pull = ("pull", "region-west-africa", *reader, "--out", str(out), "--page-size", "25")
        status, _, err = await run_cli(*pull, password=hub.password("gh-cert-read"))
        assert status == 0, err
        status, _, err = await run_cli(
            "submit", *map(str, first[40:]), *sender, password=submit_password
        )
        assert status == 0, err
        # The hub's storage is tampered with: one stored object is changed behind its back.
        view = sqlite3.connect(hub.settings.data_dir / f"view-{hub.settings.node_id}.sqlite3")
        row = view.execute(
            "SELECT seq, json FROM objects WHERE id = ? AND collection = 'region-west-africa'",
            (ids[-1],),
        ).fetchone()
        forged = orjson.loads(row[1])
        forged["count"] = 500
        view.execute("UPDATE objects SET json = ? WHERE seq = ?", (orjson.dumps(forged), row[0]))
        view.commit()
        view.close()
        status, _, second_err = await run_cli(*pull, password=hub.password("gh-cert-read"))

    assert status == 1, second_err
    assert f"invalid  {ids[-1]}: tampered" in second_err
    written = [
        obj
        for path in sorted(out.glob("region-west-africa-*.json"))
        for obj in orjson.loads(path.read_bytes())["objects"]
    ]
    # Each object once across both pulls, the forged one nowhere.
    assert Counter(o["id"] for o in written) == Counter(ids[:-1])
    assert "40 new objects" in second_err or "20 new objects" in second_err, second_err


async def test_export_travels_offline_and_is_submitted_with_its_signatures(
    tmp_path: Path, demo_secrets: Path
) -> None:
    key_file = tmp_path / "gh-cert.pem"
    status, out, err = await run_cli("member-key", "new", str(key_file), "--unencrypted")
    assert status == 0, err
    jwk = orjson.loads(out.splitlines()[-1].strip().removeprefix("- "))
    key = MemberKey.load(key_file)
    assert jwk == key.public_jwk()

    async with running_hub(
        "embedded", tmp_path / "hub", demo_secrets, adjust=with_member_key("gh-cert", key)
    ) as hub:
        report = report_bundles(tmp_path / "reports", member_identity(hub, "gh-cert"), 3)
        offline = tmp_path / "offline-bundle.json"
        status, _, err = await run_cli(
            "export", str(tmp_path / "reports"), "--key", str(key_file), "--out", str(offline)
        )
        assert status == 0, err
        assert "6 objects (6 signed now" in err
        # A copy changed on the way is refused, object by object, by the hub.
        carried = orjson.loads(offline.read_bytes())
        changed = json.loads(json.dumps(carried))
        changed["objects"][0]["name"] = "changed on the way"
        (tmp_path / "changed.json").write_text(json.dumps(changed))
        password = hub.password("gh-cert-submit")
        login = ("--url", hub.base_url, "--user", "gh-cert-submit")
        status, out, _ = await run_cli(
            "submit", str(tmp_path / "changed.json"), *login, password=password
        )
        assert status == 1 and "does not match the object" in out
        status, out, err = await run_cli("submit", str(offline), *login, password=password)
        assert status == 0, out + err
        delivered = await read_all(hub, "member-gh-cert", "gh-cert-read")
        jwks = tmp_path / "jwks.json"
        jwks.write_text(
            json.dumps(await asyncio.to_thread(_get, f"{hub.base_url}/.well-known/jwks.json"))
        )
        feed = tmp_path / "delivered.json"
        feed.write_text(json.dumps({"objects": delivered}))
        member_keys = f"{hub.base_url}/api/v1/member-keys"
        verified = await run_verify(
            str(feed),
            "--jwks",
            str(jwks),
            "--member-keys",
            member_keys,
            "--user",
            "gh-cert-read",
            "--json",
            env={**os.environ, "CIRT_HUB_PASSWORD": hub.password("gh-cert-read")},
        )
    assert verified.returncode == 0, verified.stderr
    lines = verdicts(verified)
    assert {v["id"] for v in lines} == set(report)
    assert all("member signature of gh-cert valid" in v["message"] for v in lines)
    assert all(
        without_extension(o) in [without_extension(c) for c in carried["objects"]]
        for o in delivered
    )


def _get(url: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())
