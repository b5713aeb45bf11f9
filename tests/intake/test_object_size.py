"""`hub.limits.max_object_bytes` at its default: an object of exactly the limit (as compact
JSON) is taken, one byte more fails alone with its size and the limit on the status, and its
sibling goes on. (The bad-input corpus sends an oversized object over Kafka intake too.)"""

from __future__ import annotations

import io

import aiohttp
import orjson
import pytest

from hub.federation import Limits
from tests.hubs import RunningHub
from tests.intake.conftest import credentials, wait_complete
from tests.intake.corpus import TAXII, indicator

LIMIT = Limits().max_object_bytes
SUBMITTER = "ng-cert-submit"
pytestmark = pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)


def of_size(size: int) -> dict[str, object]:
    """An indicator whose compact JSON is exactly `size` bytes."""
    obj = indicator(description="")
    obj["description"] = "x" * (size - len(orjson.dumps(obj)))
    assert len(orjson.dumps(obj)) == size
    return obj


async def test_an_object_over_max_object_bytes_fails_alone(hub: RunningHub) -> None:
    at_limit, over, small = of_size(LIMIT), of_size(LIMIT + 1), indicator()
    # Sent with spaces: the size that counts is the object's compact JSON, not the sender's.
    body = orjson.dumps({"objects": [at_limit, over, small]}, option=orjson.OPT_INDENT_2)
    headers = {"Accept": TAXII, "Content-Type": TAXII, **credentials(hub, SUBMITTER)}
    async with aiohttp.ClientSession() as session:
        url = hub.collection_url("inbox") + "objects/"
        async with session.post(url, data=io.BytesIO(body), headers=headers) as response:
            assert response.status == 202, await response.text()
            accepted = orjson.loads(await response.read())
        done = await wait_complete(session, hub, accepted["id"], SUBMITTER)
    assert {s["id"] for s in done["successes"]} == {at_limit["id"], small["id"]}
    [failure] = done["failures"]
    assert failure["id"] == over["id"]
    assert failure["message"] == (
        f"objects[1] ({over['id']}): {LIMIT + 1:,} bytes as JSON; this hub accepts {LIMIT:,} "
        "bytes per object (hub.limits.max_object_bytes)"
    )
