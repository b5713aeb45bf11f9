"""The disk under the data dir: how much is free, and whether the hub may take submissions.

A submission is answered 202 only once it is on the log. When the file system is full the
write fails and the hub answers 503 with Retry-After: nothing is lost, nothing is half
written. Two things say the disk is full: free space under the reserve (`min_free_bytes`,
which leaves the pipeline room to route what intake already took), or the log itself
refusing a write for lack of room (then intake stays closed for `PROBE_SECONDS` before the
next submission tries the disk again). Reads go on: they write nothing.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from hub.bus import BusError
from hub.bus.errors import StorageFull

# After the log said "full", how long intake stays closed before one submission tries again.
PROBE_SECONDS = 3.0
# What a client is told: a full disk waits for an operator or for retention, not a second.
RETRY_AFTER = 30


def for_lack_of_room(exc: BaseException) -> bool:
    """Whether `exc`, or an error it was raised from, is the file system having no room."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StorageFull):
            return True
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        code = getattr(current, "sqlite_errorcode", 0) if isinstance(current, sqlite3.Error) else 0
        if code & 0xFF == sqlite3.SQLITE_FULL:
            return True
        current = current.__cause__ or current.__context__
    return False


@dataclass(frozen=True)
class Space:
    free: int
    total: int


def space(path: Path) -> Space:
    """Free (for this user) and total bytes of the file system holding `path`."""
    stat = os.statvfs(path)
    return Space(stat.f_bavail * stat.f_frsize, stat.f_blocks * stat.f_frsize)


class DiskWatch:
    """The data dir's file system, measured on demand; says when intake must close."""

    def __init__(self, path: Path, reserve: int) -> None:
        self.path = path
        self.reserve = reserve
        self.last: Space | None = None
        self._log_full_until = 0.0

    def measure(self) -> Space | None:
        try:
            self.last = space(self.path)
        except OSError:
            self.last = None  # the data dir is not there yet: nothing to say
        return self.last

    @property
    def log_refused(self) -> bool:
        return time.monotonic() < self._log_full_until

    @property
    def full(self) -> bool:
        """Under the reserve at the last measure, or the log refused a write a moment ago."""
        low = self.last is not None and self.last.free < self.reserve
        return low or self.log_refused

    def failed_for_space(self, exc: BusError) -> bool:
        """Whether a failed write failed for lack of room (then intake closes for a while)."""
        measured = self.measure()
        if isinstance(exc, StorageFull) or (
            # An I/O error, not SQLITE_FULL, can be a full disk too: ask the file system.
            measured is not None and measured.free < max(self.reserve, 1 << 20)
        ):
            self._log_full_until = time.monotonic() + PROBE_SECONDS
            return True
        return False

    def state(self) -> dict[str, object]:
        """For /readyz, the dashboard and metrics."""
        measured = self.last
        return {
            "ok": not self.full,
            "free_bytes": measured.free if measured else None,
            "total_bytes": measured.total if measured else None,
            "reserve_bytes": self.reserve,
            **({"error": "the log refused a write: the disk is full"} if self.log_refused else {}),
        }
