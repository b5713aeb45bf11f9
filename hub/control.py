"""Controlling a running `cirt-hub serve` on this machine: its pid file, and `cirt-hub reload`.

`serve` writes DATA_DIR/serve.pid (its pid and its federation file) once its signal handlers
are in place, and removes it when it stops. `cirt-hub reload` validates that federation file
first (problems are printed here and the hub is left alone), then sends the hub SIGHUP: the
same path as `kill -HUP <pid>`, so there is one way to reload, and no network endpoint that
could change credentials. Another machine's or container's hub: send it SIGHUP there
(`docker compose kill -s HUP <service>`, systemd `ExecReload=kill -HUP $MAINPID`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from hub.config import default_data_dir
from hub.federation import FederationError, load_federation

PID_FILE = "serve.pid"


def write_pid_file(data_dir: Path, federation_file: Path | None) -> None:
    """Say that this process serves from `data_dir`, reading `federation_file`."""
    path = data_dir / PID_FILE
    tmp = path.with_suffix(".tmp")
    config = str(federation_file.resolve()) if federation_file else None
    tmp.write_text(json.dumps({"pid": os.getpid(), "federation": config}) + "\n")
    tmp.replace(path)


def remove_pid_file(data_dir: Path) -> None:
    """Remove the pid file if it is still this process's."""
    path = data_dir / PID_FILE
    try:
        if json.loads(path.read_text())["pid"] == os.getpid():
            path.unlink()
    except (OSError, ValueError, KeyError):
        pass


def _serving(pid: int) -> bool:
    """Whether `pid` is a live `cirt-hub serve` of ours (a stale file may name another)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():
        return True  # no /proc (macOS): the pid is live, which has to do
    # Make sure where we can: SIGHUP ends most other programs.
    try:
        return b"serve" in cmdline.read_bytes().split(b"\0")
    except OSError:
        return False


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reload = sub.add_parser(
        "reload",
        help="make the hub serving from a data dir re-read its federation file (SIGHUP)",
    )
    reload.add_argument("--data-dir", type=Path, default=None)


def run(args: argparse.Namespace) -> int:
    data_dir = (args.data_dir or default_data_dir()).resolve()
    try:
        running = json.loads((data_dir / PID_FILE).read_text())
        pid, config = int(running["pid"]), running["federation"]
    except FileNotFoundError:
        print(f"cirt-hub: no hub is serving from {data_dir} (no {PID_FILE})", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"cirt-hub: {data_dir / PID_FILE} is unreadable: {exc}", file=sys.stderr)
        return 1
    if not _serving(pid):
        print(f"cirt-hub: the hub that wrote {PID_FILE} (pid {pid}) is gone", file=sys.stderr)
        return 1
    if config is None:
        print("cirt-hub: that hub runs the built-in demo: no file to reload", file=sys.stderr)
        return 2
    try:
        load_federation(Path(config))
    except FederationError as exc:
        print(exc, file=sys.stderr)
        print("cirt-hub: not reloaded; the hub keeps the federation it runs", file=sys.stderr)
        return 2
    os.kill(pid, signal.SIGHUP)
    print(f"cirt-hub: hub pid {pid} is reloading {config} (its log says what changed)")
    return 0
