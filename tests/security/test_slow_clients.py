"""Slow and crowding clients against a real hub, over raw sockets: half-sent headers, a body
that trickles or never ends, hundreds of connections from one address, and a client that
hangs up mid-body. Each is bounded in time or number, and nobody else notices.

Loopback has a whole /8, so the tests play several source addresses (127.0.0.2, .3, ...)."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.api.test_metrics import scrape, value
from tests.hubs import RunningHub, running_hub

TAXII = "application/taxii+json;version=2.1"
INBOX_ROUTE = "/taxii2/hub/collections/{collection}/objects/"
pytestmark = pytest.mark.timeout(60)


@asynccontextmanager
async def hub_with(tmp_path: Path, demo_secrets: Path, **tuning: Any) -> AsyncIterator[RunningHub]:
    async with running_hub("embedded", tmp_path / "data", demo_secrets, **tuning) as hub:
        yield hub


@asynccontextmanager
async def connection(
    hub: RunningHub, source: str = "127.0.0.1"
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A raw TCP connection to the hub from the loopback address `source`."""
    host, port = hub.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), local_addr=(source, 0))
    try:
        yield reader, writer
    finally:
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()


def inbox_head(hub: RunningHub, *lines: str) -> bytes:
    """The head of a POST to the inbox as ng-cert-submit, with these extra header lines."""
    secret = base64.b64encode(f"ng-cert-submit:{hub.password('ng-cert-submit')}".encode())
    path = hub.collection_url("inbox").removeprefix(hub.base_url) + "objects/"
    head = [
        f"POST {path} HTTP/1.1",
        "Host: hub",
        f"Authorization: Basic {secret.decode()}",
        f"Content-Type: {TAXII}",
        f"Accept: {TAXII}",
        *lines,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> tuple[bytes, float]:
    """Everything the hub sends until it closes the connection, and when that was."""
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), seconds)
    return data, time.monotonic() - started


def taxii_error(response: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert f"Content-Type: {TAXII}".encode() in head, head
    return status, orjson.loads(body)


async def test_half_sent_headers_and_idle_connections_are_closed_after_the_header_timeout(
    tmp_path: Path, demo_secrets: Path
) -> None:
    async with hub_with(tmp_path, demo_secrets, header_timeout=1.0) as hub:
        async with connection(hub) as (idle, _), connection(hub) as (reader, writer):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n")
            for n in range(3):  # a header line now and then, never the blank line at the end
                await asyncio.sleep(0.25)
                writer.write(f"X-Slow-{n}: still here\r\n".encode())
            data, waited = await closed_within(reader, 5)
            assert data == b"" and waited < 2, (data, waited)
            assert (await closed_within(idle, 5))[0] == b""
        # A client that sends its requests in time is answered, one after another.
        async with connection(hub) as (reader, writer):
            for _ in range(2):
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), head
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                await asyncio.sleep(0.5)


async def test_a_body_slower_than_the_timeout_gets_408(tmp_path: Path, demo_secrets: Path) -> None:
    async with (
        hub_with(tmp_path, demo_secrets, body_timeout=1.0) as hub,
        connection(hub) as (reader, writer),
    ):
        writer.write(inbox_head(hub, "Content-Length: 1000") + b"{")
        response, waited = await closed_within(reader, 10)
        status, body = taxii_error(response)
        assert status == 408 and body["http_status"] == "408", body
        assert "did not arrive in time: 1 bytes" in body["description"], body
        assert 1 <= waited < 5, waited


async def test_an_endless_chunked_body_gets_408(tmp_path: Path, demo_secrets: Path) -> None:
    async with (
        hub_with(tmp_path, demo_secrets, body_timeout=1.0) as hub,
        connection(hub) as (reader, writer),
    ):
        writer.write(inbox_head(hub, "Transfer-Encoding: chunked") + b"1\r\n{\r\n")

        async def trickle() -> None:
            with suppress(ConnectionError):
                while True:
                    await asyncio.sleep(0.05)
                    writer.write(b"1\r\n \r\n")
                    await writer.drain()

        sending = asyncio.create_task(trickle())
        try:
            response, waited = await closed_within(reader, 10)
        finally:
            sending.cancel()
        status, body = taxii_error(response)
        assert status == 408 and "did not arrive in time" in body["description"], body
        assert waited < 5, waited


async def test_an_endless_chunked_body_sent_fast_gets_413(
    tmp_path: Path, demo_secrets: Path
) -> None:
    async with hub_with(tmp_path, demo_secrets) as hub, connection(hub) as (reader, writer):
        writer.write(inbox_head(hub, "Transfer-Encoding: chunked"))
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b" " * 64 * 1024)

        async def flood() -> None:
            with suppress(ConnectionError):
                while True:
                    writer.write(chunk)
                    await writer.drain()

        sending = asyncio.create_task(flood())
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        finally:
            sending.cancel()
        assert head.startswith(b"HTTP/1.1 413"), head


async def healthz(hub: RunningHub, source: str) -> bytes:
    async with connection(hub, source) as (reader, writer):
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n")
        return (await closed_within(reader, 5))[0]


async def test_connections_beyond_an_addresss_limit_are_refused_while_others_are_served(
    tmp_path: Path, demo_secrets: Path
) -> None:
    # The default limit (64 per address), and 300 slow sockets from one address.
    async with hub_with(tmp_path, demo_secrets) as hub:
        limit = 64  # the default (README)
        async with AsyncExitStack() as sockets:
            readers = []
            for _ in range(300):
                reader, writer = await sockets.enter_async_context(connection(hub, "127.0.0.2"))
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n")  # and never the rest
                readers.append(reader)
            ends = await asyncio.gather(
                *(asyncio.wait_for(reader.read(), 0.5) for reader in readers),
                return_exceptions=True,
            )
            refused = [end for end in ends if end == b""]
            held = [end for end in ends if isinstance(end, TimeoutError)]
            assert (len(held), len(refused)) == (limit, 300 - limit), ends[:3]
            # Another address is served as ever...
            assert (await healthz(hub, "127.0.0.3")).startswith(b"HTTP/1.1 200")
        # ...and so is the first, once its sockets are gone.
        await asyncio.sleep(0.2)
        assert (await healthz(hub, "127.0.0.2")).startswith(b"HTTP/1.1 200")
        samples = await scrape(hub)
        assert value(samples, "cirt_hub_connections_refused_total") == 300 - limit


async def test_a_client_that_hangs_up_mid_body_is_a_4xx_in_metrics_and_logs(
    tmp_path: Path, demo_secrets: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub")
    async with hub_with(tmp_path, demo_secrets) as hub:
        async with connection(hub) as (_, writer):
            writer.write(inbox_head(hub, "Content-Length: 1000") + b'{"objects": [')
            await writer.drain()
            await asyncio.sleep(0.3)  # the handler is reading the body by now
            writer.transport.abort()
        await asyncio.sleep(0.3)
        samples = await scrape(hub)
        statuses = {
            dict(labels)["status"]: count
            for labels, count in samples["cirt_hub_http_requests_total"].items()
            if dict(labels)["route"] == INBOX_ROUTE
        }
        assert statuses == {"400": 1.0}, statuses
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("hub")]
    assert any("closed the connection before the request was whole" in m for _, m in said), said
    assert not [m for level, m in said if level >= logging.ERROR], said
