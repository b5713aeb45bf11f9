"""What the TAXII benchmarks share: OASIS medallion as a subprocess, and taxii2-client's add
(POST in chunks, each waited on) and paged walk, timed, with progress on stderr."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
from taxii2client.v21 import Collection, Server, as_pages

from tests.conftest import free_port
from tests.processes import stop

POLL = 0.05  # seconds between status polls while adding (taxii2-client's wait loop)
STATUS_TIMEOUT = 600  # seconds a chunk may take to reach "complete"
HEARTBEAT = 10.0  # seconds between "still working" lines during a long request
MEDALLION_ROOT = "bench"
MEDALLION_USER, MEDALLION_PASSWORD = "bench", "bench-only-password"
# medallion caps pages at 100 objects unless configured: 1000 lets the client's per_request
# set the page size (the size it really served is recorded all the same).
MEDALLION_MAX_PAGE_SIZE = 1000
# medallion forgets a `next` session 30 s (its default) after the first page, however recent
# the last page: a slower walk fails with a 400. At 10,000 objects a walk takes minutes.
MEDALLION_SESSION_TIMEOUT = 3600
RETRY_STATUSES = frozenset({429, 503})  # the hub's rate limit and intake backpressure
MAX_RETRIES = 50


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Heartbeat:
    """Prints `status()` to stderr every `every` seconds while the block runs, so a request
    that takes minutes (medallion's first page) does not look hung."""

    def __init__(self, status: Callable[[], str], every: float = HEARTBEAT) -> None:
        self._status = status
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def _beat(self) -> None:
        started = time.monotonic()
        # Every `every` seconds for the first minute, then a third as often: a 15-minute
        # request should not fill the screen.
        while not self._stop.wait(self._every * (1 if time.monotonic() - started < 60 else 3)):
            progress(self._status())

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class Added:
    """How an add went: seconds from the first POST until the last chunk was complete."""

    seconds: float
    requests: int
    succeeded: int
    failed: int
    retries: int  # POSTs answered 429/503 and sent again after Retry-After
    failures: tuple[str, ...] = ()  # the first few, "id: message"
    failed_ids: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Walk:
    """One full `as_pages` walk of a collection."""

    seconds: float
    first_page_seconds: float
    pages: int
    largest_page: int  # what the server really served per page (it may cap `per_request`)
    ids: tuple[str, ...]


def _post(collection: Collection, chunk: list[dict[str, Any]]) -> tuple[Any, int]:
    """Add one chunk, waited on until complete; sent again while the server says 429/503."""
    for retries in range(MAX_RETRIES + 1):
        try:
            status = collection.add_objects(
                {"objects": chunk}, poll_interval=POLL, timeout=STATUS_TIMEOUT
            )
            return status, retries
        except requests.HTTPError as exc:
            answer = exc.response
            if answer is None or answer.status_code not in RETRY_STATUSES or retries == MAX_RETRIES:
                raise
            time.sleep(min(float(answer.headers.get("Retry-After", "1")), 30.0))
    raise AssertionError("unreachable")


def add_all(name: str, collection: Collection, objects: list[dict[str, Any]], chunk: int) -> Added:
    """POST `objects` in chunks of `chunk`, each waited on until its status is complete."""
    succeeded = failed = retries = requests_made = 0
    failures: list[str] = []
    failed_ids: set[str] = set()
    started = time.perf_counter()

    def status() -> str:
        done = succeeded + failed
        return f"{name}: add: {done:,}/{len(objects):,} objects, {_since(started):.0f} s"

    with Heartbeat(status):
        for start in range(0, len(objects), chunk):
            answer, again = _post(collection, objects[start : start + chunk])
            requests_made += 1 + again
            retries += again
            if answer.status != "complete":
                raise RuntimeError(
                    f"{name}: the chunk at object {start} was not complete after "
                    f"{STATUS_TIMEOUT} s: {answer.status}, {answer.success_count} succeeded"
                )
            succeeded += answer.success_count
            failed += answer.failure_count
            for failure in answer.failures or []:
                failed_ids.add(failure.get("id", ""))
                if len(failures) < 5:
                    failures.append(f"{failure.get('id')}: {failure.get('message')}")
    seconds = _since(started)
    progress(f"{name}: add: {succeeded:,} added, {failed:,} refused, in {seconds:.3f} s")
    return Added(
        seconds, requests_made, succeeded, failed, retries, tuple(failures), frozenset(failed_ids)
    )


def walk(name: str, collection: Collection, per_request: int) -> Walk:
    """Walk the whole collection with `as_pages(get_objects, per_request)`, timed."""
    ids: list[str] = []
    pages = largest = 0
    first: float | None = None
    started = time.perf_counter()

    def status() -> str:
        waiting = "the first page" if first is None else f"page {pages + 1}"
        return (
            f"{name}: get: {pages} pages, {len(ids):,} objects, {_since(started):.0f} s "
            f"(waiting for {waiting})"
        )

    with Heartbeat(status):
        for page in as_pages(collection.get_objects, per_request=per_request):
            if first is None:
                first = _since(started)
            objects = page.get("objects", [])
            ids += [o["id"] for o in objects]
            pages += 1
            largest = max(largest, len(objects))
    seconds = _since(started)
    assert first is not None  # as_pages always makes the first request
    progress(
        f"{name}: get: {len(ids):,} objects in {pages} pages of up to {largest}, "
        f"{seconds:.3f} s (first page after {first:.3f} s)"
    )
    return Walk(seconds, first, pages, largest, tuple(ids))


@dataclass(frozen=True)
class IdCheck:
    """What a walk returned against the ids it should have: each once, nothing else."""

    expected: int
    got: int  # objects returned, duplicates included
    distinct: int
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.got == self.distinct and not self.missing and not self.unexpected

    def __str__(self) -> str:
        return (
            f"{self.got} objects, {self.distinct} distinct ids of {self.expected} expected, "
            f"{len(self.missing)} missing (e.g. {list(self.missing[:2])}), "
            f"{len(self.unexpected)} unexpected (e.g. {list(self.unexpected[:2])})"
        )


def check_ids(expected: Iterable[str], ids: Sequence[str]) -> IdCheck:
    want, got = set(expected), set(ids)
    return IdCheck(
        len(want), len(ids), len(got), tuple(sorted(want - got)), tuple(sorted(got - want))
    )


def _since(started: float) -> float:
    return time.perf_counter() - started


def find_collection(base_url: str, alias: str, user: str, password: str) -> Collection:
    """The collection called `alias` (or with that id), as a client finds it by discovery:
    its URL holds the collection's id, not its alias."""
    server = Server(f"{base_url.rstrip('/')}/taxii2/", user=user, password=password)
    seen: list[str] = []
    for root in server.api_roots:
        for collection in root.collections:
            if alias in (collection.alias, collection.id):
                return collection
            seen.append(collection.alias or collection.id)
    raise LookupError(f"{user} sees no collection {alias!r} at {base_url} (it sees {seen})")


@dataclass(frozen=True)
class MedallionCollection:
    """One collection of medallion's memory backend, with the objects it starts with."""

    id: str
    title: str
    objects: Sequence[dict[str, Any]] = ()


@dataclass(frozen=True)
class Medallion:
    """A running medallion: where it is and how it was configured."""

    base_url: str
    max_page_size: int
    session_timeout: float

    def collection(self, id_: str) -> Collection:
        url = f"{self.base_url}/{MEDALLION_ROOT}/collections/{id_}/"
        return Collection(url, user=MEDALLION_USER, password=MEDALLION_PASSWORD)


def medallion_data(collections: Sequence[MedallionCollection], base_url: str) -> dict[str, Any]:
    """medallion's memory-backend data file (the layout of its default_data.json): each
    collection with its objects and their manifest, readable and writable."""
    added = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def entry(collection: MedallionCollection) -> dict[str, Any]:
        manifest = [
            {
                "id": obj["id"],
                # distinct, increasing: medallion pages in date_added order
                "date_added": (added + dt.timedelta(microseconds=i)).strftime(
                    "%Y-%m-%dT%H:%M:%S.%fZ"
                ),
                "version": obj.get("modified", obj.get("created")),
                "media_type": "application/stix+json;version=2.1",
            }
            for i, obj in enumerate(collection.objects)
        ]
        return {
            "id": collection.id,
            "title": collection.title,
            "can_read": True,
            "can_write": True,
            "media_types": ["application/stix+json;version=2.1"],
            "objects": list(collection.objects),
            "manifest": manifest,
        }

    return {
        "/discovery": {
            "title": "medallion (cirt-hub benchmark)",
            "default": f"{base_url}/{MEDALLION_ROOT}/",
            "api_roots": [f"{base_url}/{MEDALLION_ROOT}/"],
        },
        MEDALLION_ROOT: {
            "information": {
                "title": "benchmark",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 100 * 1024 * 1024,
            },
            "status": [],
            "collections": [entry(c) for c in collections],
        },
    }


@contextmanager
def medallion_server(
    collections: Sequence[MedallionCollection],
    work: Path,
    *,
    max_page_size: int = MEDALLION_MAX_PAGE_SIZE,
    session_timeout: float = MEDALLION_SESSION_TIMEOUT,
) -> Iterator[Medallion]:
    """OASIS medallion (memory backend, Flask's threaded server, which is how medallion runs)
    on 127.0.0.1:<free port> as a subprocess, holding `collections`."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    data_file, config_file = work / "medallion-data.json", work / "medallion-config.json"
    data_file.write_text(json.dumps(medallion_data(collections, base_url)))
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(data_file),
            "session_timeout": session_timeout,
        },
        "users": {MEDALLION_USER: MEDALLION_PASSWORD},
        "taxii": {"max_page_size": max_page_size},
    }
    config_file.write_text(json.dumps(config))
    log_path = work / "medallion.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "medallion.scripts.run", "--port", str(port), config_file],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(f"{base_url}/taxii2/", proc, log_path)
        yield Medallion(base_url, max_page_size, session_timeout)
    finally:
        stop(proc)


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    auth = "Basic " + b64encode(f"{MEDALLION_USER}:{MEDALLION_PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        url, headers={"Accept": "application/taxii+json;version=2.1", "Authorization": auth}
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"medallion exited ({proc.returncode}):\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"medallion did not answer at {url} within 60 s:\n{log_path.read_text()}")
