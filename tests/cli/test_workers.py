"""`cirt-hub serve --workers 2`: the API in one process, two pipeline workers in theirs; a
worker that dies is started again, and a stop takes the workers down with the node."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from taxii2client.v21 import Server

from hub.control import PID_FILE
from tests.cli.test_serve import CLI, demo_accounts, wait_until_serving
from tests.conftest import free_port
from tests.stixdata import TLP2, incident_report


def children(pid: int) -> dict[int, list[str]]:
    """The child processes of `pid`, with their command lines."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    out = {}
    for child in map(int, found.stdout.split()):
        try:
            out[child] = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
        except FileNotFoundError:
            continue  # exited between the two looks
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_workers_route_restart_and_stop_with_the_node(tmp_path: Path) -> None:
    port, data_dir = free_port(), tmp_path / "data"
    proc = subprocess.Popen(
        [*CLI, "serve", "--data-dir", str(data_dir), "--port", str(port), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/readyz", proc, deadline=60)
        workers = children(proc.pid)
        assert len(workers) == 2, workers
        indexes = sorted(argv[argv.index("--worker-index") + 1] for argv in workers.values())
        assert indexes == ["0", "1"]
        assert all(argv[argv.index("--role") + 1] == "pipeline" for argv in workers.values())

        accounts = demo_accounts(data_dir)

        def inbox(member: str):
            account = accounts[f"{member}-submit"]
            server = Server(
                f"http://127.0.0.1:{port}/taxii2/",
                user=account["username"],
                password=account["password"],
            )
            return next(c for c in server.default.collections if c.alias == "inbox")

        def submit(member: str) -> None:
            # Each report by a third party of its own: an identity belongs to whoever
            # published it first, so two members may not both send one.
            report = incident_report(f"identity--{uuid.uuid4()}", member, TLP2["green"])
            status = inbox(member).add_objects({"objects": report}, poll_interval=0.05, timeout=60)
            assert status.status == "complete" and status.success_count == 4, status

        # Members' submissions are keyed by member: they spread over both workers' partitions.
        for member in ("ng-cert", "gh-cert", "sn-cert", "ke-cirt"):
            submit(member)
        # Both workers are up and routing: the pid file `cirt-hub reload` signals still
        # names the node (the workers used to overwrite it with their own pids).
        assert json.loads((data_dir / PID_FILE).read_text())["pid"] == proc.pid

        killed = next(iter(workers))
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            now = children(proc.pid)
            if len(now) == 2 and killed not in now:
                break
            assert time.monotonic() < deadline, f"the dead worker was not replaced: {now}"
            time.sleep(0.2)
        for member in ("ng-cert", "gh-cert", "sn-cert", "ke-cirt"):
            submit(member)

        last = list(now)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
        assert not any(alive(pid) for pid in last), "a worker outlived its node"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_workers_of_a_node_killed_outright_stop_on_their_own(tmp_path: Path) -> None:
    """SIGKILL (or the OOM killer) gives the node no chance to stop its workers: they notice
    their node is gone and stop, instead of running on unseen, holding partitions and CPU."""
    port, data_dir = free_port(), tmp_path / "data"
    proc = subprocess.Popen(
        [*CLI, "serve", "--data-dir", str(data_dir), "--port", str(port), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: dict[int, list[str]] = {}
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/readyz", proc, deadline=60)
        workers = children(proc.pid)
        assert len(workers) == 2, workers
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "a worker outlived its killed node by 30 s"
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
