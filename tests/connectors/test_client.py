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
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from connectors.client import Backoff, HubClient, MemberKey, SubmitQueue
from connectors.client.link import Link, LinkState
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


class Throttle:
    """A TCP proxy on loopback in front of a hub: `rate` bytes per second towards the
    client, or nothing at all while `frozen` (connections stay open: a link gone quiet)."""

    def __init__(self, target_port: int, rate: float) -> None:
        self.target_port = target_port
        self.rate = rate
        self.frozen = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Throttle:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, paced: bool
    ) -> None:
        try:
            while data := await reader.read(1024 if paced else 65536):
                while self.frozen.is_set():
                    await asyncio.sleep(0.05)
                if paced:
                    await asyncio.sleep(len(data) / self.rate)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hub_reader, hub_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        await asyncio.gather(
            self._pipe(reader, hub_writer, False), self._pipe(hub_reader, writer, True)
        )


async def test_a_request_lives_while_bytes_move_and_is_sent_again_when_they_stop(
    tmp_path: Path, demo_secrets: Path
) -> None:
    async with running_hub("embedded", tmp_path / "hub", demo_secrets) as hub:
        identity = member_identity(hub, "ng-cert")
        report_bundles(tmp_path / "reports", identity, 60)
        status, _, err = await run_cli(
            "submit",
            str(tmp_path / "reports"),
            "--url",
            hub.base_url,
            "--user",
            "ng-cert-submit",
            password=hub.password("ng-cert-submit"),
        )
        assert status == 0, err
        # --max-rate: the same page, straight from the hub, paced to 4 KB/s.
        capped = HubClient(
            hub.base_url, "gh-cert-read", hub.password("gh-cert-read"), link=Link(max_rate=4096)
        )
        async with capped:
            await capped.collection_url("region-west-africa")
            started = time.monotonic()
            page, _ = await capped.objects("region-west-africa", {"limit": "120"})
            paced = time.monotonic() - started
        wire = capped.link.received
        # A second's worth may go at once; the rest at the cap.
        assert paced >= (wire - 4096) / 4096 - 0.5 > 1.0, (paced, wire)
        port = int(hub.base_url.rsplit(":", 1)[1])
        # 3 KB/s: a page of 120 objects (16 KB gzipped) takes several times the stall limit.
        async with Throttle(port, 3_000) as throttle:
            said: list[LinkState] = []
            link = Link()
            link.listeners.append(said.append)
            client = HubClient(
                f"http://127.0.0.1:{throttle.port}",
                "gh-cert-read",
                hub.password("gh-cert-read"),
                stall=1.5,
                link=link,
                backoff=Backoff(deadline=60),
            )
            async with client:
                started = time.monotonic()
                page, _ = await client.objects("region-west-africa", {"limit": "120"})
                slow = time.monotonic() - started
                assert len(page["objects"]) == 120
                assert slow > 3 * 1.5 and said == [], (slow, said)

                async def freeze_for_a_while() -> None:
                    await asyncio.sleep(1.0)
                    throttle.frozen.set()
                    await asyncio.sleep(5.0)
                    throttle.frozen.clear()

                freezing = asyncio.ensure_future(freeze_for_a_while())
                page, _ = await client.objects("region-west-africa", {"limit": "120"})
                await freezing
    assert len(page["objects"]) == 120
    # The stall was noticed and said while it lasted, then the link was up again.
    assert said and "no byte moved for 1.5 s while receiving the answer" in said[0].why
    assert said[0].down_since is not None and said[-1].down_since is None


async def test_queue_status_list_and_retry_show_the_whole_queue(
    tmp_path: Path, demo_secrets: Path
) -> None:
    queue = tmp_path / "queue"
    async with running_hub("embedded", tmp_path / "hub", demo_secrets) as hub:
        ids = report_bundles(tmp_path / "reports", member_identity(hub, "ng-cert"), 3)
        wrong = json.loads((tmp_path / "reports" / "report-0000.json").read_text())
        wrong["objects"] = [{**wrong["objects"][0], "id": "indicator--not-a-uuid"}]
        (tmp_path / "wrong.json").write_text(json.dumps(wrong))
        sender = ("--url", hub.base_url, "--user", "ng-cert-submit", "--queue", str(queue))
        password = hub.password("ng-cert-submit")
        status, _, err = await run_cli(
            "submit",
            str(tmp_path / "reports"),
            str(tmp_path / "wrong.json"),
            *sender,
            password=password,
        )
        assert status == 1, err
        assert "the whole queue: 6 accepted, 1 refused, 0 waiting" in err, err
        # A later run with nothing new still gives the totals of the whole queue.
        status, _, err = await run_cli("submit", *sender, password=password)
        assert status == 0 and "0 accepted, 0 refused in this run" in err, err
        assert "the whole queue: 6 accepted, 1 refused, 0 waiting" in err, err

        status, out, _ = await run_cli("queue", "status", str(queue))
        assert status == 0
        assert "7 object versions: 0 queued, 0 sent and awaiting" in out, out
        assert "6 accepted, 1 refused" in out, out
        status, out, _ = await run_cli("queue", "list", str(queue), "--state", "refused")
        assert status == 0
        [line] = out.splitlines()
        assert line.startswith("refused   indicator--not-a-uuid") and "not-a-uuid" in line
        status, out, _ = await run_cli("queue", "list", str(queue), "--state", "accepted")
        assert sorted(line.split()[1] for line in out.splitlines()) == sorted(ids)

        status, out, _ = await run_cli("queue", "retry", str(queue))
        assert status == 0 and out.startswith("1 refused object version(s) queued again"), out
        status, out, _ = await run_cli("queue", "status", str(queue))
        assert "1 queued, 0 sent and awaiting the hub's outcome, 6 accepted, 0 refused" in out
        # Sent again: the hub refuses it again, with its reason, back in the journal.
        status, _, err = await run_cli("submit", *sender, password=password)
        assert status == 1 and "the whole queue: 6 accepted, 1 refused, 0 waiting" in err, err
    status, _, err = await run_cli("queue", "status", str(tmp_path / "nothing"))
    assert status == 2 and "holds no queue" in err
