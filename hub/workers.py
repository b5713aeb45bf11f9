"""Pipeline worker processes beside an API node (`cirt-hub serve --workers N`).

Python runs one core per process: an API node and its pipeline in one process share it.
With `--workers N` the node serves the API and runs N pipeline workers as child processes
(`serve --role pipeline --worker-index I`), one consumer group, so the pipeline uses the
other cores. A worker that dies is started again; a stop sends SIGTERM to each (it
finishes the batch in hand) and SIGKILL to any still running after the drain time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

RESTART_DELAY = 1.0  # seconds before a dead worker is started again


@dataclass
class WorkerProcesses:
    """N `serve --role pipeline` children, each started with `command(index)`."""

    command: list[str]  # the child's argv before `--worker-index I`
    count: int
    drain_seconds: float
    procs: dict[int, asyncio.subprocess.Process] = field(default_factory=dict)
    _stopping: bool = False
    _watchers: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        for index in range(self.count):
            await self._spawn(index)
            self._watchers.append(asyncio.create_task(self._watch(index)))

    async def _spawn(self, index: int) -> None:
        # The children's output goes where this node's goes: one log for the operator.
        self.procs[index] = await asyncio.create_subprocess_exec(
            *self.command, "--worker-index", str(index), stdin=subprocess.DEVNULL
        )
        log.info("pipeline worker %d started (pid %d)", index, self.procs[index].pid)

    async def _watch(self, index: int) -> None:
        while True:
            code = await self.procs[index].wait()
            if self._stopping:
                return
            log.error("pipeline worker %d exited with %s; starting it again", index, code)
            await asyncio.sleep(RESTART_DELAY)
            if self._stopping:
                return
            await self._spawn(index)

    def pids(self) -> list[int]:
        return [p.pid for _, p in sorted(self.procs.items())]

    async def stop(self) -> None:
        """SIGTERM every worker; SIGKILL what has not exited after the drain time."""
        self._stopping = True
        for proc in self.procs.values():
            if proc.returncode is None:
                with suppress(ProcessLookupError):
                    proc.terminate()
        waits = [p.wait() for p in self.procs.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), self.drain_seconds + 5)
        except TimeoutError:
            for proc in self.procs.values():
                if proc.returncode is None:
                    log.error("pipeline worker pid %d did not stop; killing it", proc.pid)
                    with suppress(ProcessLookupError):
                        proc.kill()
            await asyncio.gather(*(p.wait() for p in self.procs.values()))
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)


async def stop_when_orphaned(parent: int, stop: asyncio.Event, every: float = 1.0) -> None:
    """Set `stop` once the node that started this worker (pid `parent`) is gone (this
    process was handed to another parent; also when that happened before the first look).

    A node killed outright (SIGKILL, the OOM killer) cannot stop its workers: without this
    they would run on unseen, holding their partitions and a core between them.
    """
    while not stop.is_set():
        if os.getppid() != parent:
            log.error("the node that started this worker (pid %d) is gone; stopping", parent)
            stop.set()
            return
        await asyncio.sleep(every)


def worker_command(args: argparse.Namespace, data_dir: Path, partitions: int) -> list[str]:
    """The argv of a pipeline worker of the node `serve` was given `args` for: the same
    federation, bus, data and keys, as a pipeline node on no fixed port."""
    command = [
        *(sys.executable, "-m", "hub", "serve", "--role", "pipeline", "--port", "0"),
        # The node's pid, not the child's getppid() at some later moment: a node killed
        # while its worker still starts up must not be mistaken for the parent then found.
        *("--node-pid", str(os.getpid())),
        *("--bus", args.bus, "--topic-prefix", args.topic_prefix),
        *("--data-dir", str(data_dir), "--partitions", str(partitions)),
        *("--log-format", args.log_format, "--drain-timeout", str(args.drain_timeout)),
    ]
    for option, value in (
        ("--config", args.config),
        ("--keys-dir", args.keys_dir),
        ("--pseudonym-key", args.pseudonym_key),
    ):
        if value is not None:
            command += [option, str(Path(value).resolve())]
    if args.insecure_dev_keys:
        command.append("--insecure-dev-keys")
    return command
