"""TAXII 2.1 status (section 4.3): what became of each object of a submission.

Two query parameters of this hub's own, for senders on slow links (a TAXII client that sends
neither gets the standard answer): `wait=N` (at most MAX_WAIT seconds) answers once the
status is complete or N seconds have passed, one request instead of a poll every few
seconds; `detail=failures` leaves out the `successes` and `pendings` lists (the counts stay),
so a sender that knows what it sent downloads the ids of its refused objects only, instead
of every id it uploaded.
"""

from __future__ import annotations

import asyncio
import re

import orjson
from aiohttp import web

from hub.api.access import caller
from hub.api.keys import ACCEPTED, FOLLOWER, VIEW
from hub.api.media import require_taxii_accept, taxii_response
from hub.api.stream import STREAMS
from hub.errors import BadRequest, NotFound

# Long enough to cover a submission's routing; short enough that proxies and NATs on the way
# keep an idle connection open.
MAX_WAIT = 30
_WAIT = re.compile(r"[0-9]{1,3}")
_DETAILS = ("all", "failures")


def _options(request: web.Request) -> tuple[int, str]:
    wait = request.query.get("wait", "0")
    if not _WAIT.fullmatch(wait) or int(wait) > MAX_WAIT:
        raise BadRequest(f"wait={wait!r}: give whole seconds from 0 to {MAX_WAIT}")
    detail = request.query.get("detail", "all")
    if detail not in _DETAILS:
        raise BadRequest(f"detail={detail!r}: give one of {', '.join(_DETAILS)}")
    return int(wait), detail


async def get_status(request: web.Request) -> web.Response:
    require_taxii_accept(request)
    wait, detail = _options(request)
    account = await caller(request)
    status_id = request.match_info["status"]
    view, follower = request.app[VIEW], request.app[FOLLOWER]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        # The count before the read: a batch applied between the two wakes the wait at once.
        # Any topic: a status held for its objects completes when a feed's batch is applied.
        seen = follower.applied(None)
        accepted = request.app[ACCEPTED].get(status_id)
        found = await view.status(status_id)
        if found is None and accepted is not None:
            # Answered 202 here, not in this node's view yet: pending, as the 202 said.
            found = accepted.member, accepted.doc
        # Only the submitting member's accounts see a status; others get the same 404 as a typo.
        if found is None or found[0] != account.member:
            raise NotFound(f"no status {status_id!r} is visible to account {account.username!r}")
        doc = orjson.loads(found[1])
        left = deadline - loop.time()
        if left <= 0 or doc.get("status") == "complete":
            break
        await follower.wait_for_change(None, seen, left, request.app[STREAMS].closing)
    if detail == "all":
        return taxii_response(found[1])
    doc.pop("successes", None)
    doc.pop("pendings", None)
    return taxii_response(doc)
