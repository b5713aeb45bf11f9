"""HubClient: one member account talking TAXII 2.1 to a hub, over links that drop.

Every request is retried on what a bad link or a busy hub looks like (connection errors,
stalls, 429, 502-504) and never on a refusal (other 4xx), which raises `Refused` with the
hub's own words. A request has no total timeout: it is given up (and sent again, which is
safe: reads change nothing and the hub keeps one copy of what it already has) when no byte
has moved for `stall` seconds, so a large unit on a slow link finishes while a dead
connection is dropped early. What the link does is counted in `link` (connectors.client.link).
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from connectors.client.bundles import chunks, envelope, version
from connectors.client.codings import ACCEPT_ENCODING, Answer, body_coding, encode, hub_decodes
from connectors.client.discovery import DiscoveryCache
from connectors.client.link import Link
from connectors.client.retry import Backoff, retry_after
from hub.api.codings import DecodingError
from hub.i18n.cli import number, say
from hub.signing.sources import Credentials

TAXII = "application/taxii+json;version=2.1"
RETRIABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Bodies go out and come in by pieces this large: each one shows progress, and --max-rate
# paces them.
_PIECE = 8192
# A probe (is the link back?) that takes longer than this has failed.
_PROBE_TIMEOUT = 6.0
# JSON bytes in a first request, before the link is measured: seconds at 64 kbit/s gzipped.
FIRST_REQUEST = 64 * 1024
# Seconds a status poll may wait at the hub for completion (hub/api/taxii/status.py allows
# 30): short enough that a link cut during one is noticed soon (the stall limit runs after).
STATUS_WAIT = 10


class _Failed(Exception):
    """One attempt failed the way a bad link or a busy hub fails: try again."""

    def __init__(
        self, why: str, retry_after: float | None = None, *, link: bool, waiting: bool = False
    ) -> None:
        super().__init__(why)
        self.why, self.retry_after, self.link = why, retry_after, link
        self.waiting = waiting  # the request was sent and the answer did not come


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


def key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return str(obj["id"]), version(obj)


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
    """An async context manager: `async with HubClient(url, user, password) as hub: ...`.

    `stall`: seconds without a byte moving before a request is dropped and sent again;
    `cache`: a file that keeps discovery between runs (with its ETags); `link`: the link
    state to share (rate measured by an earlier run, --max-rate)."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        backoff: Backoff | None = None,
        stall: float = 15.0,
        compress: bool = True,
        max_objects: int = 1000,
        cache: Path | None = None,
        link: Link | None = None,
    ) -> None:
        self.discovery = discovery_url(url)
        parts = urllib.parse.urlsplit(self.discovery)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.username = username
        # A bearer token is `<username>.<secret>`: the same secret, sent as Basic.
        self._password = password.removeprefix(f"{username}.")
        self.backoff = backoff or Backoff()
        self.stall = stall
        self._compress = compress
        self.max_objects = max_objects
        self.link = link or Link()
        self._cache = DiscoveryCache(cache, f"{self.discovery} {username}")
        self._session: aiohttp.ClientSession | None = None
        self._api_root: str | None = None
        self._root_info: dict[str, Any] = {}
        self._collections: dict[str, dict[str, Any]] = {}
        # Wire bytes per uncompressed byte of the last request body (its coding's ratio).
        self.ratio = 0.3
        # What the hub said it decodes in request bodies (Accept-Encoding in its answers).
        self.hub_decodes: frozenset[str] = frozenset()

    async def __aenter__(self) -> HubClient:
        self._session = aiohttp.ClientSession(
            # No total: a request lives as long as bytes keep moving (the watchdog in _once).
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.stall),
            headers={
                "Accept": TAXII,
                "Accept-Encoding": ACCEPT_ENCODING,
                "Authorization": Credentials(self.username, self._password).header(),
            },
            auto_decompress=False,  # decoded in _once (connectors.client.codings)
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._cache.save()

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
        expect: int = 200,
        headers: Mapping[str, str] | None = None,
        wait: float = 0.0,
    ) -> tuple[Any, Mapping[str, str]]:
        """The JSON answer and headers of one request, retried while the link or hub is down
        (`wait`: seconds the hub may take to answer on purpose, a long poll). A 304 answers
        None."""
        sent_headers = dict(headers or {})
        plain, coding = body, "identity"
        if plain is not None:
            sent_headers["Content-Type"] = TAXII
            if self._compress:
                coding = body_coding(len(plain), self.hub_decodes)
            body = self._encoded(plain, coding, sent_headers)
        attempts = self.backoff.start()
        patience = 1.0
        while True:
            try:
                status, raw, answer_headers = await self._once(
                    method, url, body, params, sent_headers, wait + self.stall * patience
                )
            except _Failed as failed:
                if failed.waiting:
                    # Perhaps the hub is slow rather than the link dead: wait longer next time.
                    patience = min(patience * 2, 8.0)
                await attempts.wait(
                    failed.why,
                    failed.retry_after,
                    probe=self._probe if failed.link else None,
                    tell=self._told,
                )
                continue
            if status in (expect, 304):
                return (orjson.loads(raw) if raw else None), answer_headers
            if status == 415 and coding == "zstd" and plain is not None:
                # A hub (or one of its nodes) that does not decode zstd after all: gzip.
                self.hub_decodes -= {"zstd"}
                coding = "gzip"
                body = self._encoded(plain, coding, sent_headers)
                continue
            error = _error(raw)
            raise Refused(
                status,
                url,
                error.get("title", ""),
                error.get("description", ""),
            )

    def _encoded(self, plain: bytes, coding: str, headers: dict[str, str]) -> bytes:
        """`plain` in `coding`, its Content-Encoding set in `headers`."""
        body = encode(plain, coding)
        if coding != "identity":
            headers["Content-Encoding"] = coding
            self.ratio = len(body) / len(plain)
        return body

    def learn(self, accept_encoding: str | None) -> None:
        """Keep what an answer's Accept-Encoding says the hub decodes (absent: no change)."""
        if accept_encoding is not None:
            self.hub_decodes = hub_decodes(accept_encoding)

    def _told(self, why: str, delay: float) -> None:
        self.link.failed(why, time.time() + delay)

    async def _once(
        self,
        method: str,
        url: str,
        body: bytes | None,
        params: Mapping[str, str] | None,
        headers: dict[str, str],
        answer_within: float,
    ) -> tuple[int, bytes, Mapping[str, str]]:
        """One attempt: (status, body, headers) of an answer that is not to be retried."""
        assert self._session is not None, "use HubClient as an async context manager"
        loop = asyncio.get_running_loop()
        doing = say("connecting")
        waiting = False  # the request is sent, the answer has not begun
        quiet = self.stall  # seconds without a byte allowed at this point
        received = b""
        sent = 0

        def progress(now_doing: str, allowed: float, *, now_waiting: bool = False) -> None:
            nonlocal doing, quiet, waiting
            doing, quiet, waiting = now_doing, allowed, now_waiting
            guard.reschedule(loop.time() + allowed)

        async def pieces(data: bytes) -> AsyncIterator[bytes]:
            nonlocal doing, sent
            for at in range(0, len(data), _PIECE):
                piece = data[at : at + _PIECE]
                await self.link.pace(len(piece))
                doing = say(
                    "sending the request (%(sent)s of %(total)s bytes sent)",
                    sent=number(sent),
                    total=number(len(data)),
                )
                yield piece
                sent += len(piece)
                self.link.moved(sent=len(piece))
                progress(doing, self.stall)
            progress(
                say("waiting for the hub to answer (%(sent)s bytes sent)", sent=number(len(data))),
                answer_within,
                now_waiting=True,
            )

        try:
            async with asyncio.timeout(None) as guard:
                kwargs: dict[str, Any] = {"params": params, "headers": headers}
                if body is None:
                    progress(say("waiting for the hub to answer"), answer_within, now_waiting=True)
                else:
                    kwargs["data"] = pieces(body)
                    kwargs["headers"] = {**headers, "Content-Length": str(len(body))}
                    progress(say("connecting"), self.stall)
                started = time.monotonic()
                async with self._session.request(method, url, **kwargs) as response:
                    if body is not None:
                        self.link.measure(len(body), time.monotonic() - started)
                    progress(say("receiving the answer"), self.stall)
                    first = time.monotonic()
                    wire = 0
                    answer = Answer(response.headers.get("Content-Encoding"))
                    async for piece in response.content.iter_chunked(_PIECE):
                        answer.feed(piece)
                        now_wire = response.content.total_raw_bytes
                        self.link.moved(received=now_wire - wire)
                        await self.link.pace(now_wire - wire)
                        wire = now_wire
                        progress(
                            say(
                                "receiving the answer (%(received)s bytes received)",
                                received=number(wire),
                            ),
                            self.stall,
                        )
                    received = answer.finish()
                    self.link.measure(wire, time.monotonic() - first)
                    status, answer_headers = response.status, response.headers
                    self.learn(answer_headers.get("Accept-Encoding"))
        except TimeoutError:
            why = say(
                "%(url)s: no byte moved for %(seconds)s s while %(doing)s",
                url=url,
                seconds=f"{quiet:g}",
                doing=doing,
            )
            raise _Failed(why, link=True, waiting=waiting) from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            why = say(
                "%(url)s: %(error)s while %(doing)s",
                url=url,
                error=_connection_error(exc),
                doing=doing,
            )
            raise _Failed(why, link=True) from exc
        except DecodingError as exc:
            why = say("%(url)s: an answer that does not decode: %(error)s", url=url, error=exc)
            raise _Failed(why, link=False) from exc
        self.link.up()
        if status in RETRIABLE_STATUS:
            error = _error(received)
            why = say(
                "%(url)s: the hub answered HTTP %(status)s %(description)s",
                url=url,
                status=status,
                description=error.get("description", ""),
            )
            raise _Failed(why.strip(), retry_after(answer_headers.get("Retry-After")), link=False)
        if 200 <= status < 300 and status != 204:
            try:
                orjson.loads(received)
            except orjson.JSONDecodeError as exc:
                why = say("%(url)s: an answer that is not JSON: %(error)s", url=url, error=exc)
                raise _Failed(why, link=False) from exc
        return status, received, answer_headers

    async def _probe(self) -> bool:
        """Is the link up? A HEAD of discovery: a few hundred bytes, any answer will do."""
        assert self._session is not None
        try:
            async with self._session.head(
                self.discovery, timeout=aiohttp.ClientTimeout(total=_PROBE_TIMEOUT)
            ) as response:
                await response.read()
                self.learn(response.headers.get("Accept-Encoding"))
        except (aiohttp.ClientError, TimeoutError):
            return False
        self.link.up()
        return True

    async def _get_cached(self, url: str) -> dict[str, Any]:
        """GET of a discovery resource: the cached copy while fresh, else revalidated."""
        cached = self._cache.fresh(url)
        if cached is not None:
            self.learn(self._cache.accept_encoding(url))
            return cached
        etag = self._cache.etag(url)
        headers = {"If-None-Match": etag} if etag else {}
        found, answer = await self.request("GET", url, headers=headers)
        return self._cache.store(url, found, answer)

    async def api_root(self) -> str:
        """The URL of the hub's (default) API root, found by discovery."""
        if self._api_root is None:
            found = await self._get_cached(self.discovery)
            root = found.get("default") or (found.get("api_roots") or [None])[0]
            if not root:
                raise Refused(200, self.discovery, "No API root", "discovery names none")
            self._api_root = urllib.parse.urljoin(self.discovery, root)
            self._root_info = await self._get_cached(self._api_root)
        return self._api_root

    async def max_content_length(self) -> int:
        await self.api_root()
        return int(self._root_info.get("max_content_length", 10 * 1024 * 1024))

    async def collection(self, name: str) -> dict[str, Any]:
        """A collection this account can see, by alias, id or title."""
        if name not in self._collections:
            root = await self.api_root()
            listing = await self._get_cached(f"{root}collections/")
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
                    say("Unknown collection"),
                    say(
                        "'%(name)s'; this account sees %(known)s",
                        name=name,
                        known=", ".join(known) or say("none"),
                    ),
                )
        return self._collections[name]

    async def collection_url(self, name: str) -> str:
        return f"{await self.api_root()}collections/{(await self.collection(name))['id']}/"

    async def _in_collection(
        self, name: str, call: Callable[[str], Awaitable[tuple[Any, Mapping[str, str]]]]
    ) -> tuple[Any, Mapping[str, str]]:
        """`call` with the collection's URL; once more after a fresh discovery if a cached
        one led to a 404 (the hub's collections changed since it was cached)."""
        try:
            return await call(await self.collection_url(name))
        except Refused as exc:
            if exc.status != 404 or not self._cache.forget():
                raise
        self._api_root, self._root_info, self._collections = None, {}, {}
        return await call(await self.collection_url(name))

    async def post(self, objects: list[dict[str, Any]]) -> dict[str, Any]:
        """POST one envelope to the inbox; the hub's 202 status resource (it is durable)."""
        data = envelope(objects)
        status: dict[str, Any]
        status, _ = await self._in_collection(
            "inbox",
            lambda url: self.request("POST", f"{url}objects/", body=data, expect=202),
        )
        return status

    async def status(
        self, status_id: str, *, wait: int = 0, failures_only: bool = False
    ) -> dict[str, Any]:
        """The status resource; `wait`: let the hub answer once it is complete (or after
        that many seconds); `failures_only`: without the lists of successes and pendings."""
        params = {}
        if wait:
            params["wait"] = str(wait)
        if failures_only:
            params["detail"] = "failures"
        found: dict[str, Any]
        found, _ = await self.request(
            "GET", f"{await self.api_root()}status/{status_id}/", params=params, wait=wait
        )
        return found

    async def wait(self, status_id: str, *, failures_only: bool = False) -> dict[str, Any]:
        """The status resource once it is complete: long polls (one answer per request
        whatever the link's latency), and polls ever less often from a hub that answers a
        long poll at once (one that does not know `wait`)."""
        pause = 0.05
        while True:
            started = time.monotonic()
            found = await self.status(status_id, wait=STATUS_WAIT, failures_only=failures_only)
            if found.get("status") == "complete":
                return found
            if time.monotonic() - started < STATUS_WAIT / 2:
                await asyncio.sleep(pause)
                pause = min(pause * 1.5, 2.0)

    async def requests_for(self, objects: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """`objects` cut into requests that fit the hub's max_content_length and take about
        link.TARGET_SECONDS each at the rate measured so far."""
        return list(chunks(objects, await self.request_bytes(), self.max_objects))

    async def request_bytes(self) -> int:
        """The JSON bytes one request should hold: within the hub's limit (with room for
        what the JSON of a split might add) and, on a measured link, a few seconds' worth."""
        limit = int(await self.max_content_length() * 0.95)
        if self.link.rate is None:
            return min(limit, FIRST_REQUEST)
        return self.link.units(1 / self.ratio, least=32 * 1024, most=limit)

    async def submit(
        self,
        objects: list[dict[str, Any]],
        report: Callable[[list[Outcome]], None] = lambda _: None,
    ) -> SubmitResult:
        """Send `objects` (split as the hub and the link require) and wait for every
        object's outcome; `report` hears the outcomes of each request as they come."""
        result = SubmitResult()
        left = objects
        while left:
            batch = next(chunks(left, await self.request_bytes(), self.max_objects))
            left = left[len(batch) :]
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
        result.outcomes.extend(await self.outcomes_of(status["id"], [key(o) for o in batch]))

    async def outcomes_of(self, status_id: str, keys: list[tuple[str, str]]) -> list[Outcome]:
        """The outcome of each (id, version) sent in one request, once the hub has them all:
        the failures alone when they account for every object, the whole status otherwise."""
        status = await self.wait(status_id, failures_only=True)
        if not complete_for(keys, status):
            status = await self.wait(status_id)
        return sent_outcomes(keys, status)

    async def objects(
        self, collection: str, params: Mapping[str, str]
    ) -> tuple[dict[str, Any], Mapping[str, str]]:
        """One Get Objects page of `collection` (an envelope) and its headers."""
        return await self._in_collection(
            collection, lambda url: self.request("GET", f"{url}objects/", params=params)
        )

    async def respond(
        self, alert_id: str, state: str, note: str | None, named: bool
    ) -> dict[str, Any]:
        """Record the member's state on one of its alerts; the hub's 202 TAXII status. Sent
        again after a dropped link, it is harmless: a member counts once, with its latest state."""
        body = orjson.dumps({"state": state, "note": note, "named": named})
        url = f"{self.origin}/api/v1/alerts/{urllib.parse.quote(alert_id, safe='')}/responses"
        status: dict[str, Any]
        status, _ = await self.request("POST", url, body=body, expect=202)
        return status

    async def lookup(self, value: str, kind: str | None, limit: int) -> dict[str, Any]:
        """What this account may read that mentions `value` (`GET /api/v1/lookup`)."""
        params = {"value": value, "limit": str(limit), **({"kind": kind} if kind else {})}
        found: dict[str, Any]
        found, _ = await self.request("GET", f"{self.origin}/api/v1/lookup", params=params)
        return found

    async def mitigate(
        self,
        alert_id: str,
        name: str,
        description: str | None,
        tlp: str,
        targets: list[str] | None,
    ) -> dict[str, Any]:
        """Share a mitigation of one of the member's alerts; the hub's 202 TAXII status."""
        fields: dict[str, Any] = {"name": name, "description": description, "tlp": tlp}
        if targets:
            fields["targets"] = targets
        url = f"{self.origin}/api/v1/alerts/{urllib.parse.quote(alert_id, safe='')}/mitigations"
        status: dict[str, Any]
        status, _ = await self.request("POST", url, body=orjson.dumps(fields), expect=202)
        return status

    async def jwks(self) -> dict[str, Any]:
        """The hub's public signing keys (current and retired)."""
        found: dict[str, Any]
        found, _ = await self.request("GET", f"{self.origin}/.well-known/jwks.json")
        return found


def sent_outcomes(keys: list[tuple[str, str]], status: Mapping[str, Any]) -> list[Outcome]:
    """The outcome of each sent (id, version) from a complete status, which may list only
    its failures (then what it does not list was accepted). An object without
    modified/created (an SCO) is matched by id: the hub names its version by arrival time."""
    listed = outcomes(status)
    whole = "successes" in status
    by_key = {(o.id, o.version): o for o in listed}
    by_id = {o.id: o for o in listed}
    found = []
    for i, v in keys:
        hub_said = by_key.get((i, v)) or (by_id.get(i) if whole or not v else None)
        if hub_said is not None:
            found.append(Outcome(i, v, hub_said.ok, hub_said.message))
        else:
            found.append(Outcome(i, v, not whole, "missing from the hub's status" * whole))
    return found


def complete_for(keys: list[tuple[str, str]], status: Mapping[str, Any]) -> bool:
    """Whether a failures-only status accounts for exactly `keys` (else ask for the lists)."""
    if int(status.get("total_count", -1)) != len(keys):
        return False
    exact, scos = set(keys), {i for i, v in keys if not v}
    failed = [o for o in outcomes(status) if not o.ok]
    return len(failed) == int(status.get("failure_count", -1)) and all(
        (o.id, o.version) in exact or o.id in scos for o in failed
    )


def _connection_error(exc: Exception) -> str:
    """What a connection failure means, in words (aiohttp's own text names classes)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return say(
            "cannot connect to %(host)s:%(port)s (%(reason)s)",
            host=exc.host,
            port=exc.port,
            reason=exc.os_error.strerror or exc,
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return say("the hub closed the connection")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return say("the answer was cut off (%(error)s)", error=exc)
    return say("the connection failed (%(kind)s: %(error)s)", kind=type(exc).__name__, error=exc)


def _error(raw: bytes) -> dict[str, Any]:
    try:
        found = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"description": raw[:200].decode("utf-8", "replace")}
    return found if isinstance(found, dict) else {}


__all__ = ["HubClient", "Outcome", "Refused", "SubmitResult", "outcomes", "version"]
