"""Reading a TAXII collection page by page from where the last read stopped.

The place to resume is right after the last page handled: its `next` cursor while there was
more, else `added_after` its last object's date added (`X-TAXII-Date-Added-Last`): on a hub
node, date_added strictly increases in the order objects arrive, so that query returns
exactly what was added since, and a read that finds nothing new costs one small answer.
Cursors belong to one hub node's view; if the server answers that the saved one is no
longer valid (400), reading goes on by `added_after`. The ids of the last page read are
kept and skipped, for a node whose dates differ a little from the one that served them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from connectors.client.bundles import version
from connectors.client.files import write_atomically
from connectors.client.http import Refused
from hub.stix import timestamps

# One page: the envelope and the response headers (or {} where a client hides them).
Fetch = Callable[[dict[str, str]], Awaitable[tuple[dict[str, Any], Mapping[str, str]]]]


@dataclass
class FeedState:
    """Where reading one collection stopped; saved after every page is handled."""

    collection: str = ""
    cursor: str | None = None  # `next` after the last page read, while there was more
    added_after: str | None = None  # where to start from when there is no cursor
    last_added: str | None = None  # X-TAXII-Date-Added-Last of the last page read
    last_page: list[str] = field(default_factory=list)  # "id|version" already handled
    files: int = 0
    rate: float | None = None  # bytes per second the link carried, for the next run
    object_bytes: float | None = None  # bytes per object on the wire, likewise

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
    page_size: int | Callable[[], int] = 1000,
) -> AsyncIterator[list[dict[str, Any]]]:
    """The objects not handled before, a page at a time (`page_size`: a number, or asked
    before each page); the state is saved once the caller comes back for the next page, so
    a page whose handling fails is read again next time."""
    size = page_size if callable(page_size) else lambda: page_size
    params: dict[str, str] = {}
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
            envelope, headers = await fetch({**params, "limit": str(size())})
        except Refused as exc:
            if exc.status != 400 or "next" not in params or state.last_added is None:
                raise
            # The cursor is from a view that is gone (rebuilt, another node): go by time.
            params = {"added_after": state.last_added}
            continue
        envelope = envelope or {}
        page = envelope.get("objects", [])
        yield [o for o in page if key(o) not in skip]
        if page:
            skip = {key(o) for o in page}
            state.last_page = sorted(skip)
            if headers.get("X-TAXII-Date-Added-Last"):
                state.last_added = headers["X-TAXII-Date-Added-Last"]
                state.added_after = state.last_added
        more = bool(envelope.get("more") and envelope.get("next"))
        state.cursor = str(envelope["next"]) if more else None
        if page and not headers.get("X-TAXII-Date-Added-Last") and not more:
            # A server without the date headers: start from the same page next time.
            state.cursor = params.get("next")
            state.added_after = params.get("added_after")
        state.save(state_file)
        if not more:
            return
        params = {"next": str(envelope["next"])}
