"""Fetching from the bus until a runner is asked to stop.

A runner's loop fetches with a timeout and looks at its stop event between fetches. Racing
the fetch against the event lets it stop at once rather than at the end of the wait: a node
used to take 2 s to stop, four runners waiting out 0.5 s in turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from hub.bus import Record

# A fetch returns as soon as there are records, on either bus; its timeout only sets how
# often the loop of a runner with nothing to do turns, and each turn costs CPU (a hub at
# rest used to turn its runners' loops 11 times a second). Stops cut a fetch short.
IDLE_FETCH_SECONDS = 5.0


async def fetch_until(
    stopping: asyncio.Event, fetch: Coroutine[Any, Any, list[Record]]
) -> list[Record]:
    """What `fetch` returns, or no records once `stopping` is set first. A fetch cancelled
    this way has consumed nothing: its records come again to the next reader."""
    if stopping.is_set():
        fetch.close()
        return []
    fetching = asyncio.ensure_future(fetch)
    stopped = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait((fetching, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not fetching.done():
            fetching.cancel()
            await asyncio.wait((fetching,))
    return [] if fetching.cancelled() else fetching.result()
