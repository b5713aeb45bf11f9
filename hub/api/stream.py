"""The live stream: `GET /api/v1/streams/{collection}` as Server-Sent Events.

Each event carries one object version as the reader may see it (the same rows TAXII serves
it), and its id is the TAXII paging cursor of that row, so `Last-Event-ID` (or `?from=`)
resumes with no gap and no duplicate, and a stream can hand over to TAXII paging and back.
Every version is sent, not only the latest: a stream is a log of what arrived.

One read of the view holds at most `page_bytes` of objects (or one larger object), so a
collection of large objects costs a reader that much at a time, not a batch of them.
A reader that does not keep up is not buffered without bound: a write that cannot be
handed to the connection within `stream_write_timeout` ends the stream with a clean close,
and the client resumes from the last id it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from aiohttp import web

from hub.api.access import permitted_reading
from hub.api.keys import FOLLOWER, SETTINGS, VIEW
from hub.api.readers import bound_buffers, write_within
from hub.api.taxii.query import decode_cursor, encode_cursor
from hub.store.view import Entry, ObjectQuery, View

log = logging.getLogger(__name__)

_BATCH = 200  # events per read of the view; `page_bytes` bounds the read's bytes too


@dataclass
class Streams:
    """The node's open streams: how many, and the signal that ends them all at shutdown."""

    clients: int = 0
    closing: asyncio.Event = field(default_factory=asyncio.Event)


STREAMS = web.AppKey("streams", Streams)


def _start_after(request: web.Request, epoch: str) -> int:
    given = request.headers.get("Last-Event-ID") or request.query.get("from")
    return decode_cursor(given, epoch) if given else 0


def _event(entry: Entry, epoch: str, piece: int) -> Iterator[bytes | memoryview]:
    """One event, in parts of at most about `piece` bytes: a large object goes out a piece
    at a time instead of being copied whole into the event, its HTTP chunk and the
    connection's buffer (a reader cut off mid-event drops the part it got and resumes)."""
    cursor = encode_cursor(epoch, entry.seq)
    # Object JSON from the view is one line (orjson), so one `data:` line holds it.
    head = b"id: " + cursor.encode() + b"\nevent: object\ndata: "
    if len(entry.json) <= piece:
        yield head + entry.json + b"\n\n"
        return
    yield head
    json = memoryview(entry.json)
    for start in range(0, len(json), piece):
        yield json[start : start + piece]
    yield b"\n\n"


async def _send_next(
    response: web.StreamResponse, view: View, query: ObjectQuery, piece: int, timeout: float
) -> tuple[int, bool]:
    """Write the events of the view's next read: the last sequence number written (the
    query's own if none), and whether there is more. The read is let go on return, so a
    reader never holds two at once."""
    page = await view.objects(query)
    for entry in page.entries:
        for part in _event(entry, view.epoch, piece):
            await write_within(response, part, timeout)
    return page.last_seq, page.more


async def stream(request: web.Request) -> web.StreamResponse:
    """Objects of one collection as they arrive, resumable by event id."""
    scope, collection = await permitted_reading(request)
    settings, view, follower = request.app[SETTINGS], request.app[VIEW], request.app[FOLLOWER]
    streams = request.app[STREAMS]
    after = _start_after(request, view.epoch)  # a bad cursor is a 400 before the stream opens
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # proxies must pass events on as they come
        }
    )
    await response.prepare(request)
    bound_buffers(request, settings.stream_buffer_bytes)
    streams.clients += 1
    beat, timeout = settings.stream_heartbeat, settings.stream_write_timeout
    # Every collection a reader may open is routed to, so the view follows its feed topic
    # (the inbox, the one that is not, has no readers).
    feed = settings.topics.feed(collection.alias)
    looked: int | None = None  # the collection's change count when the view was last read
    try:
        await write_within(response, b"retry: 2000\n\n", timeout)
        last_write = time.monotonic()
        while not streams.closing.is_set():
            # No page query while nothing new reached this collection: with many readers
            # and collections, most wake-ups are for batches that went elsewhere.
            if looked != follower.applied(feed):
                looked = follower.applied(feed)  # before the read, so nothing slips between
                query = ObjectQuery(
                    collection=collection.alias,
                    reader=scope.reader,
                    after_seq=after,
                    versions=("all",),
                    limit=_BATCH,
                    max_bytes=settings.page_bytes,
                )
                written, more = await _send_next(
                    response, view, query, settings.stream_buffer_bytes, timeout
                )
                if written != after:
                    after, last_write = written, time.monotonic()
                if more:
                    looked = None
                    continue
            # Short waits: a reader that went away is noticed within a second (the server
            # sees a closed connection only on its side's next look), not at the heartbeat.
            await follower.wait_for_change(feed, looked, min(beat, 1.0), streams.closing)
            if request.transport is None or request.transport.is_closing():
                return response
            if time.monotonic() - last_write >= beat:
                # A comment line: keeps proxies from closing an idle stream, and tells the
                # client the hub is alive.
                await write_within(response, b": heartbeat\n\n", timeout)
                last_write = time.monotonic()
    except TimeoutError:
        log.info(
            "stream of %s for %s ended: the reader did not keep up; it resumes from its last id",
            collection.alias,
            scope.reader,
        )
        transport = request.transport
        if transport is not None:
            # What is already queued still goes out if the reader wakes up in time (the
            # part of a large event it may end with is dropped by the client); then the
            # connection ends either way.
            transport.close()
            asyncio.get_running_loop().call_later(timeout, transport.abort)
        return response
    except ConnectionResetError:
        return response  # the reader went away
    finally:
        streams.clients -= 1
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


async def close_streams(app: web.Application) -> None:
    """On shutdown: end every stream so the server can stop without waiting for readers."""
    app[STREAMS].closing.set()
