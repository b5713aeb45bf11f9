"""The authorization matrix, generated: every endpoint, every kind of caller, and own, other
member's, region, shared and unknown collections, against the real server on both buses.

The expected status comes from the rules as the design states them, written out here
independently of `hub.collections`: a reader reads `public`, `alerts`, its regions' feeds
and its own member feed; a submitter writes to `inbox`; the operator reads no feed; a
collection the caller may not see answers 404 like one that does not exist; a status and
a routing explanation belong to the submitting member; no credentials get 401 except on
the public JWKS and server discovery.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.hubs import RunningHub, member_identity, running_hub, submit
from tests.stixdata import TLP2

TAXII = "application/taxii+json;version=2.1"
MEMBER_REGIONS = {"ke-cirt": {"east-africa"}, "ng-cert": {"west-africa"}}
COLLECTIONS = [
    "inbox",
    "public",
    "alerts",
    "region-east-africa",
    "region-west-africa",
    "member-ke-cirt",
    "member-ng-cert",
    "no-such-collection",
]


@dataclass(frozen=True)
class Caller:
    name: str
    username: str | None  # None: no credentials
    member: str | None
    roles: frozenset[str]
    password: str | None = None  # a wrong one, when given


CALLERS = [
    Caller("own reader", "ke-cirt-read", "ke-cirt", frozenset({"read"})),
    Caller("own submitter", "ke-cirt-submit", "ke-cirt", frozenset({"submit"})),
    Caller("other member's reader", "ng-cert-read", "ng-cert", frozenset({"read"})),
    Caller("other member's submitter", "ng-cert-submit", "ng-cert", frozenset({"submit"})),
    Caller("operator", "hub-operator", None, frozenset({"operate"})),
    Caller("no credentials", None, None, frozenset()),
    Caller("wrong password", "ke-cirt-read", None, frozenset(), password="not-the-secret"),
]


def readable(caller: Caller) -> set[str]:
    if "read" not in caller.roles or caller.member is None:
        return set()
    regions = {f"region-{r}" for r in MEMBER_REGIONS[caller.member]}
    return {"public", "alerts", f"member-{caller.member}", *regions}


def listed(caller: Caller) -> set[str]:
    """Collections the caller's list shows, and the only ones it can open as resources."""
    inbox = {"inbox"} if "submit" in caller.roles and caller.member is not None else set()
    return readable(caller) | inbox


def addressable(caller: Caller) -> set[str]:
    """Collections the caller may name at all; the rest answer 404 like unknown ones."""
    inbox = {"inbox"} if caller.member is not None else set()
    return readable(caller) | inbox


@dataclass(frozen=True)
class Case:
    caller: Caller
    method: str
    path: str
    expected: int


def authenticated(caller: Caller) -> bool:
    return caller.username is not None and caller.password is None


def cases(object_id: str, status_id: str) -> list[Case]:
    out: list[Case] = []
    root = "/taxii2/hub/"
    for caller in CALLERS:
        ok = authenticated(caller)

        def add(
            method: str, path: str, expected: int, caller: Caller = caller, ok: bool = ok
        ) -> None:
            out.append(Case(caller, method, path, expected if ok else 401))

        # Discovery is open by design: it names the API root and nothing else.
        out.append(Case(caller, "GET", "/taxii2/", 200))
        add("GET", root, 200)
        add("GET", root + "collections/", 200)
        add("GET", "/api/v1/member-keys", 200)
        operator = "operate" in caller.roles
        add("GET", "/metrics", 200 if operator else 403)
        add("GET", "/api/v1/dashboard", 200 if operator else 403)
        # The page sends a browser without credentials to its login form.
        dashboard = 200 if operator else 403 if ok else 401 if caller.username else 303
        out.append(Case(caller, "GET", "/dashboard", dashboard))
        out.append(Case(caller, "GET", "/dashboard/login", 200))
        out.append(Case(caller, "GET", "/dashboard/dashboard.js", 200))  # code, no data
        out.append(Case(caller, "GET", "/.well-known/jwks.json", 200))  # public by design
        owner = caller.member == "ke-cirt"
        add("GET", f"{root}status/{status_id}/", 200 if owner else 404)
        add("GET", f"/api/v1/explain/{object_id}", 200 if owner else 404)
        # Only a member's submit account may respond; the matrix's TAXII envelope is not a
        # response (400), and which alerts exist is tests/correlate/test_responses.py's.
        responds = caller.member is not None and "submit" in caller.roles
        add("POST", f"/api/v1/alerts/{ALERT}/responses", 400 if responds else 403)
        add("POST", f"/api/v1/alerts/{ALERT}/mitigations", 400 if responds else 403)
        # Points of contact: a member's analysts and the hub's operators, nobody else.
        sees = ("read" if caller.member is not None else "operate") in caller.roles
        add("GET", "/api/v1/contacts", 200 if sees else 403)
        add("GET", "/api/v1/reachability", 200 if operator else 403)
        # An operator's empty body starts a check (201); the matrix's TAXII envelope is 400.
        add("POST", "/api/v1/reachability/checks", 400 if operator else 403)
        # Subscriptions are a member's read accounts' own; the matrix's TAXII envelope is not
        # a subscription (400), and an id nobody made is 404 (tests/notify: another's too).
        subscribes = caller.member is not None and "read" in caller.roles
        # Any account may look a value up, among what it may read (tests/api/test_lookup.py).
        add("GET", "/api/v1/lookup?value=203.0.113.9", 200)
        add("GET", "/api/v1/subscriptions", 200 if subscribes else 403)
        add("POST", "/api/v1/subscriptions", 400 if subscribes else 403)
        add("DELETE", "/api/v1/subscriptions/sub-unknown", 404 if subscribes else 403)
        for alias in COLLECTIONS:
            base = f"{root}collections/{alias}/"
            known = alias in addressable(caller)
            reads = alias in readable(caller)
            read_status = 200 if reads else 403 if known else 404
            add("GET", base, 200 if alias in listed(caller) else 404)
            add("GET", base + "objects/", read_status)
            add("GET", base + "manifest/", read_status)
            holds = reads and alias == "member-ke-cirt"  # the AMBER object is only there
            # Readable but without the object: 404 for the object, as for any unknown id.
            one = 200 if holds else 404 if reads else read_status
            add("GET", f"{base}objects/{object_id}/", one)
            add("GET", f"{base}objects/{object_id}/versions/", one)
            writes = alias == "inbox" and "submit" in caller.roles
            add("POST", base + "objects/", 202 if writes else 403 if known else 404)
            add("GET", f"/api/v1/streams/{alias}", read_status)
            add("GET", f"/api/v1/exports/{alias}?format=stix", read_status)
    return out


ALERT = "grouping--0b6f1a2e-5d4c-4b3a-9e8f-7a6b5c4d3e2f"

GREEN_ADDRESS = {
    "type": "ipv4-addr",
    "spec_version": "2.1",
    "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd",
    "value": "198.51.100.3",
    "object_marking_refs": [TLP2["green"]],
}


async def call(session: aiohttp.ClientSession, hub: RunningHub, case: Case) -> int:
    headers = {"Accept": TAXII}
    caller = case.caller
    if caller.username is not None:
        secret = caller.password or hub.password(caller.username)
        headers["Authorization"] = aiohttp.encode_basic_auth(caller.username, secret)
    body = None
    if case.method == "POST":
        headers["Content-Type"] = TAXII
        body = orjson.dumps({"objects": [GREEN_ADDRESS]})
    async with session.request(
        case.method, hub.base_url + case.path, headers=headers, data=body, allow_redirects=False
    ) as response:
        if response.status >= 400 and "/streams/" not in case.path:
            error = await response.json(content_type=None)
            assert error["http_status"] == str(response.status), (case, error)
        return response.status  # a stream's body is not waited for


async def explained(hub: RunningHub, object_id: str, username: str) -> None:
    """Wait until the routing decision is in the view (the audit chainer runs apart)."""
    url = f"{hub.base_url}/api/v1/explain/{object_id}"
    headers = {"Authorization": aiohttp.encode_basic_auth(username, hub.password(username))}
    async with aiohttp.ClientSession() as session, asyncio.timeout(30):
        while True:
            async with session.get(url, headers=headers) as response:
                if response.status == 200:
                    return
            await asyncio.sleep(0.2)


async def test_every_endpoint_role_and_collection_answers_as_the_rules_say(
    hub: RunningHub,
) -> None:
    sent = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--6b0a3c52-6d41-4e0b-9d6c-54f1b7b0e0a1",
        "created": "2026-11-20T08:00:00.000Z",
        "modified": "2026-11-20T08:00:00.000Z",
        "pattern": "[domain-name:value = 'c2.example']",
        "pattern_type": "stix",
        "valid_from": "2026-11-20T08:00:00Z",
        "object_marking_refs": [TLP2["amber"]],  # AMBER named to nobody: the sender's only
    }
    status = await submit(hub, "ke-cirt-submit", [sent])
    assert status.success_count == 1
    await explained(hub, sent["id"], "ke-cirt-read")
    matrix = cases(sent["id"], status.id)
    wrong: list[str] = []
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for case in matrix:
            got = await call(session, hub, case)
            if got != case.expected:
                wrong.append(
                    f"{case.caller.name} {case.method} {case.path}: {got} not {case.expected}"
                )
    assert not wrong, "\n".join(wrong)
    assert len(matrix) >= 7 * (6 + 8 * 7)


@pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)
async def test_collections_listed_are_exactly_those_the_caller_may_use(hub: RunningHub) -> None:
    async with aiohttp.ClientSession() as session:
        for caller in (c for c in CALLERS if authenticated(c)):
            headers = {
                "Accept": TAXII,
                "Authorization": aiohttp.encode_basic_auth(
                    caller.username or "", hub.password(caller.username or "")
                ),
            }
            async with session.get(hub.api_root + "collections/", headers=headers) as r:
                shown = {
                    c["alias"]: c for c in (await r.json(content_type=None)).get("collections", [])
                }
            assert set(shown) == listed(caller), caller.name
            for alias, resource in shown.items():
                assert resource["can_read"] is (alias in readable(caller)), (caller.name, alias)
                assert resource["can_write"] is (alias == "inbox"), (caller.name, alias)


async def first_seconds(response: aiohttp.ClientResponse, seconds: float) -> bytes:
    """What a stream sends within `seconds` (it never ends by itself)."""
    received = b""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            async for chunk in response.content.iter_any():
                received += chunk
    return received


async def test_red_content_reaches_the_named_account_only_through_every_endpoint(
    bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    """TLP:RED named to one account of a member: its other account sees it nowhere."""
    rules = {"ng-cert": {"recipients": {"red": ["account:ke-cirt-read"]}}}
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"t{unique}.",
        sharing=rules,
        extra_readers={"ke-cirt-analyst": "ke-cirt"},
    ) as hub:
        red = {
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--0f3a8d1e-9c55-4b7e-8a59-7b1c2d3e4f50",
            "created": "2026-11-20T08:00:00.000Z",
            "modified": "2026-11-20T08:00:00.000Z",
            "pattern": "[ipv4-addr:value = '198.51.100.66']",
            "pattern_type": "stix",
            "valid_from": "2026-11-20T08:00:00Z",
            "created_by_ref": member_identity(hub, "ng-cert"),
            "object_marking_refs": [TLP2["red"]],
        }
        assert (await submit(hub, "ng-cert-submit", [red])).success_count == 1
        base = f"{hub.api_root}collections/member-ke-cirt/"
        paths = {
            "objects": base + "objects/",
            "object": f"{base}objects/{red['id']}/",
            "versions": f"{base}objects/{red['id']}/versions/",
            "manifest": base + "manifest/",
        }

        async def answers(username: str) -> dict[str, tuple[int, bytes]]:
            headers = {
                "Accept": TAXII,
                "Authorization": aiohttp.encode_basic_auth(username, hub.password(username)),
            }
            out = {}
            async with aiohttp.ClientSession() as session:
                for name, url in paths.items():
                    async with session.get(url, headers=headers) as r:
                        out[name] = (r.status, await r.read())
                stream = f"{hub.base_url}/api/v1/streams/member-ke-cirt"
                async with session.get(stream, headers=headers) as r:
                    out["stream"] = (r.status, await first_seconds(r, 3.0))
            return out

        named = await answers("ke-cirt-read")
        for name, (status, body) in named.items():
            # The versions resource lists timestamps only; the others name the object.
            shown = red["modified"] if name == "versions" else red["id"]
            assert status == 200 and shown.encode() in body, (name, status, body[:300])
        other = await answers("ke-cirt-analyst")
        assert other["object"][0] == other["versions"][0] == 404
        for name in ("objects", "manifest", "stream"):
            status, body = other[name]
            assert status == 200 and red["id"].encode() not in body, name
        for name in ("object", "versions"):
            status, body = other[name]
            assert status == 404 and red["modified"].encode() not in body, name
            assert "in this collection" in orjson.loads(body)["description"]


def test_the_matrix_covers_every_route_the_api_serves(tmp_path: Path) -> None:
    """A new route must be added to the matrix: this lists the routes it exercises."""
    from hub.config import Settings
    from hub.federation import load_federation
    from hub.node import create_app
    from tests.conftest import ROOT

    settings = Settings(load_federation(ROOT / "examples" / "federation.yaml"), tmp_path)
    app = create_app(settings)
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    unauthenticated = {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("POST", "/dashboard/login"),  # takes credentials (tests/e2e)
        ("POST", "/dashboard/logout"),  # ends a session, if any
        # The analysts' console answers cookie sessions, not Basic or Bearer: its readers'
        # matrix (own, another member's, guessed ids, RED to another account) is
        # tests/console/test_confidentiality.py, and its login tests/console/test_login.py.
        *(
            (method, path)
            for method, path in served
            if path == "/console" or path.startswith("/console/")
        ),
    }
    templates = {
        "/taxii2/hub/status/{status}/",
        "/api/v1/explain/{object_id}",
        "/api/v1/streams/{collection}",
        "/api/v1/exports/{collection}",
        "/api/v1/alerts/{alert_id}/responses",
        "/api/v1/alerts/{alert_id}/mitigations",
        "/api/v1/contacts",
        "/api/v1/reachability",
        "/api/v1/reachability/checks",
        "/api/v1/subscriptions",
        "/api/v1/subscriptions/{subscription_id}",
        "/api/v1/lookup",
        "/taxii2/hub/collections/{collection}/",
        "/taxii2/hub/collections/{collection}/objects/",
        "/taxii2/hub/collections/{collection}/manifest/",
        "/taxii2/hub/collections/{collection}/objects/{object}/",
        "/taxii2/hub/collections/{collection}/objects/{object}/versions/",
        "/taxii2/",
        "/taxii2/hub/",
        "/taxii2/hub/collections/",
        "/api/v1/member-keys",
        "/.well-known/jwks.json",
        "/metrics",
        "/api/v1/dashboard",
        "/dashboard",
        "/dashboard/login",
        "/dashboard/dashboard.js",
    }
    covered = {(m, p) for m, p in served if p in templates} | unauthenticated
    assert served == covered, served - covered
