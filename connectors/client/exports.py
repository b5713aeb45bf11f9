"""`cirt-hub pull --format txt|csv|suricata`: one collection's export into one file, for cron.

The file is replaced only by a whole export: the answer streams into a temporary file
beside it, which becomes the file (fsync, rename) once the hub's closing line has arrived,
so a firewall or a Suricata reload never reads a list cut short by a dropped link. A
dropped link, a stalled answer, 429 and 5xx are retried as every client request is
(connectors.client.retry); any other refusal raises `Refused` with the hub's words.
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import aiohttp
import orjson

from connectors.client.http import RETRIABLE_STATUS, Refused, discovery_url
from connectors.client.link import Link
from connectors.client.retry import Backoff, retry_after
from hub.export.formats import COMPLETE
from hub.i18n.cli import number, say
from hub.signing.sources import Credentials

FORMATS = ("txt", "csv", "suricata")
_PIECE = 64 * 1024


@dataclass(frozen=True)
class ExportRequest:
    """What to export: the options of `GET /api/v1/exports/{collection}`."""

    collection: str  # alias or TAXII id
    format: str
    kinds: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    since: str | None = None
    min_confidence: int | None = None
    tlp: str | None = None

    def params(self) -> dict[str, str]:
        found = {"format": self.format}
        if self.kinds:
            found["kind"] = ",".join(self.kinds)
        if self.types:
            found["types"] = ",".join(self.types)
        if self.since:
            found["since"] = self.since
        if self.min_confidence is not None:
            found["min_confidence"] = str(self.min_confidence)
        if self.tlp:
            found["tlp"] = self.tlp
        return found


@dataclass(frozen=True)
class ExportWritten:
    path: Path
    bytes: int
    summary: str  # the hub's closing line: what it wrote and what it left out


class _Again(Exception):
    def __init__(self, why: str, wait: float | None = None) -> None:
        super().__init__(why)
        self.why, self.wait = why, wait


def export_url(hub: str, collection: str) -> str:
    """The export endpoint of `collection` on the hub at `hub` (its address or a TAXII URL)."""
    parts = urllib.parse.urlsplit(discovery_url(hub))
    return f"{parts.scheme}://{parts.netloc}/api/v1/exports/{urllib.parse.quote(collection)}"


async def pull_export(
    hub: str,
    username: str,
    password: str,
    request: ExportRequest,
    out: Path,
    *,
    backoff: Backoff | None = None,
    stall: float = 15.0,
    link: Link | None = None,
) -> ExportWritten:
    """Fetch the export into `out`, replacing it only with a complete one."""
    url = export_url(hub, request.collection)
    headers = {
        "Authorization": Credentials(username, password.removeprefix(f"{username}.")).header()
    }
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=stall, sock_read=stall)
    attempts = (backoff or Backoff()).start()
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
        while True:
            try:
                return await _once(session, url, request, out, link or Link())
            except _Again as again:
                await attempts.wait(again.why, again.wait)


async def _once(
    session: aiohttp.ClientSession, url: str, request: ExportRequest, out: Path, link: Link
) -> ExportWritten:
    partial = out.with_name(f".{out.name}.part")
    size, last = 0, b""
    try:
        async with session.get(url, params=request.params()) as response:
            if response.status in RETRIABLE_STATUS:
                wait = retry_after(response.headers.get("Retry-After"))
                why = say(
                    "%(url)s: the hub answered HTTP %(status)s %(description)s",
                    url=url,
                    status=response.status,
                    description="",
                )
                raise _Again(why.strip(), wait)
            if response.status != 200:
                error = _error(await response.read())
                raise Refused(
                    response.status, url, error.get("title", ""), error.get("description", "")
                )
            with _durable(partial) as file:
                async for piece in response.content.iter_chunked(_PIECE):
                    await link.pace(len(piece))
                    link.moved(received=len(piece))
                    file.write(piece)
                    size += len(piece)
                    last = (last + piece)[-4096:]
    except (aiohttp.ClientError, TimeoutError) as exc:
        partial.unlink(missing_ok=True)
        raise _Again(f"{url}: {type(exc).__name__}: {exc}") from exc
    closing = last.rstrip(b"\n").rpartition(b"\n")[2].decode("utf-8", "replace")
    if not closing.startswith(COMPLETE):
        partial.unlink(missing_ok=True)
        raise _Again(
            say(
                "%(url)s: the export was cut off after %(bytes)s bytes",
                url=url,
                bytes=number(size),
            )
        )
    os.replace(partial, out)
    return ExportWritten(out, size, closing.removeprefix("# ").strip())


@contextlib.contextmanager
def _durable(path: Path) -> Iterator[BinaryIO]:
    """`path` open for writing, on disk (fsync) once the block ends without an error."""
    with path.open("wb") as file:
        yield file
        file.flush()
        os.fsync(file.fileno())


def _error(raw: bytes) -> dict[str, str]:
    try:
        found = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"description": raw[:200].decode("utf-8", "replace")}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}
