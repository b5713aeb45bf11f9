"""One federation run: the new objects of a peer's collections, checked and submitted here."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.client.feed import FeedState, Fetch, new_pages
from connectors.client.http import HubClient, Outcome
from connectors.federation.peer import PeerHub
from connectors.federation.relay import relayed, signed_by
from hub.signing.verify import Verdict, Verifier, hub_keys
from hub.stix.predefined import is_predefined


@dataclass
class FederationReport:
    """What one run did with what it read at the peer."""

    read: int = 0
    came_back: int = 0  # originated at this hub (its own signature on them): not re-imported
    invalid: list[Verdict] = field(default_factory=list)  # the peer's signature does not hold
    outcomes: list[Outcome] = field(default_factory=list)  # what this hub made of the rest

    @property
    def accepted(self) -> int:
        return sum(o.ok for o in self.outcomes)

    @property
    def refused(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]


async def federate(
    peer: PeerHub,
    local: HubClient,
    collections: list[str],
    state_dir: Path,
    *,
    page_size: int = 1000,
    progress: Callable[[str, FederationReport], None] = lambda *_: None,
) -> FederationReport:
    """Bring the peer's `collections` up to date here; resumes where the last run stopped."""
    os.makedirs(state_dir, exist_ok=True)
    peer_keys = Verifier(hub_keys(await peer.jwks()))
    own_kids = set(hub_keys(await local.jwks()))
    report = FederationReport()
    for name in collections:
        state_file = state_dir / f"{_safe(name)}.json"
        state = FeedState.load(state_file)
        state.collection = name

        async for page in new_pages(_reader(peer, name), state, state_file, page_size=page_size):
            report.read += len(page)
            outgoing = []
            for obj in page:
                if is_predefined(obj):
                    continue  # every hub publishes these itself
                if signed_by(obj, own_kids):
                    report.came_back += 1
                    continue
                verdict = peer_keys.verify(obj)
                if not verdict.valid:
                    report.invalid.append(verdict)
                    continue
                outgoing.append(relayed(obj))
            if outgoing:
                # Submitted and complete before the page counts as done (state saved).
                report.outcomes.extend((await local.submit(outgoing)).outcomes)
            progress(name, report)
    return report


def _reader(peer: PeerHub, name: str) -> Fetch:
    """What new_pages calls for one of the peer's collections."""

    async def fetch(params: dict[str, str]) -> tuple[dict[str, Any], Mapping[str, str]]:
        return await peer.objects(name, params)

    return fetch


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
