"""Reading a TAXII collection page by page from where the last read stopped.

The place to resume is the `next` cursor that fetched the last page read, with the ids of
that page: fetching from that cursor again returns that page and whatever was added since,
and what was already handled is skipped. Cursors belong to one hub node's view; if the
server answers that the saved one is no longer valid (400), reading goes on from the last
page's `X-TAXII-Date-Added-Last` (`added_after`) instead.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from connectors.client.bundles import version
from connectors.client.http import Refused
from hub.stix import timestamps

# One page: the envelope and the response headers (or {} where a client hides them).
Fetch = Callable[[dict[str, str]], Awaitable[tuple[dict[str, Any], Mapping[str, str]]]]


@dataclass
class FeedState:
    """Where reading one collection stopped; saved after every page is handled."""

    collection: str = ""
    cursor: str | None = None  # `next` that fetched the last page read (None: the first)
    added_after: str | None = None
    last_added: str | None = None  # X-TAXII-Date-Added-Last of the last page read
    last_page: list[str] = field(default_factory=list)  # "id|version" already handled
    files: int = 0

    @classmethod
    def load(cls, path: Path) -> FeedState:
        if not path.exists():
            return cls()
        try:
            return cls(**orjson.loads(path.read_bytes()))
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{path}: not a state file this version wrote: {exc}") from exc

    def save(self, path: Path) -> None:
        write_atomically(path, orjson.dumps(self.__dict__))


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all (temp file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def key(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('id')}|{version(obj)}"


def since_params(since: str) -> dict[str, str]:
    """`--since`: an RFC 3339 time (added_after) or a cursor the hub gave (next)."""
    try:
        timestamps.sort_key(since)
    except ValueError:
        return {"next": since}
    return {"added_after": since}


async def new_pages(
    fetch: Fetch,
    state: FeedState,
    state_file: Path,
    *,
    since: str | None = None,
    page_size: int = 1000,
) -> AsyncIterator[list[dict[str, Any]]]:
    """The objects not handled before, a page at a time; the state is saved once the caller
    comes back for the next page, so a page whose handling fails is read again next time."""
    params: dict[str, str] = {"limit": str(page_size)}
    if since is not None:
        params.update(since_params(since))
        state.last_page = []
    elif state.cursor:
        params["next"] = state.cursor
    elif state.added_after:
        params["added_after"] = state.added_after
    skip = set(state.last_page)
    while True:
        try:
            envelope, headers = await fetch(params)
        except Refused as exc:
            if exc.status != 400 or "next" not in params or state.last_added is None:
                raise
            # The cursor is from a view that is gone (rebuilt, another node): go by time.
            params = {"limit": str(page_size), "added_after": state.last_added}
            continue
        envelope = envelope or {}
        page = envelope.get("objects", [])
        yield [o for o in page if key(o) not in skip]
        if headers.get("X-TAXII-Date-Added-Last"):
            state.last_added = headers["X-TAXII-Date-Added-Last"]
        more = bool(envelope.get("more") and envelope.get("next"))
        if more:
            params = {"limit": str(page_size), "next": str(envelope["next"])}
            state.cursor, state.added_after, state.last_page, skip = params["next"], None, [], set()
        else:
            state.cursor = params.get("next")
            state.added_after = params.get("added_after") if state.cursor is None else None
            state.last_page = sorted(skip | {key(o) for o in page})
        state.save(state_file)
        if not more:
            return
