"""What the benchmark runs: the Apache Kafka broker and a hub as real processes.

A hub under test is `cirt-hub serve --workers N`: an API node whose N pipeline workers
run in their own processes (one consumer group), as an operator would run it on a
machine with cores to spare. The hub is stopped by its own PID (SIGTERM; it stops its
workers).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import aiohttp
import yaml

from hub.credentials import hash_secret, new_secret

ROOT = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = ROOT / "deploy" / "kafka" / "kafka.sh"
# The bench's hubs keep their keys encrypted, as a real hub does.
PASSPHRASE = "bench-only passphrase: not a secret"


def progress(message: str) -> None:
    """A progress line for the person running the benchmark (stderr; stdout is the table)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def kafka_broker(given: str | None) -> Iterator[str]:
    """HOST:PORT of the broker: `given`, or one started with deploy/kafka/kafka.sh."""
    if given:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as run_dir:
        port, controller = free_port(), free_port()
        subprocess.run(
            [
                *("bash", str(KAFKA_SCRIPT), "start", "--port", str(port)),
                *("--controller-port", str(controller), "--dir", run_dir),
            ],
            check=True,
            stdout=sys.stderr,
        )
        try:
            yield f"127.0.0.1:{port}"
        finally:
            subprocess.run(["bash", str(KAFKA_SCRIPT), "stop", "--dir", run_dir], stdout=sys.stderr)


@dataclass
class Hub:
    """One API node and `workers` pipeline processes on `bus_url`, in `data_dir`."""

    data_dir: Path
    bus_url: str
    workers: int
    topic_prefix: str = "bench."
    # Intake is keyed by member (one member's reports stay in order): the six demo members
    # hash 3/3 onto two workers with 3 partitions on the embedded bus (5/1 with 2), and 3/3
    # or 4/2 on Kafka.
    partitions: int = 3
    port: int = field(default_factory=free_port)
    # The interpreter of the install the hub runs from (bench.install: README's command 1).
    python: str = sys.executable
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _passwords: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_federation(self) -> None:
        """The demo federation where every TLP level of every member reaches someone: a
        region hit by a major incident, whose CIRTs have all named their recipients (with
        the demo's rules, AMBER from most members would reach nobody but the sender)."""
        text = resources.files("hub").joinpath("demo/federation.yaml").read_text()
        federation = yaml.safe_load(text)
        members = federation["members"]
        for n, member in enumerate(members):
            neighbour = members[(n + 1) % len(members)]["id"]
            member["sharing"] = {
                **{k: v for k, v in member.get("sharing", {}).items() if k != "recipients"},
                "default_tlp": "amber",
                "recipients": {
                    "green": ["all"],
                    "amber": [f"region:{member['regions'][0]}"],
                    "amber+strict": [f"member:{neighbour}"],
                    "red": [f"account:{neighbour}-read"],
                },
            }
        self._passwords = {}
        for account in [a for m in members for a in m["accounts"]] + federation["hub"]["accounts"]:
            self._passwords[account["username"]] = password = new_secret()
            account["secret_hash"] = hash_secret(password)
        (self.data_dir / "federation.yaml").write_text(yaml.safe_dump(federation))

    async def start(self) -> None:
        """Start the hub and wait until it is ready."""
        self.launch()
        await self._answers("/readyz")

    def launch(self) -> None:
        """`cirt-hub serve --workers N`: the API node, which starts its pipeline workers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_federation()
        log = open(self.data_dir / "serve.log", "ab")  # noqa: SIM115 - the child keeps it
        self.procs.append(
            subprocess.Popen(
                [
                    *(self.python, "-m", "hub", "serve", "--log-format", "text"),
                    *("--bus", self.bus_url, "--port", str(self.port)),
                    *("--data-dir", str(self.data_dir), "--topic-prefix", self.topic_prefix),
                    *("--config", str(self.data_dir / "federation.yaml")),
                    *("--workers", str(self.workers), "--partitions", str(self.partitions)),
                    # Over the lag bound the hub answers 503: the bench wants to see the
                    # hub's throughput, so no bound.
                    *("--max-intake-lag", "0"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={
                    **os.environ,
                    "CIRT_HUB_KEY_PASSPHRASE": PASSPHRASE,
                    "PYTHONUNBUFFERED": "1",
                },
            )
        )
        log.close()

    async def _answers(self, path: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                for proc in self.procs:
                    if proc.poll() is not None:
                        raise RuntimeError(f"a hub process exited: {self.log_tail()}")
                try:
                    async with http.get(f"{self.base_url}{path}") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the hub did not become ready: {self.log_tail()}")
                await asyncio.sleep(0.2)

    def passwords(self) -> dict[str, str]:
        """Every account's password (the federation file holds only their hashes)."""
        return dict(self._passwords)

    def pids(self) -> dict[str, int]:
        """The API node's pid and its pipeline workers' (its child processes)."""
        api = self.procs[0].pid
        children = subprocess.run(["pgrep", "-P", str(api)], capture_output=True, text=True)
        workers = sorted(int(pid) for pid in children.stdout.split())
        return {"api": api} | {f"pipeline-{n}": pid for n, pid in enumerate(workers)}

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}"
            for path in sorted(self.data_dir.glob("*.log"))
        )

    def stop(self) -> None:
        """SIGTERM the hub, SIGKILL it if it has not exited in 30 s."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
