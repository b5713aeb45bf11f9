"""Where MISP events come from: JSON files (as MISP exports them) and a MISP's REST API.

A file holds one event (`{"Event": {...}}`), a list of them, or what MISP's restSearch
answers (`{"response": [...]}`). Every error names the file and JSON path, or the URL and
HTTP status.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

# restSearch pages: a large MISP holds more events than one answer should carry.
PAGE_SIZE = 50


class MispSourceError(Exception):
    """A file or a MISP answer that holds no usable events; the message says where."""


@dataclass(frozen=True)
class MispEvent:
    """One MISP event as found, and where: 'events.json: response[2]' or a URL."""

    origin: str
    data: dict[str, Any]

    @property
    def uuid(self) -> str:
        return str(self.data.get("uuid", ""))


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _event(item: Any, name: str, path: str) -> MispEvent:
    """The event in `item`, found in `name` at JSON path `path`."""
    if isinstance(item, Mapping) and "Event" in item:
        inner, path = item["Event"], _at(path, "Event")
    elif isinstance(item, Mapping) and "info" in item and "uuid" in item:
        inner = item  # a bare event, as some tools write it
    elif isinstance(item, Mapping) and ("Attribute" in item or "Object" in item):
        raise MispSourceError(
            f"{name}: {path or '(top)'}: MISP attributes or objects without their event are "
            "not imported; export whole events (restSearch on /events)"
        )
    else:
        raise MispSourceError(
            f'{name}: {path or "(top)"}: not a MISP event (expected {{"Event": {{...}}}})'
        )
    if not isinstance(inner, dict):
        raise MispSourceError(f"{name}: {path}: not a JSON object")
    if not isinstance(inner.get("uuid"), str) or not inner["uuid"]:
        raise MispSourceError(f"{name}: {_at(path, 'uuid')}: missing (every MISP event has one)")
    return MispEvent(f"{name}: {path}" if path else name, inner)


def events_in(document: Any, name: str) -> list[MispEvent]:
    """The events of one JSON document; `name` (a file or URL) starts every origin."""
    if isinstance(document, Mapping) and "response" in document:
        items, path = document["response"], "response"
    elif isinstance(document, list):
        items, path = document, ""
    else:
        return [_event(document, name, "")]
    if not isinstance(items, list):
        return [_event(items, name, path)]
    return [_event(item, name, f"{path}[{index}]") for index, item in enumerate(items)]


def read_file(path: Path) -> list[MispEvent]:
    """The events in a MISP JSON file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MispSourceError(f"{path}: cannot read it: {exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MispSourceError(
            f"{path}: not JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from exc
    return events_in(document, str(path))


def files(sources: list[str]) -> Iterator[Path]:
    """The files behind SOURCE arguments: files as given, folders' *.json in name order."""
    for source in sources:
        path = Path(source)
        if path.is_dir():
            yield from sorted(p for p in path.glob("*.json") if p.is_file())
        elif path.exists():
            yield path
        else:
            raise MispSourceError(f"{path}: no such file or folder")


class MispApi:
    """A MISP instance's REST API, as one user's automation key: `async with MispApi(...)`."""

    def __init__(self, url: str, key: str, *, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self._key = key
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> MispApi:
        self._session = aiohttp.ClientSession(
            headers={
                "Authorization": self._key,
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            timeout=aiohttp.ClientTimeout(total=self._timeout),
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _json(self, method: str, url: str, body: Mapping[str, Any] | None = None) -> Any:
        assert self._session is not None, "use MispApi as an async context manager"
        try:
            async with self._session.request(method, url, json=body) as response:
                raw = await response.read()
                if response.status != 200:
                    raise MispSourceError(
                        f"MISP {url}: HTTP {response.status} {response.reason or ''}"
                        f"{_misp_message(raw)}".rstrip()
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise MispSourceError(f"MISP {url}: {type(exc).__name__}: {exc}") from exc
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MispSourceError(f"MISP {url}: the answer is not JSON: {exc}") from exc

    async def event(self, event_id: str) -> MispEvent:
        """One event by id or uuid: `GET /events/view/{id}`."""
        url = f"{self.url}/events/view/{event_id}"
        found = events_in(await self._json("GET", url), url)
        if len(found) != 1:
            raise MispSourceError(f"MISP {url}: expected one event, got {len(found)}")
        return found[0]

    async def search(self, filters: Mapping[str, Any]) -> list[MispEvent]:
        """Every event restSearch finds for `filters` (e.g. {"last": "1d"}), page by page."""
        url = f"{self.url}/events/restSearch"
        events: list[MispEvent] = []
        page = 1
        while True:
            body = {**filters, "returnFormat": "json", "limit": PAGE_SIZE, "page": page}
            found = events_in(await self._json("POST", url, body), f"{url} (page {page})")
            events.extend(found)
            if len(found) < PAGE_SIZE:
                return events
            page += 1


def _misp_message(raw: bytes) -> str:
    """MISP's own words from an error answer (`message`, or `name`), when it gave any."""
    try:
        error = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ""
    if isinstance(error, Mapping):
        words = error.get("message") or error.get("name") or error.get("errors")
        if words:
            return f": {words}"
    return ""
