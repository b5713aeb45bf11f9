"""Discovery kept between runs: the hub's discovery, API root and collection listing, each
with its ETag and the max-age the hub gave, in a file beside the pull's state or the queue.

A run within max-age asks nothing; after it, a revalidation (If-None-Match) costs a 304. A
collection URL that came from the cache and answers 404 makes the client forget the cache
and discover again (the hub's collections changed). Kept per hub and account: the listing
depends on the account.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from connectors.client.files import write_atomically

_MAX_AGE = re.compile(r"max-age=([0-9]+)")


class DiscoveryCache:
    """The cache in `path` (None: nothing kept, every run discovers), for `owner`."""

    def __init__(self, path: Path | None, owner: str) -> None:
        self._path = path
        self._owner = owner
        self._entries: dict[str, dict[str, Any]] = {}
        self._changed = False
        self._used = False
        if path is not None and path.exists():
            try:
                saved = orjson.loads(path.read_bytes())
            except orjson.JSONDecodeError:
                saved = {}  # a cache is never worth failing a run for: discover again
            if isinstance(saved, dict) and saved.get("owner") == owner:
                self._entries = dict(saved.get("entries") or {})

    def fresh(self, url: str) -> dict[str, Any] | None:
        """The cached answer for `url` if it is within its max-age."""
        entry = self._entries.get(url)
        if entry is None or time.time() - entry["fetched"] > entry["max_age"]:
            return None
        self._used = True
        body: dict[str, Any] = entry["body"]
        return body

    def etag(self, url: str) -> str | None:
        entry = self._entries.get(url)
        return entry["etag"] if entry else None

    def accept_encoding(self, url: str) -> str | None:
        """The Accept-Encoding of the answer cached for `url`."""
        entry = self._entries.get(url)
        return entry.get("accept_encoding") if entry else None

    def store(self, url: str, found: Any, headers: Mapping[str, str]) -> dict[str, Any]:
        """Keep what a GET of `url` answered (None for a 304: the cached copy is current)."""
        entry = self._entries.get(url)
        if found is None and entry is not None:
            found = entry["body"]
            self._used = True
        max_age = _MAX_AGE.search(headers.get("Cache-Control", ""))
        if headers.get("ETag") or max_age:
            self._entries[url] = {
                "body": found,
                "etag": headers.get("ETag"),
                # what the hub decodes in request bodies, for runs that ask it nothing
                "accept_encoding": headers.get("Accept-Encoding"),
                "fetched": time.time(),
                "max_age": int(max_age.group(1)) if max_age else 0,
            }
            self._changed = True
            self.save()  # now: a run killed before its end still leaves it for the next
        return found or {}

    def forget(self) -> bool:
        """Drop everything; True if a cached answer was used this run (so worth retrying)."""
        used = self._used
        self._entries, self._changed, self._used = {}, True, False
        return used

    def save(self) -> None:
        if self._path is not None and self._changed:
            write_atomically(
                self._path, orjson.dumps({"owner": self._owner, "entries": self._entries})
            )
            self._changed = False
