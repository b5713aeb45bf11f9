"""What the client knows of its link to the hub: bytes moved, the rate it measured, whether
the link is down and since when; and the `--max-rate` cap.

The measured rate sizes the units the client sends and fetches (requests, pages), so that
each takes about TARGET_SECONDS whatever the link: a unit cut off by an outage or a killed
client costs at most that much again, and the hub's body deadline (bytes per second after
its first seconds) is met on a slow link as on a fast one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

# Seconds one request or page should take on the link as measured.
TARGET_SECONDS = 8.0
# Transfers shorter than this say more about latency than about the rate.
_MEASURABLE_BYTES = 4096


@dataclass
class LinkState:
    """A snapshot for the progress line."""

    sent: int
    received: int
    rate: float | None
    down_since: float | None  # wall-clock time of the first failure of this outage
    why: str
    next_try: float | None  # wall-clock time of the next try, while waiting


class Link:
    """Counters and state shared by every request of one HubClient."""

    def __init__(self, *, max_rate: float | None = None, rate: float | None = None) -> None:
        self.max_rate = max_rate
        self.sent = 0  # body bytes as they went on the wire (compressed)
        self.received = 0
        self.answered = False  # the hub answered at least once (for "unreachable")
        self.rate = rate  # bytes per second, smoothed; None until measured
        self.down_since: float | None = None
        self.why = ""
        self.next_try: float | None = None
        self._paced_until = 0.0
        self.listeners: list[Callable[[LinkState], None]] = []

    def state(self) -> LinkState:
        return LinkState(
            self.sent, self.received, self.rate, self.down_since, self.why, self.next_try
        )

    def _tell(self) -> None:
        snapshot = self.state()
        for listener in self.listeners:
            listener(snapshot)

    async def pace(self, size: int) -> None:
        """Wait as long as `--max-rate` says `size` bytes take (no wait without a cap)."""
        if not self.max_rate:
            return
        now = time.monotonic()
        self._paced_until = max(self._paced_until, now) + size / self.max_rate
        # A second's worth may go at once: the cap is an average, not a per-chunk delay.
        ahead = self._paced_until - now - 1.0
        if ahead > 0:
            await asyncio.sleep(ahead)

    def moved(self, *, sent: int = 0, received: int = 0) -> None:
        self.sent += sent
        self.received += received

    def measure(self, size: int, seconds: float) -> None:
        """One transfer of `size` bytes took `seconds`: fold it into the rate."""
        if size < _MEASURABLE_BYTES or seconds <= 0:
            return
        rate = size / seconds
        if self.max_rate:
            rate = min(rate, self.max_rate)
        self.rate = rate if self.rate is None else 0.5 * self.rate + 0.5 * rate

    def failed(self, why: str, next_try: float | None) -> None:
        if self.down_since is None:
            self.down_since = time.time()
        self.why, self.next_try = why, next_try
        self._tell()

    def up(self) -> None:
        """The hub answered: whatever outage there was is over."""
        self.answered = True
        if self.down_since is not None:
            self.down_since, self.why, self.next_try = None, "", None
            self._tell()

    def units(self, unit_bytes: float, *, least: int, most: int) -> int:
        """How many units of `unit_bytes` (on the wire) one transfer of about TARGET_SECONDS
        holds at the measured rate; `least` before anything was measured."""
        if self.rate is None or unit_bytes <= 0:
            return least
        return max(least, min(most, int(TARGET_SECONDS * self.rate / unit_bytes)))


def parse_rate(text: str) -> float:
    """`--max-rate`: bytes per second, with an optional k or m (x1024), as curl's --limit-rate."""
    units = {"k": 1024, "m": 1024 * 1024}
    factor = units.get(text[-1:].lower(), 1)
    number = text[:-1] if factor != 1 else text
    try:
        rate = float(number) * factor
    except ValueError:
        raise ValueError(f"--max-rate {text!r}: give bytes per second, e.g. 6k") from None
    if rate < 512:
        raise ValueError(f"--max-rate {text!r}: at least 512 bytes per second")
    return rate
