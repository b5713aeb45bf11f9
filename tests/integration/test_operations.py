"""What operators rely on, against real parts: /readyz follows a real Kafka broker going
away and coming back; and the deployment's topology (Kafka, two API nodes, one pipeline
worker, as docker-compose.yml runs it) as processes on loopback: posted on node 1,
readable on node 2, metrics from all three."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from taxii2client.v21 import Collection, Server

from hub.demo import DEMO_ACCOUNTS_FILE
from tests.cli.test_serve import demo_accounts
from tests.conftest import KAFKA_SCRIPT, free_port
from tests.hubs import KEY_PASSPHRASE, member_identity, running_hub, submit
from tests.processes import stop
from tests.stixdata import TLP2, incident_report

CLI = [sys.executable, "-m", "hub"]


@contextmanager
def own_broker(run_dir: Path) -> Iterator[tuple[str, list[str]]]:
    """A broker of this test's own (the session's is shared): bootstrap, start command."""
    port, controller = free_port(), free_port()
    start = ["bash", str(KAFKA_SCRIPT), "start", "--port", str(port)]
    start += ["--controller-port", str(controller), "--dir", str(run_dir)]
    subprocess.run(start, check=True, stdout=sys.stderr)
    try:
        yield f"127.0.0.1:{port}", start
    finally:
        stop_broker(run_dir)


def stop_broker(run_dir: Path) -> None:
    subprocess.run(
        ["bash", str(KAFKA_SCRIPT), "stop", "--dir", str(run_dir)], check=False, stdout=sys.stderr
    )


async def readiness(url: str, auth: str | None = None) -> tuple[int, dict]:
    """/readyz as anyone sees it, or (with an operator's Authorization) with the details."""
    headers = {"Authorization": auth} if auth else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + "/readyz", headers=headers) as r,
    ):
        return r.status, await r.json()


async def until_ready_is(url: str, want: int, seconds: float, auth: str | None = None) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        status, body = await readiness(url, auth)
        if status == want:
            return body
        assert time.monotonic() < deadline, f"/readyz stayed {status}: {body}"
        await asyncio.sleep(0.5)


@pytest.mark.timeout(300)
async def test_readyz_follows_the_kafka_broker_down_and_back(
    tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    with own_broker(tmp_path / "kafka") as (bootstrap, start):
        async with running_hub(
            f"kafka://{bootstrap}", tmp_path / "data", demo_secrets, topic_prefix=f"t{unique}."
        ) as hub:
            secret = f"hub-operator:{hub.password('hub-operator')}".encode()
            operator = "Basic " + base64.b64encode(secret).decode()
            body = await until_ready_is(hub.base_url, 200, 60, operator)
            assert body["checks"]["bus"]["ok"] and body["checks"]["keys"]["ok"]
            await asyncio.to_thread(stop_broker, tmp_path / "kafka")
            body = await until_ready_is(hub.base_url, 503, 30, operator)
            assert body["status"] == "not ready" and body["checks"]["bus"]["ok"] is False
            assert body["checks"]["bus"]["error"]
            # A load balancer, without a login, learns which kind of check failed, no more.
            status, body = await readiness(hub.base_url)
            assert status == 503 and "bus" in body["failing"] and "checks" not in body
            # Back on its own data: the hub is ready again without a restart, and works.
            await asyncio.to_thread(
                subprocess.run, [*start, "--keep-data"], check=True, stdout=sys.stderr
            )
            await until_ready_is(hub.base_url, 200, 120)
            report = incident_report(member_identity(hub, "ke-cirt"), "KE", TLP2["green"])
            assert (await submit(hub, "ke-cirt-submit", report)).success_count == 4


@asynccontextmanager
async def node(
    role: str, port: int, bootstrap: str, data_dir: Path, keys: Path, prefix: str
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """`cirt-hub serve` as its own process, as the compose file starts each service."""
    process = subprocess.Popen(  # noqa: ASYNC220 (starts at once; waited for below)
        [
            *CLI,
            "serve",
            "--role",
            role,
            "--bus",
            f"kafka://{bootstrap}",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--keys-dir",
            str(keys),
            "--topic-prefix",
            prefix,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "CIRT_HUB_KEY_PASSPHRASE": KEY_PASSPHRASE},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, f"the {role} node exited with {process.returncode}"
            try:
                if (await readiness(url))[0] == 200:
                    break
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, f"the {role} node on {port} never got ready"
            await asyncio.sleep(0.5)
        yield process
    finally:
        stop(process, grace=30)


@pytest.mark.timeout(300)
async def test_the_compose_topology_as_processes_on_loopback(
    kafka_bootstrap: str, tmp_path: Path, unique: str
) -> None:
    keys, prefix = tmp_path / "keys", f"t{unique}."
    ports = {"pipeline": free_port(), "api-1": free_port(), "api-2": free_port()}
    dirs = {name: tmp_path / name for name in ports}  # each node its own, as in compose
    async with node("pipeline", ports["pipeline"], kafka_bootstrap, dirs["pipeline"], keys, prefix):
        # The demo federation's secrets are made by the first node; the others get a copy,
        # as a real deployment gives every node the same federation file.
        for name in ("api-1", "api-2"):
            dirs[name].mkdir(mode=0o700)
            shutil.copy(dirs["pipeline"] / DEMO_ACCOUNTS_FILE, dirs[name] / DEMO_ACCOUNTS_FILE)
        async with (
            node("api", ports["api-1"], kafka_bootstrap, dirs["api-1"], keys, prefix),
            node("api", ports["api-2"], kafka_bootstrap, dirs["api-2"], keys, prefix),
        ):
            accounts = demo_passwords(dirs["pipeline"])
            first, second = (f"http://127.0.0.1:{ports[n]}" for n in ("api-1", "api-2"))
            inbox = await asyncio.to_thread(
                by_alias, first, "ng-cert-submit", accounts["ng-cert-submit"], "inbox"
            )
            identity = "identity--c4801c91-a321-4d5c-9a4f-aee9b0f362a2"  # ngCERT in the demo
            report = incident_report(identity, "ngCERT", TLP2["green"])
            status = await asyncio.to_thread(
                inbox.add_objects, {"objects": report}, poll_interval=0.05, timeout=60
            )
            assert status.status == "complete" and status.success_count == 4
            feed = await asyncio.to_thread(
                by_alias, second, "gh-cert-read", accounts["gh-cert-read"], "region-west-africa"
            )
            deadline = time.monotonic() + 30
            while True:
                got = (await asyncio.to_thread(feed.get_objects)).get("objects", [])
                if {o["id"] for o in report} <= {o["id"] for o in got}:
                    break
                assert time.monotonic() < deadline, "node 2 never served what node 1 took"
                await asyncio.sleep(0.5)
            operator = aiohttp.encode_basic_auth("hub-operator", accounts["hub-operator"])
            metrics = {}
            async with aiohttp.ClientSession(headers={"Authorization": operator}) as session:
                for name, port in ports.items():
                    async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                        assert r.status == 200, name
                        metrics[name] = {
                            s.name: s.value
                            for f in text_string_to_metric_families(await r.text())
                            for s in f.samples
                            if s.labels.get("member") == "ng-cert"
                        }
            # Each node counts its own part: the API node that took the POST, the worker
            # that routed it; the other API node took nothing.
            assert metrics["api-1"]["cirt_hub_submissions_total"] == 1
            assert "cirt_hub_submissions_total" not in metrics["api-2"]
            assert metrics["pipeline"]["cirt_hub_objects_accepted_total"] == 4


def by_alias(base_url: str, username: str, password: str, alias: str) -> Collection:
    """A collection found as a TAXII client finds it: discovery, API root, collections."""
    server = Server(f"{base_url}/taxii2/", user=username, password=password)
    return next(c for c in server.default.collections if c.alias == alias)


def demo_passwords(data_dir: Path) -> dict[str, str]:
    return {name: a["password"] for name, a in demo_accounts(data_dir).items()}
