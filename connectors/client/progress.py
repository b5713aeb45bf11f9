"""Progress on standard error: a bar redrawn in place on a terminal, a line every few
seconds otherwise (logs and CI)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, what: str, *, out: TextIO = sys.stderr, every: float = 2.0):
        self.total = max(total, 0)
        self.what = what
        self.done = 0
        self._out = out
        self._every = every
        self._tty = out.isatty()
        self._started = self._last = time.monotonic()

    def advance(self, steps: int = 1, note: str = "") -> None:
        self.done += steps
        now = time.monotonic()
        if self._tty or now - self._last >= self._every or self.done >= self.total:
            self._last = now
            self._draw(note, now)

    def _draw(self, note: str, now: float) -> None:
        rate = self.done / max(now - self._started, 1e-9)
        if self.total:
            filled = int(30 * min(self.done, self.total) / self.total)
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} {self.what}"
        else:
            bar = f"{self.done} {self.what}"
        line = f"{bar}  {rate:,.1f}/s  {note}".rstrip()
        if self._tty:
            self._out.write(f"\r{line[:120]:<120}")
        else:
            self._out.write(line + "\n")
        self._out.flush()

    def close(self) -> None:
        if self._tty:
            self._out.write("\n")
            self._out.flush()
