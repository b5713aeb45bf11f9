"""HubClient: one member account talking TAXII 2.1 to a hub, over links that drop.

Every request is retried on what a bad link or a busy hub looks like (connection errors,
timeouts, 429, 502-504) and never on a refusal (other 4xx), which raises `Refused` with the
hub's own words.
"""

from __future__ import annotations

import asyncio
import gzip
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from connectors.client.bundles import chunks, envelope, version
from connectors.client.retry import Backoff, retry_after
from hub.signing.sources import Credentials

TAXII = "application/taxii+json;version=2.1"
RETRIABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Compressing a few hundred bytes costs more than it saves.
_COMPRESS_FROM = 1024


class Refused(Exception):
    """The hub refused a request (a 4xx other than 408/429); the message is its TAXII error."""

    def __init__(self, status: int, url: str, title: str, description: str) -> None:
        self.hub_said = f"HTTP {status} {title}: {description}".rstrip(": ")
        super().__init__(f"{url}: {self.hub_said}")
        self.status = status
        self.description = description

    @property
    def about_the_request(self) -> bool:
        """True when the refusal is about what was sent, not about the account or the URL."""
        return self.status not in (401, 403, 404, 405, 406)


@dataclass(frozen=True)
class Outcome:
    """What the hub made of one object version: accepted, or refused and why."""

    id: str
    version: str
    ok: bool
    message: str = ""


@dataclass
class SubmitResult:
    status_ids: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(o.ok for o in self.outcomes)

    @property
    def refused(self) -> int:
        return sum(not o.ok for o in self.outcomes)


def outcomes(status: Mapping[str, Any]) -> list[Outcome]:
    """Per-object outcomes from a complete TAXII status resource."""
    return [
        *(Outcome(d["id"], str(d.get("version", "")), True) for d in status.get("successes", [])),
        *(
            Outcome(d["id"], str(d.get("version", "")), False, str(d.get("message", "")))
            for d in status.get("failures", [])
        ),
    ]


def refused(batch: list[dict[str, Any]], exc: Refused) -> list[Outcome]:
    """Every object of a request the hub refused as a whole, with the hub's words."""
    return [Outcome(str(o["id"]), version(o), False, exc.hub_said) for o in batch]


def discovery_url(url: str) -> str:
    """The TAXII discovery URL for what a user gives: the hub's address, or any TAXII URL."""
    marker = "/taxii2/"
    if marker in url:
        return url[: url.index(marker) + len(marker)]
    return url.rstrip("/") + marker


class HubClient:
    """An async context manager: `async with HubClient(url, user, password) as hub: ...`."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        backoff: Backoff | None = None,
        timeout: float = 60.0,
        compress: bool = True,
        max_objects: int = 1000,
    ) -> None:
        self.discovery = discovery_url(url)
        parts = urllib.parse.urlsplit(self.discovery)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.username = username
        # A bearer token is `<username>.<secret>`: the same secret, sent as Basic.
        self._password = password.removeprefix(f"{username}.")
        self.backoff = backoff or Backoff()
        self._timeout = timeout
        self._compress = compress
        self.max_objects = max_objects
        self._session: aiohttp.ClientSession | None = None
        self._api_root: str | None = None
        self._root_info: dict[str, Any] = {}
        self._collections: dict[str, dict[str, Any]] = {}

    async def __aenter__(self) -> HubClient:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            headers={
                "Accept": TAXII,
                "Authorization": Credentials(self.username, self._password).header(),
            },
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
        expect: int = 200,
    ) -> tuple[Any, Mapping[str, str]]:
        """The JSON answer and headers of one request, retried while the link or hub is down."""
        assert self._session is not None, "use HubClient as an async context manager"
        headers: dict[str, str] = {}
        if body is not None:
            headers["Content-Type"] = TAXII
            if self._compress and len(body) >= _COMPRESS_FROM:
                body = gzip.compress(body, compresslevel=6)
                headers["Content-Encoding"] = "gzip"
        attempts = self.backoff.start()
        while True:
            try:
                async with self._session.request(
                    method, url, data=body, params=params, headers=headers
                ) as response:
                    raw = await response.read()
                    if response.status == expect:
                        return orjson.loads(raw) if raw else None, response.headers
                    error = _error(raw)
                    if response.status not in RETRIABLE_STATUS:
                        raise Refused(
                            response.status,
                            url,
                            error.get("title", response.reason or ""),
                            error.get("description", ""),
                        )
                    why = f"HTTP {response.status} {error.get('description', '')}".strip()
                    wait_hint = retry_after(response.headers.get("Retry-After"))
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
                why, wait_hint = f"{url}: {type(exc).__name__}: {exc}", None
            except orjson.JSONDecodeError as exc:
                why, wait_hint = f"{url}: an answer that is not JSON: {exc}", None
            await attempts.wait(why, wait_hint)

    async def api_root(self) -> str:
        """The URL of the hub's (default) API root, found by discovery."""
        if self._api_root is None:
            found, _ = await self.request("GET", self.discovery)
            root = found.get("default") or (found.get("api_roots") or [None])[0]
            if not root:
                raise Refused(200, self.discovery, "No API root", "discovery names none")
            self._api_root = urllib.parse.urljoin(self.discovery, root)
            self._root_info, _ = await self.request("GET", self._api_root)
        return self._api_root

    async def max_content_length(self) -> int:
        await self.api_root()
        return int(self._root_info.get("max_content_length", 10 * 1024 * 1024))

    async def collection(self, name: str) -> dict[str, Any]:
        """A collection this account can see, by alias, id or title."""
        if name not in self._collections:
            root = await self.api_root()
            listing, _ = await self.request("GET", f"{root}collections/")
            for found in listing.get("collections", []):
                for key in (found.get("alias"), found.get("id"), found.get("title")):
                    if key:
                        self._collections[key] = found
            if name not in self._collections:
                known = sorted(
                    str(c.get("alias") or c["id"]) for c in listing.get("collections", [])
                )
                raise Refused(
                    404,
                    root,
                    "Unknown collection",
                    f"{name!r}; this account sees {', '.join(known) or 'none'}",
                )
        return self._collections[name]

    async def collection_url(self, name: str) -> str:
        return f"{await self.api_root()}collections/{(await self.collection(name))['id']}/"

    async def post(self, objects: list[dict[str, Any]]) -> dict[str, Any]:
        """POST one envelope to the inbox; the hub's 202 status resource (it is durable)."""
        url = f"{await self.collection_url('inbox')}objects/"
        status: dict[str, Any]
        status, _ = await self.request("POST", url, body=envelope(objects), expect=202)
        return status

    async def status(self, status_id: str) -> dict[str, Any]:
        found: dict[str, Any]
        found, _ = await self.request("GET", f"{await self.api_root()}status/{status_id}/")
        return found

    async def wait(
        self, status_id: str, *, poll: float = 0.05, ceiling: float = 2.0
    ) -> dict[str, Any]:
        """The status resource once it is complete, polled ever less often up to `ceiling`."""
        while True:
            found = await self.status(status_id)
            if found.get("status") == "complete":
                return found
            await asyncio.sleep(poll)
            poll = min(poll * 1.5, ceiling)

    async def requests_for(self, objects: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """`objects` cut into requests that fit the hub's max_content_length."""
        # Leave room for what the JSON of a split might add; the limit is on bytes received.
        limit = int(await self.max_content_length() * 0.95)
        return list(chunks(objects, limit, self.max_objects))

    async def submit(
        self,
        objects: list[dict[str, Any]],
        report: Callable[[list[Outcome]], None] = lambda _: None,
    ) -> SubmitResult:
        """Send `objects` (split as the hub requires) and wait for every object's outcome;
        `report` hears the outcomes of each request as they come."""
        result = SubmitResult()
        for batch in await self.requests_for(objects):
            before = len(result.outcomes)
            await self._submit(batch, result)
            report(result.outcomes[before:])
        return result

    async def _submit(self, batch: list[dict[str, Any]], result: SubmitResult) -> None:
        try:
            status = await self.post(batch)
        except Refused as exc:
            if not exc.about_the_request:
                raise
            if exc.status == 413 and len(batch) > 1:
                # Too large once decompressed, or a limit stricter than advertised: halve.
                half = len(batch) // 2
                await self._submit(batch[:half], result)
                await self._submit(batch[half:], result)
                return
            result.outcomes.extend(refused(batch, exc))
            return
        result.status_ids.append(status["id"])
        result.outcomes.extend(outcomes(await self.wait(status["id"])))

    async def objects(
        self, collection: str, params: Mapping[str, str]
    ) -> tuple[dict[str, Any], Mapping[str, str]]:
        """One Get Objects page of `collection` (an envelope) and its headers."""
        url = f"{await self.collection_url(collection)}objects/"
        return await self.request("GET", url, params=params)

    async def jwks(self) -> dict[str, Any]:
        """The hub's public signing keys (current and retired)."""
        found: dict[str, Any]
        found, _ = await self.request("GET", f"{self.origin}/.well-known/jwks.json")
        return found


def _error(raw: bytes) -> dict[str, Any]:
    try:
        found = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"description": raw[:200].decode("utf-8", "replace")}
    return found if isinstance(found, dict) else {}


__all__ = ["HubClient", "Outcome", "Refused", "SubmitResult", "outcomes", "version"]
