"""Webhooks: each new or updated alert POSTed to the URL its member configured.

The body is the alert as delivered, a STIX object carrying the hub's signature (verify it
with the hub's JWKS, as any object). Delivery happens after the alert is committed, from a
bounded queue per member, retried with growing pauses; it never holds up the correlator
(a full queue drops its oldest notification, and says so in the log). A webhook is a
notification, not the record: what it missed is in the `alerts` collection and stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

log = logging.getLogger(__name__)

STIX_JSON = "application/stix+json;version=2.1"


@dataclass
class Webhooks:
    urls: Mapping[str, str]  # member id → URL
    attempts: int = 8
    first_pause: float = 0.5
    queue_size: int = 1000
    timeout: float = 10.0
    _queues: dict[str, asyncio.Queue[dict[str, Any]]] = field(default_factory=dict)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self, alert: dict[str, Any], member: str) -> None:
        """Queue `alert` for `member`'s webhook, if it has one; never waits."""
        if member not in self.urls:
            return
        queue = self._queues.setdefault(member, asyncio.Queue(self.queue_size))
        if queue.full():
            dropped = queue.get_nowait()
            log.warning(
                "webhook of %s is behind: notification of %s dropped", member, dropped.get("id")
            )
        queue.put_nowait(alert)

    async def _deliver(
        self, session: aiohttp.ClientSession, member: str, alert: dict[str, Any]
    ) -> None:
        pause = self.first_pause
        for attempt in range(1, self.attempts + 1):
            try:
                async with session.post(
                    self.urls[member],
                    data=orjson.dumps(alert),
                    headers={"Content-Type": STIX_JSON, "X-Cirt-Hub-Alert": str(alert["id"])},
                ) as response:
                    if 200 <= response.status < 300:
                        return
                    problem = f"answered {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            log.info("webhook of %s %s (attempt %d)", member, problem, attempt)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)
            if self._stopping.is_set():
                return
            pause = min(pause * 2, 60.0)
        log.warning("webhook of %s gave up on %s after %d attempts", member, alert["id"], attempt)

    async def _drain(self, session: aiohttp.ClientSession, member: str) -> None:
        queue = self._queues.setdefault(member, asyncio.Queue(self.queue_size))
        while not self._stopping.is_set():
            getting = asyncio.ensure_future(queue.get())
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait((getting, stopping), return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not getting.done():
                getting.cancel()
                return
            await self._deliver(session, member, getting.result())

    async def run(self) -> None:
        """Deliver until stopped: one task per member with a webhook."""
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            drains = (self._drain(session, member) for member in self.urls)
            await asyncio.gather(self._stopping.wait(), *drains)

    def stop(self) -> None:
        self._stopping.set()
