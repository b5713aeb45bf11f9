"""The 202 answers once the submission is durable, not once this node's view has read its
pending status back (issue 21, step 3): a POST is not held up by a view that is behind or
stopped, and its status is still found (pending) right after the 202, by its sender only."""

from __future__ import annotations

import asyncio
import time

import orjson

from hub.api.keys import FOLLOWER, RUNNERS
from tests.api.test_errors import assert_taxii_error, basic, call, green_envelope
from tests.hubs import RunningHub

TAXII = "application/taxii+json;version=2.1"


async def _stop_view(hub: RunningHub) -> None:
    hub.app[FOLLOWER].stop()
    (state,) = (r for r in hub.app[RUNNERS] if r.name == "view-follower")
    for _ in range(200):
        if not state.running:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the view follower did not stop")


async def test_a_post_is_answered_and_its_status_found_while_the_view_is_stopped(
    hub: RunningHub,
) -> None:
    await _stop_view(hub)
    sender = basic(hub, "ng-cert-submit")
    body = green_envelope(hub, "ng-cert")
    sent = orjson.loads(body)["objects"]
    headers = {**sender, "Content-Type": TAXII}
    inbox = f"{hub.collection_url('inbox')}objects/"

    started = time.monotonic()
    status, _, accepted = await call("POST", inbox, data=body, headers=headers)
    answered = time.monotonic() - started
    assert status == 202, accepted
    assert accepted["status"] == "pending"
    # The previous release waited up to 2 s here for the view to read the status back.
    assert answered < 2.0, answered

    url = f"{hub.api_root}status/{accepted['id']}/"
    for params in ({}, {"wait": "1"}):
        status, _, found = await call("GET", url, params=params, headers=sender)
        assert status == 200, found
        assert found == accepted  # pending, every object listed, as the 202 said
    status, _, found = await call("GET", url, params={"detail": "failures"}, headers=sender)
    assert status == 200, found
    assert (found["status"], found["pending_count"]) == ("pending", len(sent))
    assert "pendings" not in found
    # Another account of the same member sees it; another member's gets the 404 of a typo.
    status, _, found = await call("GET", url, headers=basic(hub, "ng-cert-read"))
    assert (status, found["id"]) == (200, accepted["id"])
    for other in (url, f"{hub.api_root}status/{accepted['id'][:-1]}0/"):
        status, headers, error = await call("GET", other, headers=basic(hub, "ke-cirt-submit"))
        assert_taxii_error(status, headers, error, 404, "no status")


async def test_the_status_right_after_the_202_is_found_and_completes(hub: RunningHub) -> None:
    sender = basic(hub, "ke-cirt-submit")
    inbox = f"{hub.collection_url('inbox')}objects/"
    headers = {**sender, "Content-Type": TAXII}
    for _ in range(5):
        body = green_envelope(hub, "ke-cirt")
        status, _, accepted = await call("POST", inbox, data=body, headers=headers)
        assert status == 202, accepted
        url = f"{hub.api_root}status/{accepted['id']}/"
        status, _, found = await call("GET", url, headers=sender)
        assert status == 200, found
        assert found["status"] in ("pending", "complete")
        status, _, found = await call("GET", url, params={"wait": "25"}, headers=sender)
        assert (status, found["status"]) == (200, "complete"), found
        assert found["success_count"] == len(orjson.loads(body)["objects"])
