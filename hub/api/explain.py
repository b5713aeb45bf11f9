"""`GET /api/v1/explain/{object-id}`: why a sender's own object went where it went.

The answer is the audit chain's records of the routing decisions on that object (one per
version routed): per member, allowed or denied and the rule that decided, the collections
it was delivered to, and the policy version in force. Only the sending member's accounts
see them; for anyone else the object has no explanation here (404, as for a typo).
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from hub.api.access import caller
from hub.api.keys import VIEW
from hub.errors import BadRequest, NotFound

RECEIVE_RULES = "sharing.receive"  # a recipient's own filter (its types, regions, confidence)
_STIX_ID = re.compile(r"[a-z0-9][a-z0-9-]*--[0-9a-fA-F-]{36}")


async def explain(request: web.Request) -> web.Response:
    account = await caller(request)
    object_id = request.match_info["object_id"]
    if not _STIX_ID.fullmatch(object_id):
        raise BadRequest(f"{object_id!r} is not a STIX identifier")
    records = (
        []
        if account.member is None
        else await request.app[VIEW].decisions(object_id, account.member)
    )
    if not records:
        raise NotFound(f"no routing decision on {object_id} is visible to {account.username!r}")
    decisions = [_as_seen_by_sender(orjson.loads(r)) for r in records]
    body = orjson.dumps({"object_id": object_id, "decisions": decisions})
    return web.Response(body=body, content_type="application/json")


def _as_seen_by_sender(record: dict[str, Any]) -> dict[str, Any]:
    """The record, but a recipient's own filter is its business: the sender learns only
    that the recipient's filter declined, not what the filter says."""
    verdicts = []
    for verdict in record.get("verdicts", []):
        if str(verdict.get("rule", "")).startswith(RECEIVE_RULES):
            verdict = {**verdict, "rule": RECEIVE_RULES, "reason": "the recipient's own filter"}
        verdicts.append(verdict)
    return {**record, "verdicts": verdicts}
