"""Progress on standard error: a bar redrawn in place on a terminal, a line every few
seconds otherwise (logs and CI); with the link's state when a Link is shown: bytes moved,
and while it is down since when, why, and when the next try is."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO

from connectors.client.link import Link, LinkState
from hub.i18n.cli import number, say

# While the link is down and nothing else is printed, a line this often (not on a terminal).
_QUIET_FOR = 10.0


def size(n: float) -> str:
    """Bytes for people, in the language in use: 812 B, 14.2 KB, 3.1 MB."""
    if n < 1000:
        return say("%(count)s B", count=number(n))
    if n < 1000 * 1000:
        return say("%(count)s KB", count=number(n / 1000, 1))
    return say("%(count)s MB", count=number(n / 1000 / 1000, 1))


def link_note(state: LinkState, now: float | None = None) -> str:
    """The link's part of a progress line."""
    now = time.time() if now is None else now
    moved = say(
        "sent %(sent)s, received %(received)s", sent=size(state.sent), received=size(state.received)
    )
    if state.rate:
        moved += say(", %(rate)s/s", rate=size(state.rate))
    if state.down_since is None:
        return moved
    since = time.strftime("%H:%M:%S", time.localtime(state.down_since))
    line = say("link down since %(time)s", time=since)
    if state.next_try is not None:
        line += say(", next try in %(seconds)s s", seconds=number(max(0.0, state.next_try - now)))
    return f"{line} ({state.why}); {moved}"


class Progress:
    def __init__(
        self,
        total: int,
        what: str,
        *,
        out: TextIO = sys.stderr,
        every: float = 2.0,
        link: Link | None = None,
        done: int = 0,
    ) -> None:
        self.total = max(total, 0)
        self.what = what
        self.done = done
        self._first = done
        self._out = out
        self._every = every
        self._tty = out.isatty()
        self._started = self._last = time.monotonic()
        self._note = ""
        self._link = link
        if link is not None:
            link.listeners.append(self._link_changed)

    def advance(self, steps: int = 1, note: str = "") -> None:
        self.done += steps
        self._note = note
        now = time.monotonic()
        if self._tty or now - self._last >= self._every or self.done >= self.total:
            self._draw(now)

    def _link_changed(self, _: LinkState) -> None:
        self._draw(time.monotonic())

    async def ticking(self) -> None:
        """Redraw while nothing else does: each second on a terminal (the countdown to the
        next try), every _QUIET_FOR seconds in a log while the link is down."""
        while True:
            await asyncio.sleep(1.0 if self._tty else _QUIET_FOR)
            now = time.monotonic()
            down = self._link is not None and self._link.down_since is not None
            if self._tty or (down and now - self._last >= _QUIET_FOR):
                self._draw(now)

    def _draw(self, now: float) -> None:
        self._last = now
        rate = (self.done - self._first) / max(now - self._started, 1e-9)
        if self.total:
            filled = int(30 * min(self.done, self.total) / self.total)
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} {self.what}"
        else:
            bar = f"{self.done} {self.what}"
        parts = [bar, say("%(rate)s/s", rate=number(rate, 1))]
        if self._link is not None:
            parts.append(link_note(self._link.state()))
        if self._note:
            parts.append(self._note)
        line = "  ".join(parts)
        if self._tty:
            self._out.write(f"\r{line[:160]:<160}")
        else:
            self._out.write(line + "\n")
        self._out.flush()

    def close(self) -> None:
        if self._link is not None and self._link_changed in self._link.listeners:
            self._link.listeners.remove(self._link_changed)
        if self._tty:
            self._out.write("\n")
            self._out.flush()
