"""Wake-ups between the processes that share one embedded bus file, without polling.

Each bus instance binds a Unix datagram socket in Linux's abstract namespace (no path, so
no length limit and nothing left on disk by a killed process) and registers it as an empty
file in `<bus file>.wake/`. After each commit, the writer sends one byte to every other
registered socket; a receiver drains its socket and wakes its readers. A socket nobody
holds any more (its process was killed) refuses the datagram and its file is removed. A
full receive buffer means that reader is already woken: the datagram is dropped.

Readers still look at the file now and then (EmbeddedBus.poll_interval): a wake-up that
cannot arrive (processes in different network namespaces share no abstract sockets)
costs latency, never a record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

_PREFIX = b"\0cirt-hub-wake-"
TRUST_NS = 2_000_000_000  # a folder stamp older than this at listing time is trusted


def _address(name: str) -> bytes:
    return _PREFIX + name.encode()


class Wakes:
    """This process's doorbell on one bus file, and the others' it rings after a commit."""

    def __init__(self, bus_path: Path, on_wake: Callable[[], None]) -> None:
        self.folder = Path(f"{bus_path}.wake")
        self.name = f"{os.getpid()}-{secrets.token_hex(6)}"
        self._on_wake = on_wake
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._peers: tuple[str, ...] = ()
        self._listed: int | None = None  # the folder's mtime when the peers were listed
        self._listed_at = 0  # when they were listed (ns, the clock the kernel stamps with)
        self.sent = 0
        self.received = 0

    def start(self) -> None:
        """Bind, register, and hear the others (on the running loop)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(_address(self.name))
        self._sock = sock
        (self.folder / self.name).touch()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    def stop(self) -> None:
        """Unregister and close; safe to call twice."""
        if self._sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        with contextlib.suppress(FileNotFoundError):
            (self.folder / self.name).unlink()

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                self._sock.recv(64)
            except (BlockingIOError, InterruptedError):
                break
            self.received += 1
        self._on_wake()

    def _current_peers(self) -> tuple[str, ...]:
        try:
            listed = os.stat(self.folder).st_mtime_ns
        except FileNotFoundError:
            return ()
        # A process joined or left: list again (a file per live bus instance). A stamp is
        # coarse (a clock tick): a registration in the tick of the last listing leaves the
        # same stamp, so a listing made within TRUST_NS of its stamp is made again.
        if listed != self._listed or self._listed_at - listed < TRUST_NS:
            self._listed_at = time.time_ns()
            with os.scandir(self.folder) as entries:
                self._peers = tuple(e.name for e in entries if e.name != self.name)
            self._listed = listed
        return self._peers

    def ring(self) -> None:
        """Tell every other process on this bus file that it changed."""
        if self._sock is None:
            return
        for peer in self._current_peers():
            try:
                self._sock.sendto(b"\1", _address(peer))
                self.sent += 1
            except (BlockingIOError, InterruptedError):
                pass  # its buffer is full: it has wake-ups waiting already
            except (ConnectionRefusedError, FileNotFoundError):
                # Nobody holds that socket: its process ended without unregistering.
                with contextlib.suppress(FileNotFoundError):
                    (self.folder / peer).unlink()
            except OSError as exc:
                log.warning("could not wake %s on %s: %s", peer, self.folder, exc)
