"""A bad link between two network namespaces, for tests: `python -m tests.connectors.link_relay`.

tc netem is not in every kernel, so the link is a userspace relay: a TUN device in each
namespace (10.231.0.2 on the member's side, 10.231.0.1 on the hub's), and every IP packet
between them goes through this process, which drops some at random, holds each one for its
serialisation time at the link's rate and a random one-way delay (first in, first out, as
on a wire), drops what would wait longer than the link's buffer, and while the link is cut
drops everything. On the hub's side it also accepts TCP on 10.231.0.1 (TCP ends there, in
the hub's namespace, after the link) and forwards each connection to a hub on
127.0.0.1:<port> of the namespace it was started in, as a reverse proxy in front of a hub
would.

Commands on standard input, one a line: `down`, `up`, `stats` (a JSON line on standard
output: bytes and packets carried, and dropped, per direction, IP headers included), `quit`.
It prints `ready` once the namespaces are configured and it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import fcntl
import json
import os
import random
import socket
import struct
import subprocess
import sys
from dataclasses import asdict, dataclass

MEMBER_ADDRESS, HUB_ADDRESS = "10.231.0.2", "10.231.0.1"
_TUNSETIFF = 0x400454CA
_IFF_TUN, _IFF_NO_PI = 0x0001, 0x1000
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _enter(namespace: str | int) -> None:
    """Move this thread into a network namespace (by name, or an open namespace fd)."""
    fd = namespace if isinstance(namespace, int) else os.open(f"/run/netns/{namespace}", 0)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({namespace!r})")
    finally:
        if not isinstance(namespace, int):
            os.close(fd)


def _tun(namespace: str, name: str) -> int:
    """A TUN device `name` in `namespace`, alive while the returned fd is open."""
    home = os.open("/proc/self/ns/net", 0)
    try:
        _enter(namespace)
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
        return fd
    finally:
        _enter(home)
        os.close(home)


def _listener(namespace: str, address: str, port: int) -> socket.socket:
    home = os.open("/proc/self/ns/net", 0)
    try:
        _enter(namespace)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(64)
        sock.setblocking(False)
        return sock
    finally:
        _enter(home)
        os.close(home)


def _configure(namespace: str, device: str, address: str, peer: str) -> None:
    for args in (
        ["addr", "add", address, "peer", peer, "dev", device],
        ["link", "set", device, "up"],
        ["link", "set", "lo", "up"],
    ):
        subprocess.run(["ip", "-n", namespace, *args], check=True)


@dataclass
class Direction:
    """One direction of the link: what it carried and dropped (IP packet sizes)."""

    bytes: int = 0
    packets: int = 0
    dropped: int = 0
    dropped_bytes: int = 0


class Wire:
    """One direction: loss, rate, buffer and delay, in order."""

    def __init__(self, relay: Relay, out_fd: int, counts: Direction) -> None:
        self.relay = relay
        self.out_fd = out_fd
        self.counts = counts
        self.busy_until = 0.0
        self.last_arrival = 0.0

    def take(self, packet: bytes) -> None:
        relay, now = self.relay, self.relay.loop.time()
        queued = max(0.0, self.busy_until - now)
        if relay.cut or relay.rng.random() < relay.loss or queued > relay.buffer_seconds:
            self.counts.dropped += 1
            self.counts.dropped_bytes += len(packet)
            return
        departure = max(now, self.busy_until) + len(packet) / relay.rate
        self.busy_until = departure
        arrival = max(departure + relay.rng.uniform(*relay.delay), self.last_arrival)
        self.last_arrival = arrival
        relay.loop.call_at(arrival, self.deliver, packet)

    def deliver(self, packet: bytes) -> None:
        if self.relay.cut:
            # Cut while on the wire: lost too.
            self.counts.dropped += 1
            self.counts.dropped_bytes += len(packet)
            return
        try:
            os.write(self.out_fd, packet)
        except OSError:
            return
        self.counts.bytes += len(packet)
        self.counts.packets += 1


class Relay:
    def __init__(self, args: argparse.Namespace) -> None:
        self.rate = args.rate
        self.loss = args.loss
        self.delay = (args.delay_min, args.delay_max)
        self.buffer_seconds = args.buffer
        self.rng = random.Random(args.seed)
        self.cut = False
        self.up = Direction()  # member to hub
        self.down = Direction()  # hub to member
        self.loop = asyncio.get_running_loop()

    def stats(self) -> dict[str, object]:
        return {"up": asdict(self.up), "down": asdict(self.down), "cut": self.cut}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(args: argparse.Namespace) -> None:
    member_tun = _tun(args.member_ns, "lnk0")
    hub_tun = _tun(args.hub_ns, "lnk0")
    _configure(args.member_ns, "lnk0", MEMBER_ADDRESS, HUB_ADDRESS)
    _configure(args.hub_ns, "lnk0", HUB_ADDRESS, MEMBER_ADDRESS)
    listener = _listener(args.hub_ns, HUB_ADDRESS, args.listen_port)
    relay = Relay(args)
    to_hub = Wire(relay, hub_tun, relay.up)
    to_member = Wire(relay, member_tun, relay.down)

    def readable(fd: int, wire: Wire) -> None:
        while True:
            try:
                packet = os.read(fd, 65536)
            except BlockingIOError:
                return
            wire.take(packet)

    relay.loop.add_reader(member_tun, readable, member_tun, to_hub)
    relay.loop.add_reader(hub_tun, readable, hub_tun, to_member)

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            hub_reader, hub_writer = await asyncio.open_connection("127.0.0.1", args.hub_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, hub_writer), _pipe(hub_reader, writer))

    server = await asyncio.start_server(forward, sock=listener)
    stdin = asyncio.StreamReader()
    await relay.loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    print("ready", flush=True)
    async with server:
        while line := (await stdin.readline()).decode().strip():
            if line == "down":
                relay.cut = True
            elif line == "up":
                relay.cut = False
            elif line == "stats":
                print(json.dumps(relay.stats()), flush=True)
            elif line == "quit":
                break


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--member-ns", required=True)
    parser.add_argument("--hub-ns", required=True)
    parser.add_argument("--hub-port", type=int, required=True, help="the hub on 127.0.0.1")
    parser.add_argument("--listen-port", type=int, default=8443)
    parser.add_argument("--rate", type=float, default=8000.0, help="bytes per second")
    parser.add_argument("--loss", type=float, default=0.1, help="drop probability per packet")
    parser.add_argument("--delay-min", type=float, default=0.15, help="one-way, seconds")
    parser.add_argument("--delay-max", type=float, default=0.4, help="one-way, seconds")
    parser.add_argument("--buffer", type=float, default=2.0, help="seconds of queue")
    parser.add_argument("--seed", type=int, default=23)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_arguments()))
