"""The peer hub, read with OASIS's taxii2-client (what any TAXII 2.1 server answers to)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import requests
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import Collection, Server

from connectors.client.http import RETRIABLE_STATUS, Refused, discovery_url
from connectors.client.retry import Backoff
from hub.signing.sources import SourceError, fetch_json


class PeerHub:
    """One peer hub and the reader account this hub holds there."""

    def __init__(
        self, url: str, username: str, password: str, *, backoff: Backoff | None = None
    ) -> None:
        self.discovery = discovery_url(url)
        self.origin = self.discovery.removesuffix("/taxii2/")
        self._user, self._password = username, password
        self._backoff = backoff or Backoff()
        self._collections: dict[str, Collection] = {}

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`fn` in a thread, retried while the peer is unreachable or busy."""
        attempts = self._backoff.start()
        while True:
            try:
                return await asyncio.to_thread(fn, *args, **kwargs)
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else 0
                if status not in RETRIABLE_STATUS:
                    raise Refused(status, what, "peer refused", _description(exc)) from exc
                why = f"{what}: HTTP {status}"
            except (requests.ConnectionError, requests.Timeout, TAXIIServiceException) as exc:
                why = f"{what}: {exc}"
            await attempts.wait(why)

    async def collection(self, name: str) -> Collection:
        """A collection this account can read at the peer, by alias, id or title."""
        if name not in self._collections:
            server = Server(self.discovery, user=self._user, password=self._password)

            def listing() -> list[Collection]:
                return list(server.default.collections)

            for found in await self._call(self.discovery, listing):
                for key in (getattr(found, "alias", None), found.id, found.title):
                    if key:
                        self._collections[key] = found
            if name not in self._collections:
                raise Refused(404, self.discovery, "Unknown collection", f"{name!r} at the peer")
        return self._collections[name]

    async def objects(
        self, name: str, params: Mapping[str, str]
    ) -> tuple[dict[str, Any], Mapping[str, str]]:
        """One Get Objects page (taxii2-client does not show the response headers)."""
        collection = await self.collection(name)
        kwargs: dict[str, Any] = {"limit": int(params.get("limit", "1000"))}
        for key in ("next", "added_after"):
            if key in params:
                kwargs[key] = params[key]
        return await self._call(collection.url, collection.get_objects, **kwargs), {}

    async def jwks(self) -> dict[str, Any]:
        """The peer hub's public signing keys."""
        url = f"{self.origin}/.well-known/jwks.json"
        try:
            return await asyncio.to_thread(fetch_json, url)
        except SourceError as exc:
            raise Refused(0, url, "peer JWKS unavailable", str(exc)) from exc


def _description(exc: requests.HTTPError) -> str:
    try:
        return (
            str(exc.response.json().get("description", ""))
            if exc.response is not None
            else str(exc)
        )
    except (ValueError, AttributeError):
        return str(exc)
