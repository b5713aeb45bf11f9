"""Writing to a reader that may stop reading (a live stream, an export): what the node holds
for it is bounded, and a write that cannot go out in time ends the answer."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web


def bound_buffers(request: web.Request, size: int) -> None:
    """Hold at most about `size` bytes for this reader, in the process and in the kernel,
    so a reader that stops reading makes writes wait (and time out) instead of piling up."""
    transport = request.transport
    if transport is None:
        return
    transport.set_write_buffer_limits(high=size)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


async def write_within(
    response: web.StreamResponse, data: bytes | memoryview, timeout: float
) -> None:
    """Hand `data` to the connection; TimeoutError when the reader does not keep up."""
    if data:
        async with asyncio.timeout(timeout):
            await response.write(data)
