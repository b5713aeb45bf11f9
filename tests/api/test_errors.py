"""Bad input gets a clear 4xx with a TAXII error body saying what and where; never a 5xx."""

from __future__ import annotations

import asyncio
import base64
import io

import aiohttp
import orjson
import pytest

from tests.api.test_metrics import scrape, value
from tests.hubs import RunningHub
from tests.stixdata import TLP2, incident_report

TAXII = "application/taxii+json;version=2.1"
pytestmark = pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)


def basic(hub: RunningHub, username: str, password: str | None = None) -> dict[str, str]:
    secret = hub.password(username) if password is None else password
    token = base64.b64encode(f"{username}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Accept": TAXII}


def green_envelope(hub: RunningHub, member: str) -> bytes:
    identity = hub.settings.federation.member(member).identity
    return orjson.dumps({"objects": incident_report(identity, member, TLP2["green"])})


async def call(method: str, url: str, **kwargs) -> tuple[int, dict, dict]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as r:
        body = await r.read()
        return r.status, dict(r.headers), (orjson.loads(body) if body else {})


def assert_taxii_error(status: int, headers: dict, body: dict, expected: int, words: str) -> None:
    assert status == expected, body
    assert headers["Content-Type"] == TAXII
    assert body["http_status"] == str(expected)
    assert body["title"]
    assert words in body["description"], body["description"]


async def test_no_or_wrong_credentials_get_401_with_a_challenge(hub: RunningHub) -> None:
    url = hub.api_root
    status, headers, body = await call("GET", url, headers={"Accept": TAXII})
    assert_taxii_error(status, headers, body, 401, "needs HTTP Basic or Bearer")
    assert headers["WWW-Authenticate"].startswith("Basic")
    status, headers, body = await call("GET", url, headers=basic(hub, "ng-cert-read", "nope"))
    assert_taxii_error(status, headers, body, 401, "wrong secret")
    status, headers, body = await call("GET", url, headers=basic(hub, "nobody", "nope"))
    assert_taxii_error(status, headers, body, 401, "unknown account")
    status, headers, body = await call(
        "GET", url, headers={"Authorization": "Basic %%%", "Accept": TAXII}
    )
    assert_taxii_error(status, headers, body, 401, "not base64")


async def test_bearer_token_is_username_dot_secret(hub: RunningHub) -> None:
    token = f"ng-cert-read.{hub.password('ng-cert-read')}"
    status, _, body = await call(
        "GET", hub.api_root, headers={"Authorization": f"Bearer {token}", "Accept": TAXII}
    )
    assert status == 200 and body["max_content_length"] > 0


async def test_accept_and_content_type_are_negotiated(hub: RunningHub) -> None:
    headers = {**basic(hub, "ng-cert-read"), "Accept": "application/xml"}
    status, h, body = await call("GET", hub.api_root, headers=headers)
    assert_taxii_error(status, h, body, 406, "application/xml")
    headers = {**basic(hub, "ng-cert-submit"), "Content-Type": "application/json"}
    status, h, body = await call(
        "POST", hub.collection_url("inbox") + "objects/", headers=headers, data=b"{}"
    )
    assert_taxii_error(status, h, body, 415, "Content-Type was 'application/json'")


@pytest.mark.parametrize(
    ("payload", "expected", "words"),
    [
        (b"{not json", 400, "not JSON"),
        (b"[]", 400, "a JSON object"),
        (b'{"objects": []}', 400, "at least one object"),
        (b'{"objects": [{"type": "indicator"}]}', 422, "objects[0] has no 'id'"),
        (b'{"objects": [{"id": "x--1"}, 7]}', 422, "objects[1] is not a JSON object"),
    ],
)
async def test_malformed_envelopes_are_refused_before_anything_is_stored(
    hub: RunningHub, payload: bytes, expected: int, words: str
) -> None:
    headers = {**basic(hub, "ng-cert-submit"), "Content-Type": TAXII}
    status, h, body = await call(
        "POST", hub.collection_url("inbox") + "objects/", headers=headers, data=payload
    )
    assert_taxii_error(status, h, body, expected, words)


async def test_oversized_body_gets_413(hub: RunningHub) -> None:
    limit = hub.settings.max_content_length
    headers = {**basic(hub, "ng-cert-submit"), "Content-Type": TAXII}
    payload = io.BytesIO(b'{"objects": [{"id": "x--1", "pad": "' + b"a" * limit + b'"}]}')
    status, h, body = await call(
        "POST", hub.collection_url("inbox") + "objects/", headers=headers, data=payload
    )
    assert_taxii_error(status, h, body, 413, "max_content_length")


async def test_roles_and_collections_are_enforced(hub: RunningHub) -> None:
    report = green_envelope(hub, "ng-cert")
    reader = {**basic(hub, "ng-cert-read"), "Content-Type": TAXII}
    status, h, body = await call(
        "POST", hub.collection_url("inbox") + "objects/", headers=reader, data=report
    )
    assert_taxii_error(status, h, body, 403, "needs the 'submit' role")
    submitter = basic(hub, "ng-cert-submit")
    status, h, body = await call("GET", hub.collection_url("inbox") + "objects/", headers=submitter)
    assert_taxii_error(status, h, body, 403, "may not read")
    status, h, body = await call("GET", hub.api_root + "collections/no-such/", headers=submitter)
    assert_taxii_error(status, h, body, 404, "no collection 'no-such'")
    operator = basic(hub, "hub-operator")
    status, h, body = await call("GET", hub.api_root + "collections/", headers=operator)
    assert status == 200 and body == {}  # operators run the hub; they read no feeds


async def test_a_status_is_visible_only_to_its_submitter(hub: RunningHub) -> None:
    report = green_envelope(hub, "ng-cert")
    headers = {**basic(hub, "ng-cert-submit"), "Content-Type": TAXII}
    status, _, accepted = await call(
        "POST", hub.collection_url("inbox") + "objects/", headers=headers, data=report
    )
    assert status == 202 and accepted["status"] == "pending" and accepted["pending_count"] == 4
    url = f"{hub.api_root}status/{accepted['id']}/"
    status, _, mine = await call("GET", url, headers=basic(hub, "ng-cert-read"))
    assert status == 200 and mine["id"] == accepted["id"]
    status, h, body = await call("GET", url, headers=basic(hub, "gh-cert-submit"))
    assert_taxii_error(status, h, body, 404, "no status")


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("limit=abc", "limit='abc'"),
        ("limit=0", "limit='0'"),
        ("limit=%C2%B2", "limit='²'"),
        ("next=garbage", "not a cursor"),
        # base64 of "v1:<epoch>:99999999999999999999999": a number SQLite cannot hold
        ("next=djE6YWJjOjk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "not a cursor"),
        ("added_after=yesterday", "added_after='yesterday'"),
        ("added_after=2026-01-01", "with a time zone"),
        ("added_after=0001-01-01T00:00:00%2B01:00", "not a valid time"),
        ("match[version]=0001-01-01T00:00:00%2B01:00", "not a valid time"),
        ("match[id]=nope", "not a STIX identifier"),
        ("match[version]=latest", "match[version]='latest'"),
        ("colour=red", "colour"),
    ],
)
async def test_bad_query_parameters_get_400(hub: RunningHub, query: str, words: str) -> None:
    url = hub.collection_url("region-west-africa") + "objects/?" + query
    status, h, body = await call("GET", url, headers=basic(hub, "ng-cert-read"))
    assert_taxii_error(status, h, body, 400, words)


async def test_unknown_routes_and_methods_answer_in_taxii_form(hub: RunningHub) -> None:
    status, h, body = await call(
        "GET", hub.api_root + "nothing-here/", headers=basic(hub, "ng-cert-read")
    )
    assert_taxii_error(status, h, body, 404, "Not Found")
    status, h, body = await call(
        "DELETE", hub.api_root + "collections/", headers=basic(hub, "ng-cert-read")
    )
    assert status == 405 and body["http_status"] == "405"
    # DELETE of an object says how to withdraw it instead.
    one = hub.collection_url("inbox") + "objects/indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f/"
    status, h, body = await call("DELETE", one, headers=basic(hub, "ng-cert-submit"))
    assert_taxii_error(status, h, body, 405, "with `revoked: true`")
    status, h, body = await call("PUT", hub.api_root, headers=basic(hub, "ng-cert-read"))
    assert_taxii_error(status, h, body, 405, "PUT is not allowed here; allowed: GET")


async def test_credentials_that_are_not_ascii_or_utf8_get_401(hub: RunningHub) -> None:
    status, h, body = await call(
        "GET", hub.api_root, headers={"Authorization": "Basic é", "Accept": TAXII}
    )
    assert_taxii_error(status, h, body, 401, "not base64")
    # Raw bytes that are not UTF-8, as a broken client could send them.
    host, port = hub.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET /taxii2/hub/ HTTP/1.1\r\nHost: x\r\nAccept: "
        + TAXII.encode()
        + b"\r\nAuthorization: Bearer ng-cert-read.\xff\xfe\r\nConnection: close\r\n\r\n"
    )
    response = await reader.read()
    writer.close()
    assert response.startswith(b"HTTP/1.1 401"), response[:200]
    assert b"UTF-8" in response


async def test_integers_stix_cannot_hold_are_refused_not_rounded(hub: RunningHub) -> None:
    headers = {**basic(hub, "ng-cert-submit"), "Content-Type": TAXII}
    obj = (
        b'{"type": "x-custom", "spec_version": "2.1", "id": "x-custom--'
        b'5f1c2b8e-4a8a-4c27-9b1e-2a6f1e0c9d11", "x_count": 123456789012345678901234567890}'
    )
    status, h, body = await call(
        "POST",
        hub.collection_url("inbox") + "objects/",
        headers=headers,
        data=b'{"objects": [' + obj + b"]}",
    )
    assert_taxii_error(status, h, body, 422, "outside the range STIX allows")
    for digits, expected in ((30, 422), (300, 422), (400, 400)):  # 400: not even a double
        number = b"9" * digits
        status, h, body = await call(
            "POST",
            hub.collection_url("inbox") + "objects/",
            headers=headers,
            data=b'{"objects": [{"id": "x--1", "n": ' + number + b"}]}",
        )
        assert status == expected and body["http_status"] == str(expected), body


async def test_a_cursor_from_another_view_is_refused(hub: RunningHub) -> None:
    from hub.api.taxii.query import encode_cursor

    url = hub.collection_url("region-west-africa") + "objects/?next=" + encode_cursor("0ther", 5)
    status, h, body = await call("GET", url, headers=basic(hub, "ng-cert-read"))
    assert_taxii_error(status, h, body, 400, "not a cursor")
    url = hub.collection_url("region-west-africa") + "objects/?next=" + encode_cursor("abc123", 5)
    status, h, body = await call("GET", url, headers=basic(hub, "ng-cert-read"))
    assert_taxii_error(status, h, body, 400, "another node")


@pytest.mark.parametrize("encoding", ["br", "x-unknown", "gzip, br", "compress"])
async def test_a_body_in_an_encoding_the_hub_does_not_decode_gets_415(
    hub: RunningHub, encoding: str
) -> None:
    headers = {**basic(hub, "ng-cert-submit"), "Content-Type": TAXII, "Content-Encoding": encoding}
    status, h, body = await call(
        "POST", hub.collection_url("inbox") + "objects/", headers=headers, data=b"\x8b\x00\x01"
    )
    assert_taxii_error(status, h, body, 415, "zstd, gzip, deflate or identity")
    assert f"Content-Encoding {encoding!r} is not supported" in body["description"]
    assert "install" not in body["description"]
    assert h["Accept-Encoding"] == "zstd, gzip, deflate"  # RFC 9110 12.5.3: what would do


async def raw_exchange(hub: RunningHub, request: bytes) -> tuple[int, dict[str, str], dict]:
    """Send bytes no HTTP client would, and read the answer until the hub closes."""
    host, port = hub.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        response = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, payload = response.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, orjson.loads(payload)


@pytest.mark.parametrize(
    ("request_bytes", "words"),
    [
        (b"GET /taxii2/ HTTP/1.1\r\nHost x\r\n\r\n", "Invalid header token"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "not valid HTTP/1.1"),
        (
            b"GET /taxii2/ HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20_000 + b"\r\n\r\n",
            "more than 8190 bytes",
        ),
        (
            b"POST /dashboard/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            "Content-Length",
        ),
    ],
)
async def test_requests_that_are_not_http_get_a_taxii_error(
    hub: RunningHub, request_bytes: bytes, words: str
) -> None:
    status, headers, body = await raw_exchange(hub, request_bytes)
    assert_taxii_error(status, headers, body, 400, words)
    assert headers["Server"] == "cirt-hub"
    samples = await scrape(hub)
    assert (
        value(samples, "cirt_hub_http_requests_total", route="malformed", method="", status="400")
        == 1
    )


async def test_answers_name_no_software_versions(hub: RunningHub) -> None:
    for url, headers in (
        (hub.base_url + "/taxii2/", {"Accept": TAXII}),
        (hub.api_root, basic(hub, "ng-cert-read")),
        (hub.api_root + "nothing-here/", basic(hub, "ng-cert-read")),
        (hub.base_url + "/dashboard", {}),
    ):
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers=headers, allow_redirects=False) as response,
        ):
            assert response.headers["Server"] == "cirt-hub", (url, response.headers)
