"""What the TAXII 2.1 API page (docs/reference/taxii.md) tells readers, against a real hub:
a page holds at most 1,000 objects whatever `limit` asks, an unknown filter is a 400
naming it, DELETE is a 405 with `Allow`, and collections are addressed by id: the resource
answers with its UUID whatever name reached it, and taxii2-client takes only the id."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from taxii2client.exceptions import ValidationError
from taxii2client.v21 import Collection

from tests.hubs import RunningHub, running_hub, submit
from tests.stixdata import TLP2

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]

TAXII = "application/taxii+json;version=2.1"
READER, REGION = "gh-cert-read", "region-west-africa"
MANY = 1001  # one more than a page holds


def _indicator(n: int) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=n + 1, version=4)}",
        "created": "2026-11-20T08:00:00.000Z",
        "modified": "2026-11-20T08:00:00.000Z",
        "pattern": f"[domain-name:value = 'c2-{n}.example.org']",
        "pattern_type": "stix",
        "valid_from": "2026-11-20T08:00:00Z",
        "object_marking_refs": [TLP2["green"]],
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hub(
    tmp_path_factory: pytest.TempPathFactory, demo_secrets: Path
) -> AsyncIterator[RunningHub]:
    data = tmp_path_factory.mktemp("taxii-page")
    async with running_hub("embedded", data / "data", demo_secrets) as running:
        await submit(running, "ng-cert-submit", [_indicator(n) for n in range(MANY)])
        yield running


async def _get(
    hub: RunningHub, url: str, method: str = "GET", **params: str
) -> tuple[int, dict[str, str], Any]:
    auth = aiohttp.encode_basic_auth(READER, hub.password(READER))
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, url, params=params, headers={"Accept": TAXII, "Authorization": auth}
        ) as response,
    ):
        return response.status, dict(response.headers), await response.json(content_type=None)


async def test_a_page_holds_at_most_1000_objects_whatever_limit_asks(hub: RunningHub) -> None:
    url = hub.collection_url(REGION) + "objects/"
    status, _, page = await _get(hub, url, limit="5000")
    assert status == 200
    assert len(page["objects"]) == 1000 and page["more"] is True
    status, _, rest = await _get(hub, url, limit="5000", next=page["next"])
    assert status == 200 and len(rest["objects"]) == MANY - 1000 and rest["more"] is False


async def test_an_unknown_filter_is_a_400_naming_it(hub: RunningHub) -> None:
    url = hub.collection_url(REGION) + "objects/"
    status, _, body = await _get(hub, url, **{"match[foo]": "x"})
    assert status == 400 and "match[foo]" in body["description"]
    assert body["http_status"] == "400"


async def test_delete_is_a_405_with_allow(hub: RunningHub) -> None:
    url = hub.collection_url(REGION) + f"objects/{_indicator(0)['id']}/"
    status, headers, body = await _get(hub, url, method="DELETE")
    assert status == 405 and headers["Allow"] == "GET,HEAD" and body["http_status"] == "405"
    assert '"revoked": true' in body["description"] or "revoked: true" in body["description"]


async def test_collections_are_addressed_by_id(hub: RunningHub) -> None:
    by_alias = f"{hub.api_root}collections/{REGION}/"
    status, _, resource = await _get(hub, by_alias)
    assert status == 200 and resource["alias"] == REGION
    assert hub.collection_url(REGION) == f"{hub.api_root}collections/{resource['id']}/"

    def open_collection(url: str) -> str:
        return Collection(url, user=READER, password=hub.password(READER)).title

    with pytest.raises(ValidationError, match="does not match the url"):
        await asyncio.to_thread(open_collection, by_alias)
    assert await asyncio.to_thread(open_collection, hub.collection_url(REGION))
