"""`GET /metrics` under a small load on both buses: counts equal what was posted, refusals
counted by reason, latency and lag present, the exposition parsed by prometheus_client's
own parser; only operators may read it."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.hubs import RunningHub, member_identity, submit
from tests.stixdata import TLP2, incident_report

TAXII = "application/taxii+json;version=2.1"
POST_ROUTE = "/taxii2/hub/collections/{collection}/objects/"

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def headers(hub: RunningHub, username: str) -> dict[str, str]:
    return {
        "Accept": TAXII,
        "Content-Type": TAXII,
        "Authorization": aiohttp.encode_basic_auth(username, hub.password(username)),
    }


async def scrape(hub: RunningHub, username: str = "hub-operator") -> Samples:
    """Every sample of the exposition: name → labels → value, as Prometheus would parse it."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(hub.base_url + "/metrics", headers=headers(hub, username)) as response,
    ):
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples: Samples = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name].get(tuple(sorted(labels.items())), 0.0)


async def test_metrics_count_what_was_posted_and_refused_by_reason(hub: RunningHub) -> None:
    before = await scrape(hub)
    identity = member_identity(hub, "ng-cert")
    first = incident_report(identity, "ngCERT", TLP2["green"])
    second = incident_report(identity, "ngCERT", TLP2["green"])
    bad = dict(first[2], id=f"indicator--{uuid.uuid4()}", modified="2000-01-01T00:00:00.000Z")
    mixed = [bad, dict(first[2], id=f"indicator--{uuid.uuid4()}")]
    assert (await submit(hub, "ng-cert-submit", first)).success_count == 4
    assert (await submit(hub, "ng-cert-submit", second)).success_count == 4
    assert (await submit(hub, "ng-cert-submit", mixed)).failure_count == 1
    inbox = hub.collection_url("inbox") + "objects/"
    async with aiohttp.ClientSession() as session:
        body = orjson.dumps({"objects": first})
        async with session.post(inbox, data=body, headers={"Content-Type": TAXII}) as r:
            assert r.status == 401
        async with session.post(inbox, data=body, headers=headers(hub, "ng-cert-read")) as r:
            assert r.status == 403
    after = await scrape(hub)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ng = {"member": "ng-cert"}
    assert grew("cirt_hub_submissions_total", outcome="accepted", **ng) == 3
    assert grew("cirt_hub_submissions_total", outcome="refused", member="ng-cert") == 1
    assert grew("cirt_hub_submissions_total", outcome="refused", member="unknown") == 1
    assert grew("cirt_hub_objects_received_total", **ng) == 10
    assert grew("cirt_hub_objects_accepted_total", **ng) == 9
    assert grew("cirt_hub_objects_refused_total", reason="invalid-stix", **ng) == 1
    # GREEN from ng-cert: West Africa's feed and ng-cert's own, for each accepted object.
    assert grew("cirt_hub_objects_routed_total", collection="region-west-africa") == 9
    assert grew("cirt_hub_objects_routed_total", collection="member-ng-cert") == 9
    posted = {"route": POST_ROUTE, "method": "POST"}
    assert grew("cirt_hub_http_requests_total", status="202", **posted) == 3
    assert grew("cirt_hub_http_requests_total", status="401", **posted) == 1
    assert grew("cirt_hub_http_requests_total", status="403", **posted) == 1
    # Latency: every stage timed per submission; end to end per delivery made readable.
    assert grew("cirt_hub_pipeline_stage_seconds_count", stage="validate") == 3
    assert grew("cirt_hub_end_to_end_seconds_count") >= 18
    assert 0 < grew("cirt_hub_end_to_end_seconds_sum") < 18 * 30
    # Object ids and values never become labels.
    exposition = repr(after)
    assert first[2]["id"] not in exposition and "203.0.113.45" not in exposition


async def test_consumer_lag_and_stream_clients_are_exposed(hub: RunningHub) -> None:
    prefix = hub.settings.topic_prefix
    stream = f"{hub.base_url}/api/v1/streams/public"
    async with (
        aiohttp.ClientSession() as session,
        session.get(stream, headers=headers(hub, "gh-cert-read")) as opened,
    ):
        assert opened.status == 200
        samples = await scrape(hub)
        assert value(samples, "cirt_hub_stream_clients") == 1
    lag = samples["cirt_hub_consumer_lag_records"]
    groups = {dict(labels)["group"] for labels in lag}
    assert {f"{prefix}pipeline", f"{prefix}audit-chain", f"view-{hub.settings.node_id}"} <= groups
    intake = [v for labels, v in lag.items() if dict(labels)["topic"] == f"{prefix}intake"]
    assert intake and all(v >= 0 for v in intake)
    for _ in range(50):  # the stream's close is seen by the server a moment later
        if value(await scrape(hub), "cirt_hub_stream_clients") == 0:
            break
        await asyncio.sleep(0.1)
    assert value(await scrape(hub), "cirt_hub_stream_clients") == 0


async def test_only_operators_read_metrics(hub: RunningHub) -> None:
    async with aiohttp.ClientSession() as session:
        url = hub.base_url + "/metrics"
        async with session.get(url, headers=headers(hub, "ng-cert-read")) as r:
            assert r.status == 403 and "operate" in (await r.json(content_type=None))["description"]
        async with session.get(url) as r:
            assert r.status == 401
