"""The Kafka broker SIGKILLed while ten clients post: during the outage the hub answers 503
(never a 202 it cannot keep), and once the broker is back every submission that got a 202
is readable exactly once in its collection, and nothing refused shows up."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.faults.support import Tally, broker, collection_ids, post_forever, report, settle
from tests.hubs import running_hub


@pytest.mark.kafka
@pytest.mark.timeout(600)
async def test_broker_killed_while_ten_clients_post(tmp_path: Path, demo_secrets: Path) -> None:
    run_dir = tmp_path / "kafka"
    ports = ("--port", str(free_port()), "--controller-port", str(free_port()))
    await asyncio.to_thread(broker, "start", *ports, "--dir", str(run_dir))
    bootstrap = (run_dir / "bootstrap").read_text().strip()
    try:
        async with running_hub(
            f"kafka://{bootstrap}", tmp_path / "hub", demo_secrets, topic_prefix="crash."
        ) as hub:
            tally, stop = Tally(), asyncio.Event()
            clients = [
                asyncio.create_task(
                    post_forever(
                        hub.base_url,
                        f"{member}-submit",
                        hub.password(f"{member}-submit"),
                        hub.settings.federation.member(member).identity,
                        tally,
                        stop,
                        per_request=3,
                        pause=0.05,
                    )
                )
                for member in ("ng-cert", "gh-cert")
                for _ in range(5)
            ]
            # A new broker makes its transaction and offset topics on first use: warm up.
            deadline = time.monotonic() + 90
            while len(tally.accepted) < 150:
                assert time.monotonic() < deadline, f"hub never took 150 objects: {tally.statuses}"
                await asyncio.sleep(0.2)
            before_kill = len(tally.accepted)
            pid = int((run_dir / "kafka.pid").read_text())
            os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(12)
            during = dict(tally.statuses)
            await asyncio.to_thread(broker, "start", *ports, "--dir", str(run_dir), "--keep-data")
            back = len(tally.accepted)
            deadline = time.monotonic() + 90
            while len(tally.accepted) < back + 100:
                assert time.monotonic() < deadline, (
                    f"no 202 since the broker came back: {tally.statuses}"
                )
                await asyncio.sleep(0.2)
            stop.set()
            await asyncio.gather(*clients)
            password = hub.password("sn-cert-read")

            async def read():
                return await collection_ids(
                    hub.base_url, "region-west-africa", "sn-cert-read", password
                )

            found = await settle(read, set(tally.accepted), timeout=120)
    finally:
        await asyncio.to_thread(broker, "stop", "--dir", str(run_dir))
    lost, duplicates, stray = report(
        "Kafka broker SIGKILL", tally, found, statuses=dict(tally.statuses)
    )
    assert before_kill > 50 and during.get(503, 0) > 0, during
    assert (lost, duplicates, stray) == (0, 0, 0)
