"""schemas/openapi.json says what the hub answers: a real hub, asked as its users ask it
(operators, readers, senders, no one), answers each request with a status the document
lists for that endpoint, a media type it lists for that status, and a body its schema
holds. A changed answer without a changed document fails here."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from hub.federation import Federation
from tests.conftest import ROOT
from tests.hubs import RunningHub, running_hub, submit
from tests.stixdata import TLP2

pytestmark = pytest.mark.asyncio(loop_scope="module")

DOC = json.loads((ROOT / "schemas" / "openapi.json").read_text())
BASE = "urn:cirt-hub:openapi"
REGISTRY = Registry().with_resource(
    BASE, Resource.from_contents(DOC, default_specification=DRAFT202012)
)
OPERATOR, READER, SENDER = "hub-operator", "gh-cert-read", "ng-cert-submit"
INDICATOR = "indicator--0b7c3c71-9b51-4f9e-9d81-0595ffa3a322"
WEBHOOK = "https://soar.gh-cert.example/"


def _pointer(*parts: str) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def documented(method: str, template: str, response: aiohttp.ClientResponse, body: bytes) -> None:
    """The answer is one the document lists, and its body is what the schema says."""
    op = DOC["paths"][template][method]
    status = str(response.status)
    assert status in op["responses"], f"{method.upper()} {template}: {status} is not documented"
    where = ["paths", template, method, "responses", status]
    answer = op["responses"][status]
    if "$ref" in answer:
        where = answer["$ref"].removeprefix("#/").split("/")
        answer = DOC["components"]["responses"][where[-1]]
    for header in answer.get("headers", {}):
        if header not in ("Set-Cookie", "Retry-After"):
            assert header in response.headers, f"{method.upper()} {template} {status}: no {header}"
    media = response.headers.get("Content-Type", "").split(";")[0].strip()
    listed = {m.split(";")[0]: m for m in answer.get("content", {})}
    if not listed:
        return
    assert media in listed, f"{method.upper()} {template} {status}: {media} is not documented"
    if not media.endswith("json"):
        return
    pointer = _pointer(*where, "content", listed[media], "schema")
    validator = Draft202012Validator({"$ref": BASE + "#" + pointer}, registry=REGISTRY)
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(json.loads(body))
    ]
    assert errors == [], f"{method.upper()} {template} {status}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hub(
    tmp_path_factory: pytest.TempPathFactory, demo_secrets: Path
) -> AsyncIterator[RunningHub]:
    data = tmp_path_factory.mktemp("openapi")

    # Webhooks allowed somewhere, so a subscription can be made and its answer checked.
    def notify(federation: Federation) -> Federation:
        return replace(federation, notify={"webhook_prefixes": [WEBHOOK]})

    async with running_hub("embedded", data / "data", demo_secrets, adjust=notify) as running:
        # ngCERT's own object, so the sender has an explanation and the region a stream.
        await submit(
            running,
            SENDER,
            [
                {
                    "type": "indicator",
                    "spec_version": "2.1",
                    "id": INDICATOR,
                    "created": "2026-11-20T08:00:00.000Z",
                    "modified": "2026-11-20T08:00:00.000Z",
                    "pattern": "[domain-name:value = 'c2.example.org']",
                    "pattern_type": "stix",
                    "valid_from": "2026-11-20T08:00:00Z",
                    "object_marking_refs": [TLP2["green"]],
                }
            ],
        )
        yield running


def _auth(hub: RunningHub, username: str) -> dict[str, str]:
    """Basic credentials, as headers (aiohttp's BasicAuth is deprecated)."""
    return {"Authorization": aiohttp.encode_basic_auth(username, hub.password(username))}


async def _ask(
    hub: RunningHub, method: str, template: str, path: str | None = None, **kw: Any
) -> tuple[aiohttp.ClientResponse, bytes]:
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
        session.request(
            method, hub.base_url + (path or template), allow_redirects=False, **kw
        ) as response,
    ):
        body = await response.read()
    documented(method.lower(), template, response, body)
    return response, body


async def test_health_and_keys_answer_as_documented(hub: RunningHub) -> None:
    assert (await _ask(hub, "GET", "/healthz"))[0].status == 200
    ready, body = await _ask(hub, "GET", "/readyz")
    assert ready.status == 200 and "checks" not in json.loads(body)
    ready, body = await _ask(hub, "GET", "/readyz", headers=_auth(hub, OPERATOR))
    assert "checks" in json.loads(body)
    assert (await _ask(hub, "GET", "/readyz", headers=_auth(hub, READER)))[0].status == 403
    assert (await _ask(hub, "GET", "/.well-known/jwks.json"))[0].status == 200
    assert (await _ask(hub, "GET", "/api/v1/member-keys"))[0].status == 401
    assert (await _ask(hub, "GET", "/api/v1/member-keys", headers=_auth(hub, READER)))[
        0
    ].status == 200


async def test_metrics_answer_as_documented(hub: RunningHub) -> None:
    assert (await _ask(hub, "GET", "/metrics"))[0].status == 401
    assert (await _ask(hub, "GET", "/metrics", headers=_auth(hub, READER)))[0].status == 403
    scrape, body = await _ask(hub, "GET", "/metrics", headers=_auth(hub, OPERATOR))
    assert scrape.status == 200 and b"cirt_hub_objects_received_total" in body


async def test_explain_answers_as_documented(hub: RunningHub) -> None:
    template = "/api/v1/explain/{object_id}"
    own = f"/api/v1/explain/{INDICATOR}"
    for _ in range(100):  # the audit chainer links the decision shortly after routing
        answer, _ = await _ask(hub, "GET", template, own, headers=_auth(hub, "ng-cert-read"))
        if answer.status == 200:
            break
        await asyncio.sleep(0.1)
    assert answer.status == 200
    assert (await _ask(hub, "GET", template, own, headers=_auth(hub, READER)))[0].status == 404
    bad = "/api/v1/explain/not-an-id"
    assert (await _ask(hub, "GET", template, bad, headers=_auth(hub, READER)))[0].status == 400
    assert (await _ask(hub, "GET", template, own))[0].status == 401


async def test_the_stream_answers_as_documented(hub: RunningHub) -> None:
    template = "/api/v1/streams/{collection}"
    region = "/api/v1/streams/region-west-africa"
    async with (
        aiohttp.ClientSession() as session,
        session.get(hub.base_url + region, headers=_auth(hub, READER)) as response,
    ):
        documented("get", template, response, b"")
        first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
        assert first == b"retry: 2000\n\n"
        event = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
        assert b"event: object" in event and INDICATOR.encode() in event
    assert (await _ask(hub, "GET", template, region))[0].status == 401
    other = "/api/v1/streams/region-east-africa"
    assert (await _ask(hub, "GET", template, other, headers=_auth(hub, READER)))[0].status == 404
    inbox = "/api/v1/streams/inbox"
    assert (await _ask(hub, "GET", template, inbox, headers=_auth(hub, SENDER)))[0].status == 403
    cursor = region + "?from=" + quote("not a cursor")
    assert (await _ask(hub, "GET", template, cursor, headers=_auth(hub, READER)))[0].status == 400


async def test_exports_answer_as_documented(hub: RunningHub) -> None:
    template = "/api/v1/exports/{collection}"
    region = "/api/v1/exports/region-west-africa"
    for query in ("?format=txt&kind=domain", "?format=csv", "?format=suricata", "?format=stix"):
        answer, body = await _ask(hub, "GET", template, region + query, headers=_auth(hub, READER))
        assert answer.status == 200 and b"c2.example.org" in body, body
        assert "X-Request-ID" in answer.headers
    assert (await _ask(hub, "GET", template, region + "?format=txt"))[0].status == 401
    wrong = region + "?format=txt"  # no kind
    assert (await _ask(hub, "GET", template, wrong, headers=_auth(hub, READER)))[0].status == 400
    other = "/api/v1/exports/region-east-africa?format=csv"
    assert (await _ask(hub, "GET", template, other, headers=_auth(hub, READER)))[0].status == 404
    inbox = "/api/v1/exports/inbox?format=csv"
    assert (await _ask(hub, "GET", template, inbox, headers=_auth(hub, SENDER)))[0].status == 403


async def test_lookups_answer_as_documented(hub: RunningHub) -> None:
    template = "/api/v1/lookup"
    asked = template + "?value=example.org"
    answer, body = await _ask(hub, "GET", template, asked, headers=_auth(hub, READER))
    assert answer.status == 200 and INDICATOR in json.loads(body)["objects"][0]["id"], body
    assert (await _ask(hub, "GET", template, asked))[0].status == 401
    wrong = template + "?value=example.org&kind=ipv4"
    assert (await _ask(hub, "GET", template, wrong, headers=_auth(hub, READER)))[0].status == 400
    page, _ = await _ask(hub, "GET", "/console/search", "/console/search?q=example.org")
    assert page.status == 303


async def test_the_dashboard_answers_as_documented(hub: RunningHub) -> None:
    page, _ = await _ask(hub, "GET", "/dashboard")
    assert page.status == 303 and page.headers["Location"] == "/dashboard/login"
    assert (await _ask(hub, "GET", "/dashboard", headers=_auth(hub, OPERATOR)))[0].status == 200
    assert (await _ask(hub, "GET", "/dashboard", headers=_auth(hub, READER)))[0].status == 403
    assert (await _ask(hub, "GET", "/dashboard/dashboard.js"))[0].status == 200
    assert (await _ask(hub, "GET", "/dashboard/login"))[0].status == 200
    assert (await _ask(hub, "GET", "/api/v1/dashboard"))[0].status == 401
    wrong = {"username": OPERATOR, "password": "not the secret"}
    assert (await _ask(hub, "POST", "/dashboard/login", data=wrong))[0].status == 401
    reader = {"username": READER, "password": hub.password(READER)}
    assert (await _ask(hub, "POST", "/dashboard/login", data=reader))[0].status == 403
    good = {"username": OPERATOR, "password": hub.password(OPERATOR)}
    login, _ = await _ask(hub, "POST", "/dashboard/login", data=good)
    assert login.status == 303 and login.headers["Location"] == "/dashboard"
    session = {"cirt_hub_session": login.cookies["cirt_hub_session"].value}
    snapshot, body = await _ask(hub, "GET", "/api/v1/dashboard", cookies=session)
    assert snapshot.status == 200 and json.loads(body)["totals"]["accepted"] >= 1
    logout, _ = await _ask(hub, "POST", "/dashboard/logout", cookies=session)
    assert logout.status == 303 and logout.headers["Location"] == "/dashboard/login"
    assert (await _ask(hub, "GET", "/api/v1/dashboard", cookies=session))[0].status == 401


async def test_alert_responses_answer_as_documented(hub: RunningHub) -> None:
    template = "/api/v1/alerts/{alert_id}/responses"
    path = "/api/v1/alerts/grouping--365ed7f6-3540-56cf-9abc-20860826586f/responses"
    body = json.dumps({"state": "acknowledged"})
    assert (await _ask(hub, "POST", template, path, data=body))[0].status == 401
    reader = _auth(hub, READER)
    assert (await _ask(hub, "POST", template, path, data=body, headers=reader))[0].status == 403
    sender = _auth(hub, SENDER)
    assert (await _ask(hub, "POST", template, path, data=body, headers=sender))[0].status == 404
    bad = json.dumps({"state": "panicking"})
    assert (await _ask(hub, "POST", template, path, data=bad, headers=sender))[0].status == 400


async def test_subscriptions_answer_as_documented(hub: RunningHub) -> None:
    listing, one = "/api/v1/subscriptions", "/api/v1/subscriptions/{subscription_id}"
    assert (await _ask(hub, "GET", listing))[0].status == 401
    assert (await _ask(hub, "GET", listing, headers=_auth(hub, SENDER)))[0].status == 403
    reader = _auth(hub, READER)
    made = json.dumps({"kind": "alerts", "webhook": WEBHOOK + "hooks"})
    created, body = await _ask(hub, "POST", listing, data=made, headers=reader)
    assert created.status == 201
    bad = json.dumps({"kind": "alerts", "webhook": "https://elsewhere.example/"})
    assert (await _ask(hub, "POST", listing, data=bad, headers=reader))[0].status == 400
    unreadable = json.dumps(
        {"kind": "collection", "collection": "member-ng-cert", "webhook": WEBHOOK}
    )
    assert (await _ask(hub, "POST", listing, data=unreadable, headers=reader))[0].status == 404
    watching = {"kind": "collection", "collection": "public", "webhook": WEBHOOK}
    watched = json.dumps({**watching, "value": "www.example.org", "value_kind": "domain"})
    assert (await _ask(hub, "POST", listing, data=watched, headers=reader))[0].status == 201
    wrong = json.dumps({**watching, "value": "203.0.113.0/33", "value_kind": "ip"})
    assert (await _ask(hub, "POST", listing, data=wrong, headers=reader))[0].status == 400
    listed, listing_body = await _ask(hub, "GET", listing, headers=reader)
    assert listed.status == 200
    assert json.loads(listing_body)["subscriptions"][1]["value"] == "www.example.org"
    path = f"/api/v1/subscriptions/{json.loads(body)['id']}"
    sender = _auth(hub, SENDER)
    assert (await _ask(hub, "DELETE", one, path, headers=sender))[0].status == 403
    assert (await _ask(hub, "DELETE", one, path, headers=reader))[0].status == 204
    assert (await _ask(hub, "DELETE", one, path, headers=reader))[0].status == 404


async def test_contacts_answer_as_documented(hub: RunningHub) -> None:
    template = "/api/v1/contacts"
    assert (await _ask(hub, "GET", template))[0].status == 401
    assert (await _ask(hub, "GET", template, headers=_auth(hub, SENDER)))[0].status == 403
    for who in (READER, OPERATOR):
        answer, body = await _ask(hub, "GET", template, headers=_auth(hub, who))
        assert answer.status == 200 and b"incident@ngcert.example" in body


async def test_reachability_answers_as_documented(hub: RunningHub) -> None:
    latest, start = "/api/v1/reachability", "/api/v1/reachability/checks"
    assert (await _ask(hub, "GET", latest))[0].status == 401
    assert (await _ask(hub, "GET", latest, headers=_auth(hub, READER)))[0].status == 403
    assert (await _ask(hub, "POST", start, headers=_auth(hub, READER)))[0].status == 403
    wrong = await _ask(hub, "POST", start, headers=_auth(hub, OPERATOR), json={"links": "yes"})
    assert wrong[0].status == 400
    started, _ = await _ask(hub, "POST", start, headers=_auth(hub, OPERATOR), json={"links": True})
    assert started.status == 201
    answer, body = await _ask(hub, "GET", latest, headers=_auth(hub, OPERATOR))
    assert answer.status == 200 and json.loads(body)["check"]["by"] == OPERATOR
    _, body = await _ask(hub, "GET", "/api/v1/dashboard", headers=_auth(hub, OPERATOR))
    assert json.loads(body)["reachability"]["by"] == OPERATOR
