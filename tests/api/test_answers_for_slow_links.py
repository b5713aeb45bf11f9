"""What the hub answers a sender on a slow link (issue 23): one status request that waits
for completion and lists only the refused objects, and discovery, the API root and the
collections with an ETag, answered 304 without a body when the client's copy is current."""

from __future__ import annotations

import time

import orjson
import pytest

from tests.api.test_errors import assert_taxii_error, basic, call, green_envelope
from tests.hubs import RunningHub

pytestmark = pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)


async def test_one_status_request_waits_for_completion_and_lists_only_the_refused(
    hub: RunningHub,
) -> None:
    sender = basic(hub, "ng-cert-submit")
    good = orjson.loads(green_envelope(hub, "ng-cert"))["objects"]
    bad = {**good[0], "id": "indicator--not-a-uuid"}
    body = orjson.dumps({"objects": [*good, bad]})
    inbox = f"{hub.collection_url('inbox')}objects/"
    headers = {**sender, "Content-Type": "application/taxii+json;version=2.1"}
    status, _, pending = await call("POST", inbox, data=body, headers=headers)
    assert status == 202, pending

    url = f"{hub.api_root}status/{pending['id']}/"
    started = time.monotonic()
    status, _, found = await call(
        "GET", url, params={"wait": "25", "detail": "failures"}, headers=sender
    )
    assert status == 200, found
    assert time.monotonic() - started < 20
    # Complete in one request, and only the refused object named: not every id sent.
    assert found["status"] == "complete"
    assert (found["total_count"], found["success_count"], found["failure_count"]) == (
        len(good) + 1,
        len(good),
        1,
    )
    assert [f["id"] for f in found["failures"]] == [bad["id"]]
    assert "successes" not in found and "pendings" not in found
    # Without the parameters: the standard status, every list.
    status, _, whole = await call("GET", url, headers=sender)
    assert {s["id"] for s in whole["successes"]} == {o["id"] for o in good}

    # Another member's account gets the same 404 as for an unknown status, waiting or not.
    status, headers, error = await call(
        "GET", url, params={"wait": "2"}, headers=basic(hub, "ke-cirt-submit")
    )
    assert_taxii_error(status, headers, error, 404, "no status")
    for params, words in (
        ({"wait": "31"}, "wait='31'"),
        ({"wait": "-1"}, "wait='-1'"),
        ({"detail": "some"}, "detail='some'"),
    ):
        status, headers, error = await call("GET", url, params=params, headers=sender)
        assert_taxii_error(status, headers, error, 400, words)


async def test_discovery_the_api_root_and_collections_are_304_when_unchanged(
    hub: RunningHub,
) -> None:
    reader = basic(hub, "ke-cirt-read")
    for url in (f"{hub.base_url}/taxii2/", hub.api_root, f"{hub.api_root}collections/"):
        status, headers, body = await call("GET", url, headers=reader)
        assert status == 200 and body, url
        headers = {k.lower(): v for k, v in headers.items()}
        tag = headers["etag"]
        assert tag.startswith('W/"')
        assert "max-age=" in headers["cache-control"]
        status, again, body = await call("GET", url, headers={**reader, "If-None-Match": tag})
        assert (status, body) == (304, {}), url
        assert {k.lower(): v for k, v in again.items()}["etag"] == tag
        status, _, body = await call("GET", url, headers={**reader, "If-None-Match": 'W/"x"'})
        assert status == 200 and body
    # The listing depends on the account: another member's reader has another tag.
    _, mine, _ = await call("GET", f"{hub.api_root}collections/", headers=reader)
    _, theirs, _ = await call(
        "GET", f"{hub.api_root}collections/", headers=basic(hub, "ng-cert-read")
    )
    assert mine["Etag"] != theirs["Etag"]
