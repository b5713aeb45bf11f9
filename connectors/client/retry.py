"""When to try again: exponential backoff with jitter, bounded or not, honouring Retry-After;
while the link is down, a cheap probe every few seconds ends the wait as soon as it is back."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hub.i18n.cli import number, say

# Seconds between probes while the link is down: an outage ends at most this long before
# the next try, whatever the backoff has grown to.
PROBE_EVERY = 3.0
Probe = Callable[[], Awaitable[bool]]
Told = Callable[[str, float], None]


class GaveUp(Exception):
    """The hub stayed unreachable (or busy) past the retry deadline; the message says why."""

    hub_answered = False  # whether the hub answered before (the link, not the address, failed)


@dataclass(frozen=True)
class Backoff:
    """Delays of first, first*factor, ... up to ceiling, each with ±25 % jitter so many
    clients cut off together do not come back together; `deadline` (seconds) bounds the
    whole wait, None retries for as long as it takes (store-and-forward)."""

    first: float = 0.5
    factor: float = 2.0
    ceiling: float = 30.0
    deadline: float | None = 300.0

    def start(self) -> Attempts:
        return Attempts(self, time.monotonic())


class Attempts:
    """The retries of one operation."""

    def __init__(self, policy: Backoff, started: float) -> None:
        self._policy = policy
        self._started = started
        self._next = policy.first
        self.count = 0

    async def wait(
        self,
        why: str,
        retry_after: float | None = None,
        *,
        probe: Probe | None = None,
        tell: Told = lambda why, delay: None,
    ) -> None:
        """Sleep before the next try (`tell` hears why and for how long); GaveUp once the
        deadline would pass. With `probe` (the link failed, not the hub), probe first: if
        the link answers at once the failure was not an outage and the backoff applies;
        otherwise the wait ends as soon as a probe gets through."""
        self.count += 1
        delay = self._next * random.uniform(0.75, 1.25)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self._policy.ceiling))
        self._next = min(self._next * self._policy.factor, self._policy.ceiling)
        deadline = self._policy.deadline
        if deadline is not None and time.monotonic() - self._started + delay > deadline:
            raise GaveUp(
                say(
                    "gave up after %(tries)s tries in %(seconds)s s: %(why)s",
                    tries=number(self.count),
                    seconds=number(deadline),
                    why=why,
                )
            )
        tell(why, delay)
        end = time.monotonic() + delay
        if probe is None or await probe():
            await asyncio.sleep(max(0.0, end - time.monotonic()))
            return
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(PROBE_EVERY, left))
            if await probe():
                return


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header given in seconds (the hub's form); None otherwise."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
