"""Add-then-get through OASIS's taxii2-client: OASIS medallion against a running cirt-hub.

The same objects go to both. Add: POSTed with `Collection.add_objects` in chunks, each waited
on until its status is complete (medallion completes a POST before answering; on the hub,
complete means readable). Get: the whole collection walked with
`as_pages(collection.get_objects, per_request)`; every added id must come back once.
Throughput is objects / (add + get). Progress goes to stderr; medallion's first page at
10,000 objects takes minutes, and a line every 10 s says so.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.taxii import (
    MEDALLION_MAX_PAGE_SIZE,
    MEDALLION_SESSION_TIMEOUT,
    Added,
    MedallionCollection,
    Walk,
    add_all,
    check_ids,
    find_collection,
    medallion_server,
    progress,
    walk,
)
from hub.collections import INBOX

COLLECTION = "5f0c1e7a-9d2b-4c3e-8a61-0b7d4e2f9c18"  # medallion's collection, empty at start


@dataclass(frozen=True)
class Compared:
    """One server's add-then-get, flat for a table."""

    server: str
    objects: int
    chunk: int
    per_request: int
    page_size: int  # the largest page served: below per_request when the server caps it
    max_page_size: int | None  # the server's configured cap, where the bench sets it
    add_seconds: float
    add_requests: int
    added: int
    refused: int
    add_retries: int
    get_seconds: float
    first_page_seconds: float
    pages: int
    got: int
    total_seconds: float
    objects_per_s: float  # objects / (add + get)
    ids_ok: bool  # each added (not refused) id came back once, and nothing else
    missing: int
    unexpected: int
    duplicates: int
    refusals: tuple[str, ...]  # the first few, "id: message"


def compared(
    server: str,
    objects: list[dict[str, Any]],
    chunk: int,
    per_request: int,
    added: Added,
    walked: Walk,
    max_page_size: int | None,
) -> Compared:
    expected = {o["id"] for o in objects} - added.failed_ids
    check = check_ids(expected, walked.ids)
    if not check.ok:
        progress(f"{server}: WARNING: the walk does not match what was added: {check}")
    total = added.seconds + walked.seconds
    return Compared(
        server=server,
        objects=len(objects),
        chunk=chunk,
        per_request=per_request,
        page_size=walked.largest_page,
        max_page_size=max_page_size,
        add_seconds=added.seconds,
        add_requests=added.requests,
        added=added.succeeded,
        refused=added.failed,
        add_retries=added.retries,
        get_seconds=walked.seconds,
        first_page_seconds=walked.first_page_seconds,
        pages=walked.pages,
        got=check.got,
        total_seconds=total,
        objects_per_s=len(objects) / total,
        ids_ok=check.ok,
        missing=len(check.missing),
        unexpected=len(check.unexpected),
        duplicates=check.got - check.distinct,
        refusals=added.failures,
    )


def run_medallion(
    objects: list[dict[str, Any]], *, per_request: int = 100, chunk: int = 1000
) -> dict[str, Any]:
    """Add-then-get on OASIS medallion (memory backend) started here as a subprocess, into
    an empty collection; a Compared as a dict. Blocks: not for an event loop's thread."""
    with tempfile.TemporaryDirectory(prefix="medallion-compare-") as tmp:
        progress(
            f"medallion: starting it (memory backend, max_page_size {MEDALLION_MAX_PAGE_SIZE}, "
            f"next sessions kept {MEDALLION_SESSION_TIMEOUT} s) ..."
        )
        empty = MedallionCollection(COLLECTION, "add-then-get, empty at start")
        with medallion_server([empty], Path(tmp)) as server:
            collection = server.collection(COLLECTION)
            collection.refresh()  # collection info, outside the timing
            progress(f"medallion: adding {len(objects):,} objects in chunks of {chunk} ...")
            added = add_all("medallion", collection, objects, chunk)
            progress(f"medallion: getting them back, per_request={per_request} ...")
            walked = walk("medallion", collection, per_request)
    result = compared(
        "medallion", objects, chunk, per_request, added, walked, MEDALLION_MAX_PAGE_SIZE
    )
    return asdict(result)


async def run_hub(
    base_url: str,
    submit: tuple[str, str],
    read: tuple[str, str],
    collection_alias: str,
    objects: list[dict[str, Any]],
    *,
    per_request: int = 100,
    chunk: int = 1000,
) -> dict[str, Any]:
    """Add-then-get on a running cirt-hub: POSTed to the inbox as `submit` (username,
    password), walked in `collection_alias` as `read`; a Compared as a dict. The client runs
    in a thread, so a hub served by this process's event loop keeps serving. The collection
    should hold nothing else, or the extra objects show up as `unexpected`."""
    return await asyncio.to_thread(
        _run_hub, base_url, submit, read, collection_alias, objects, per_request, chunk
    )


def _run_hub(
    base_url: str,
    submit: tuple[str, str],
    read: tuple[str, str],
    collection_alias: str,
    objects: list[dict[str, Any]],
    per_request: int,
    chunk: int,
) -> dict[str, Any]:
    # Discovery, as a client finds the collections (their ids, not aliases), and the hub's
    # scrypt password checks, which it then caches: outside the timing.
    progress(f"cirt-hub: discovery at {base_url} as {submit[0]} and {read[0]} ...")
    inbox = find_collection(base_url, INBOX, *submit)
    feed = find_collection(base_url, collection_alias, *read)
    progress(f"cirt-hub: adding {len(objects):,} objects in chunks of {chunk} ...")
    added = add_all("cirt-hub", inbox, objects, chunk)
    progress(f"cirt-hub: getting them back from {collection_alias}, per_request={per_request} ...")
    walked = walk("cirt-hub", feed, per_request)
    return asdict(compared("cirt-hub", objects, chunk, per_request, added, walked, None))
