"""The hub's public keys as a reader holds them: fetched once, fetched again when an object
names a key id the reader has not seen (the hub rotated its key since)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hub.signing.sources import read_json
from hub.signing.verify import Verdict, Verifier, hub_keys

Fetch = Callable[[], Awaitable[dict[str, Any]]]


class HubKeys:
    """Checks hub signatures against a JWKS that follows the hub's key rotations."""

    def __init__(self, fetch: Fetch, min_interval: float = 1.0, patience: float = 0.0) -> None:
        self._fetch_jwks = fetch
        self._min_interval = min_interval
        # How long a new kid may take to reach the source (the keys topic lags a rotation
        # by seconds): fetched again every `min_interval` until then; 0: fetched once.
        self._patience = patience
        self._verifier: Verifier | None = None
        self._fetched = 0.0
        self._tried: set[str] = set()

    @classmethod
    def at(cls, source: str) -> HubKeys:
        """The JWKS at a URL (`/.well-known/jwks.json`) or in a file."""
        return cls(lambda: asyncio.to_thread(read_json, source))

    async def _fetch(self) -> Verifier:
        self._verifier = Verifier(hub_keys(await self._fetch_jwks()))
        self._fetched = time.monotonic()
        return self._verifier

    async def verify(self, obj: object) -> Verdict:
        verifier = self._verifier or await self._fetch()
        verdict = verifier.verify(obj)
        # A rotated key shows as an unknown kid: fetch again, once per kid (for `patience`
        # seconds at most) and not more than once a `min_interval`, so objects naming
        # forged kids cannot make us fetch for each.
        kid = verdict.kid or ""
        if verdict.reason != "unknown-kid" or kid in self._tried:
            return verdict
        deadline = time.monotonic() + self._patience
        while True:
            wait = self._fetched + self._min_interval - time.monotonic()
            if wait > 0:
                if time.monotonic() + wait > deadline:
                    return verdict
                await asyncio.sleep(wait)
            self._tried.add(kid)
            verdict = (await self._fetch()).verify(obj)
            if verdict.reason != "unknown-kid" or time.monotonic() >= deadline:
                return verdict
