"""Fuzzing the submission endpoint: mutated incident reports and random bytes, on both buses.

Whatever arrives, the answer is never a 5xx, the server stays up, and an object the hub
refused never shows up in any feed.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.api.keys import COLLECTIONS, VIEW
from hub.collections import feed_aliases
from hub.store.view import ObjectQuery
from tests.hubs import RunningHub
from tests.intake.conftest import credentials, wait_complete
from tests.intake.corpus import TAXII, indicator
from tests.stixdata import TLP2

EXAMPLES = 250
SUBMITTER = "ng-cert-submit"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
keys = st.sampled_from(
    [
        "id",
        "type",
        "spec_version",
        "created",
        "modified",
        "pattern",
        "valid_from",
        "object_marking_refs",
        "created_by_ref",
        "granular_markings",
        "extensions",
        "labels",
        "sighting_of_ref",
        "where_sighted_refs",
        "confidence",
        "name",
        "x_custom",
        "external_references",
    ]
)


@st.composite
def bodies(draw: st.DrawFn, identity: str) -> bytes:
    # Fresh ids from the draw (not uuid4()): the same draws must make the same bytes.
    ids = [str(draw(st.uuids(version=4))) for _ in range(3)]
    objects: list[dict[str, Any]] = [
        indicator(id=f"indicator--{ids[0]}"),
        {
            "type": "incident",
            "spec_version": "2.1",
            "id": f"incident--{ids[1]}",
            "created": "2026-11-20T08:00:00.000Z",
            "modified": "2026-11-20T08:00:00.000Z",
            "name": "Ransomware on the tax portal",
            "created_by_ref": identity,
            "object_marking_refs": [TLP2["green"]],
        },
        {
            "type": "sighting",
            "spec_version": "2.1",
            "id": f"sighting--{ids[2]}",
            "created": "2026-11-20T08:00:00.000Z",
            "modified": "2026-11-20T08:00:00.000Z",
            "sighting_of_ref": f"indicator--{ids[0]}",
            "where_sighted_refs": [identity],
            "count": 3,
            "object_marking_refs": [TLP2["green"]],
        },
    ]

    kind = draw(st.sampled_from(["json", "bytes", "flip", "truncate"]))
    if kind == "json":
        for _ in range(draw(st.integers(min_value=1, max_value=4))):
            target = objects[draw(st.integers(min_value=0, max_value=len(objects) - 1))]
            key = draw(keys)
            if draw(st.booleans()):
                target[key] = draw(json_values)
            else:
                target.pop(key, None)
        return json.dumps({"objects": objects}).encode()
    body = json.dumps({"objects": objects}).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "truncate":
        return body[: draw(st.integers(min_value=0, max_value=len(body) - 1))]
    flips = draw(st.lists(st.integers(min_value=0, max_value=len(body) - 1), max_size=8))
    mutated = bytearray(body)
    for position in flips:
        mutated[position] = draw(st.integers(min_value=0, max_value=255))
    return bytes(mutated)


async def delivered_among(hub: RunningHub, ids: set[str]) -> set[str]:
    found: set[str] = set()
    for alias in feed_aliases(hub.app[COLLECTIONS]):
        page = await hub.app[VIEW].objects(
            ObjectQuery(alias, ids=tuple(sorted(ids)), versions=("all",), limit=1000)
        )
        found |= {orjson.loads(raw)["id"] for raw in page.objects}
    return found


# The hub under test runs in this process, and aiokafka's threads use the global `random`
# (node choice, backoff) while Hypothesis draws: its "random inside a strategy" check sees
# that as the strategy's doing. The strategies here use no `random`.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
async def test_fuzzed_submissions_never_get_a_5xx_nor_leak(corpus_hub: RunningHub) -> None:
    hub = corpus_hub
    identity = hub.settings.federation.member("ng-cert").identity
    accepted_ever: set[str] = set()
    counts = {"requests": 0, "202": 0, "4xx": 0, "refused objects": 0}
    started = time.monotonic()

    async def one(body: bytes) -> None:
        headers = {"Accept": TAXII, "Content-Type": TAXII, **credentials(hub, SUBMITTER)}
        async with aiohttp.ClientSession() as session:
            async with session.post(
                hub.collection_url("inbox") + "objects/", data=body, headers=headers
            ) as response:
                status, answer = response.status, orjson.loads(await response.read())
            counts["requests"] += 1
            assert status < 500, answer
            if status != 202:
                counts["4xx"] += 1
                assert answer["http_status"] == str(status) and answer["description"]
                return
            counts["202"] += 1
            doc = await wait_complete(session, hub, answer["id"], SUBMITTER)
        accepted_ever.update(s["id"] for s in doc["successes"])
        refused = {f["id"] for f in doc["failures"]} - accepted_ever
        counts["refused objects"] += len(refused)
        if refused:
            leaked = await delivered_among(hub, refused)
            assert not leaked, f"refused objects reached a feed: {leaked}"

    loop = asyncio.get_running_loop()

    # Hypothesis drives examples synchronously, so it runs in a thread and hands each
    # example to the event loop that serves the hub.
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=bodies(identity))
    def run_example(body: bytes) -> None:
        asyncio.run_coroutine_threadsafe(one(body), loop).result(timeout=90)

    await asyncio.to_thread(run_example)
    async with aiohttp.ClientSession() as session, session.get(hub.base_url + "/healthz") as r:
        assert r.status == 200
    print(f"fuzz: {counts} in {time.monotonic() - started:.1f} s")
    assert counts["requests"] == EXAMPLES and counts["202"] > 0 and counts["4xx"] > 0
