"""Where `cirt-hub verify` reads from: a file, a TAXII objects page, or a whole collection.

Files need no network at all; URLs are fetched with the standard library, following a
collection's pages (`next`) to the end.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

TAXII_ACCEPT = "application/taxii+json;version=2.1"


class SourceError(Exception):
    """A source that cannot be read; the message names it."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def fetch_json(url: str, credentials: Credentials | None = None, accept: str = "*/*") -> Any:
    headers = {"Accept": accept}
    if credentials is not None:
        headers["Authorization"] = credentials.header()
    try:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=60) as response:
            return orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise SourceError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SourceError(f"{url}: {exc}") from exc


def read_json(source: str, credentials: Credentials | None = None) -> Any:
    """JSON from a file path or a URL."""
    if is_url(source):
        return fetch_json(source, credentials)
    try:
        return orjson.loads(Path(source).read_bytes())
    except OSError as exc:
        raise SourceError(f"{source}: cannot read: {exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise SourceError(f"{source}: not JSON: {exc}") from exc


def _objects(doc: Any, source: str) -> list[Any]:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict) and isinstance(doc.get("objects"), list):
        objects: list[Any] = doc["objects"]  # a STIX bundle or a TAXII envelope
        return objects
    if isinstance(doc, dict) and doc.get("more") is False:
        return []  # a TAXII envelope with nothing in it
    if isinstance(doc, dict) and "type" in doc and "id" in doc:
        return [doc]
    raise SourceError(f"{source}: neither a bundle, a TAXII envelope, nor a STIX object")


def _with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update(params)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def pages(
    source: str, credentials: Credentials | None = None, page_size: int = 1000
) -> Iterator[list[Any]]:
    """The objects of `source`, a page at a time (a file is one page).

    A URL answering with an envelope is one objects page; a URL answering with a TAXII
    collection resource is read whole, page after page.
    """
    if not is_url(source):
        yield _objects(read_json(source), source)
        return
    doc = fetch_json(source, credentials, TAXII_ACCEPT)
    if not (isinstance(doc, dict) and "can_read" in doc and "id" in doc):
        yield _objects(doc, source)
        return
    objects_url = urllib.parse.urljoin(source if source.endswith("/") else source + "/", "objects/")
    params = {"limit": str(page_size)}
    while True:
        envelope = fetch_json(_with_query(objects_url, **params), credentials, TAXII_ACCEPT)
        yield _objects(envelope, objects_url)
        if not (isinstance(envelope, dict) and envelope.get("more") and envelope.get("next")):
            return
        params["next"] = str(envelope["next"])
