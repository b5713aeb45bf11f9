"""Pull a feed into a folder of bundle files, every object's hub signature checked, and
remember where it stopped (connectors.client.feed) so the next pull fetches only what is new.

Pages are sized to the link: the first holds FIRST_PAGE objects (or what the last run
measured), the next ones about link.TARGET_SECONDS of transfer at the rate and the bytes
per object measured so far, up to `page_size`. A page is the unit that is fetched again
when a transfer is cut off or the client is killed, so on a slow link that costs seconds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from connectors.client.bundles import bundle
from connectors.client.feed import FeedState, new_pages
from connectors.client.files import write_atomically
from connectors.client.http import HubClient
from connectors.client.hubkeys import HubKeys
from hub.i18n.cli import say
from hub.signing.verify import Verdict

STATE_FILE = ".cirt-hub-pull.json"
DISCOVERY_FILE = ".cirt-hub-discovery.json"
# Objects on a first page, before the link is measured: seconds at 64 kbit/s.
FIRST_PAGE = 50


@dataclass
class PullReport:
    objects: int = 0
    written: int = 0
    invalid: list[Verdict] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    pages: int = 0


async def pull(
    client: HubClient,
    collection: str,
    out: Path,
    *,
    since: str | None = None,
    page_size: int = 1000,
    progress: Callable[[PullReport], None] = lambda _: None,
) -> PullReport:
    """Fetch `collection` from where the last pull into `out` stopped (or from `since`)."""
    os.makedirs(out, exist_ok=True)
    state_file = out / STATE_FILE
    state = FeedState.load(state_file)
    if state.collection and state.collection != collection:
        raise ValueError(
            say(
                "%(folder)s holds a pull of '%(held)s'; pull '%(asked)s' into another folder",
                folder=out,
                held=state.collection,
                asked=collection,
            )
        )
    state.collection = collection
    verifier = HubKeys(client.jwks)
    report = PullReport()
    link = client.link
    if link.rate is None:
        link.rate = state.rate

    def next_size() -> int:
        if state.object_bytes is None:
            return min(page_size, FIRST_PAGE)
        return link.units(state.object_bytes, least=min(page_size, 10), most=page_size)

    async def fetch(params: dict[str, str]) -> tuple[dict[str, Any], Mapping[str, str]]:
        before = link.received
        envelope, headers = await client.objects(collection, params)
        count = len((envelope or {}).get("objects", []))
        if count >= 10:
            per_object = (link.received - before) / count
            old = state.object_bytes
            state.object_bytes = per_object if old is None else (old + per_object) / 2
        state.rate = link.rate
        return envelope, headers

    async for fresh in new_pages(fetch, state, state_file, since=since, page_size=next_size):
        report.pages += 1
        report.objects += len(fresh)
        valid = []
        for obj in fresh:
            verdict = await verifier.verify(obj)
            if verdict.valid:
                valid.append(obj)
            else:
                report.invalid.append(verdict)
        if valid:
            state.files += 1
            path = out / f"{_safe(collection)}-{state.files:06d}.json"
            write_atomically(path, orjson.dumps(bundle(valid), option=orjson.OPT_INDENT_2))
            report.files.append(path)
            report.written += len(valid)
        progress(report)
    return report


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
