"""Credentials under attack: wrong secrets, throttling per account and per source address,
revocation on reload (SIGHUP and `cirt-hub reload`, a real `cirt-hub serve`), no secret in
any log line, and the dashboard's security headers and cookie in a real browser.

Loopback has a whole /8, so the tests play several source addresses (127.0.0.2, .3, ...)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import json
import logging
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from hub import control
from hub.credentials import hash_secret, new_secret
from hub.logs import JsonLines
from hub.throttle import Attempt, Lockout, LoginThrottle, LoginThrottling, ThrottlePolicy
from tests.api.test_metrics import scrape, value
from tests.cli.test_serve import CONSOLE_SCRIPT, wait_until_serving
from tests.conftest import ROOT, free_port
from tests.e2e.browser import browser_page
from tests.hubs import RunningHub, member_identity, running_hub
from tests.processes import stop
from tests.stixdata import TLP2, incident_report

TAXII = "application/taxii+json;version=2.1"
COLLECTIONS = "/taxii2/hub/collections/"
pytestmark = pytest.mark.timeout(60)


def basic(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


def bearer(username: str, secret: str) -> str:
    return f"Bearer {username}.{secret}"


async def call(
    url: str, authorization: str | None = None, source: str = "127.0.0.1"
) -> tuple[int, dict[str, str], Any]:
    """GET `url` from the loopback address `source`: status, headers, JSON body (or None)."""
    headers = {"Accept": TAXII}
    if authorization:
        headers["Authorization"] = authorization
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url, headers=headers) as response,
    ):
        body = await response.json(content_type=None) if response.status != 200 else None
        return response.status, dict(response.headers), body


def assert_throttled(status: int, headers: dict[str, str], body: Any, wait: int) -> None:
    assert status == 429, (status, body)
    assert headers["Retry-After"] == str(wait), headers
    assert body["http_status"] == "429" and body["title"] == "Too many requests", body
    assert "too many failed logins" in body["description"], body


def throttling(account: int, address: int) -> LoginThrottling:
    """Lock after `account` / `address` failures in 10 s, for 0.6 s, then 1.2 s (max 4 s):
    Retry-After (whole seconds, rounded up) says 1, then 2."""
    return LoginThrottling(
        account=ThrottlePolicy(failures=account, window=10, lockout=0.6, max_lockout=4),
        address=ThrottlePolicy(failures=address, window=10, lockout=0.6, max_lockout=4),
    )


@asynccontextmanager
async def throttled_hub(
    tmp_path: Path, demo_secrets: Path, account: int, address: int
) -> AsyncIterator[RunningHub]:
    async with running_hub(
        "embedded",
        tmp_path / "data",
        demo_secrets,
        login_throttling=throttling(account, address),
    ) as hub:
        yield hub


async def test_repeated_failures_lock_an_account_from_every_address_until_the_lockout_ends(
    tmp_path: Path, demo_secrets: Path
) -> None:
    async with throttled_hub(tmp_path, demo_secrets, account=3, address=100) as hub:
        url = hub.base_url + COLLECTIONS
        good = hub.password("ke-cirt-read")
        status, headers, body = await call(url, basic("ke-cirt-read", "wrong-1"), "127.0.0.2")
        assert status == 401 and body["http_status"] == "401" and "WWW-Authenticate" in headers
        # The same wrong secret again (a client with a stale secret, retrying) counts once.
        for _ in range(2):
            assert (await call(url, basic("ke-cirt-read", "wrong-1"), "127.0.0.2"))[0] == 401
        assert (await call(url, bearer("ke-cirt-read", "wrong-2"), "127.0.0.2"))[0] == 401
        assert (await call(url, basic("ke-cirt-read", "wrong-3"), "127.0.0.2"))[0] == 401
        # Locked: the right secret too, from another address, Basic or Bearer; no scrypt runs.
        assert_throttled(*await call(url, basic("ke-cirt-read", good), "127.0.0.3"), wait=1)
        assert_throttled(*await call(url, bearer("ke-cirt-read", good), "127.0.0.3"), wait=1)
        # Another account from the guessing address is not affected.
        other = basic("ng-cert-read", hub.password("ng-cert-read"))
        assert (await call(url, other, "127.0.0.2"))[0] == 200

        await asyncio.sleep(0.7)
        # Failing again right after a lockout locks it out for twice as long.
        for n in (4, 5, 6):
            assert (await call(url, basic("ke-cirt-read", f"wrong-{n}"), "127.0.0.2"))[0] == 401
        assert_throttled(*await call(url, basic("ke-cirt-read", good), "127.0.0.3"), wait=2)
        await asyncio.sleep(1.3)
        assert (await call(url, basic("ke-cirt-read", good), "127.0.0.3"))[0] == 200

        # A success clears the account's count: 2 failures, a success, 2 failures: no lockout.
        for n in (7, 8):
            assert (await call(url, basic("ke-cirt-read", f"wrong-{n}")))[0] == 401
        assert (await call(url, bearer("ke-cirt-read", good)))[0] == 200
        for n in (9, 10):
            assert (await call(url, basic("ke-cirt-read", f"wrong-{n}")))[0] == 401
        assert (await call(url, basic("ke-cirt-read", good)))[0] == 200

        samples = await scrape(hub)
        assert value(samples, "cirt_hub_login_lockouts_total", scope="account") == 2
        assert value(samples, "cirt_hub_login_lockouts_total", scope="address") == 0
        assert value(samples, "cirt_hub_login_failures_total") == 12


async def test_failures_from_one_address_across_accounts_lock_that_address_only(
    tmp_path: Path, demo_secrets: Path
) -> None:
    async with throttled_hub(tmp_path, demo_secrets, account=100, address=3) as hub:
        url = hub.base_url + COLLECTIONS
        for username in ("ke-cirt-read", "ng-cert-read", "gh-cert-read"):
            assert (await call(url, basic(username, "guess"), "127.0.0.4"))[0] == 401
        # From that address, even a good secret of a fourth account waits; elsewhere it works.
        good = basic("sn-cert-read", hub.password("sn-cert-read"))
        status, headers, body = await call(url, good, "127.0.0.4")
        assert_throttled(status, headers, body, wait=1)
        assert "from this address" in body["description"]
        assert (await call(url, good, "127.0.0.5"))[0] == 200

        # The dashboard's login form is throttled alike, and says so on the page.
        form = {"username": "hub-operator", "password": hub.password("hub-operator")}
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.4", 0))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.post(hub.base_url + "/dashboard/login", data=form) as response,
        ):
            assert response.status == 429 and response.headers["Retry-After"] == "1"
            assert "too many failed logins" in await response.text()

        await asyncio.sleep(0.7)
        assert (await call(url, good, "127.0.0.4"))[0] == 200
        samples = await scrape(hub)
        assert value(samples, "cirt_hub_login_lockouts_total", scope="address") == 1


async def test_concurrent_guesses_from_one_address_stop_there_and_never_lock_the_owner_out(
    tmp_path: Path, demo_secrets: Path
) -> None:
    # The default limits: 10 per address, 20 per account. Each attempt is counted before
    # its hash runs, so 40 wrong secrets sent at once from one address are cut at its 10.
    async with running_hub("embedded", tmp_path / "data", demo_secrets) as hub:
        url = hub.base_url + COLLECTIONS
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.7", 0), limit=0)
        headers = {"Accept": TAXII}
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

            async def guess(n: int) -> int:
                auth = {"Authorization": basic("ke-cirt-read", f"guess-{n}")}
                async with session.get(url, headers=auth) as response:
                    return response.status

            statuses = await asyncio.gather(*(guess(n) for n in range(40)))
        assert sorted(statuses) == [401] * 10 + [429] * 30, statuses
        # The account's owner, elsewhere, is not locked out by what one address did.
        owner = basic("ke-cirt-read", hub.password("ke-cirt-read"))
        assert (await call(url, owner, "127.0.0.8"))[0] == 200
        samples = await scrape(hub)
        assert value(samples, "cirt_hub_login_lockouts_total", scope="address") == 1
        assert value(samples, "cirt_hub_login_lockouts_total", scope="account") == 0
        assert value(samples, "cirt_hub_login_failures_total") == 10


def test_checks_running_count_against_the_limit_until_they_end() -> None:
    throttle = LoginThrottle(throttling(account=5, address=3), clock=lambda: 0.0)
    running = [throttle.begin("ke-cirt-read", f"guess-{n}", "192.0.2.1") for n in range(3)]
    assert all(isinstance(a, Attempt) for a in running)
    # A fourth different secret waits a moment; the same secret again does not fill more.
    assert throttle.begin("ng-cert-read", "other", "192.0.2.1") == Lockout("address", 1.0, True)
    again = throttle.begin("ke-cirt-read", "guess-0", "192.0.2.1")
    assert isinstance(again, Attempt)
    throttle.abandoned(again)
    # One ends well (its place frees), two fail: no lockout yet, and room for one more.
    throttle.succeeded(running[0])
    assert throttle.failed(running[1]) == [] and throttle.failed(running[2]) == []
    last = throttle.begin("ng-cert-read", "other", "192.0.2.1")
    assert isinstance(last, Attempt)
    assert throttle.failed(last) == [Lockout("address", 0.6)]
    assert throttle.begin("ng-cert-read", "x", "192.0.2.1") == Lockout("address", 0.6)


def test_throttle_memory_stays_bounded_whatever_names_and_addresses_are_sent() -> None:
    now = [0.0]
    throttle = LoginThrottle(
        LoginThrottling(
            account=ThrottlePolicy(failures=3, window=60, lockout=30, max_lockout=900),
            address=ThrottlePolicy(failures=3, window=60, lockout=30, max_lockout=900),
            max_entries=1000,
        ),
        clock=lambda: now[0],
    )

    def fail(username: str, secret: str, address: str) -> None:
        attempt = throttle.begin(username, secret, address)
        assert isinstance(attempt, Attempt), attempt
        throttle.failed(attempt)

    for n in range(20_000):
        now[0] += 0.001
        name = f"user-{n}-" + "x" * 5000  # oversized names are cut to the schema's 64
        fail(name, "guess", f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    assert throttle.sizes == (1000, 1000)
    # IPv6 addresses count per /64: one host cannot walk its network to escape.
    for n in range(3):
        fail("someone", f"guess-{n}", f"2001:db8::{n + 1}")
    locked = throttle.begin("anyone", "secret", "2001:db8::ffff")
    assert isinstance(locked, Lockout) and locked.scope == "address"
    elsewhere = throttle.begin("anyone", "secret", "2001:db8:0:1::1")
    assert isinstance(elsewhere, Attempt)
    # A check that succeeds or is abandoned leaves nothing behind.
    before = throttle.sizes
    throttle.succeeded(elsewhere)
    attempt = throttle.begin("another", "secret", "192.0.2.1")
    assert isinstance(attempt, Attempt)
    throttle.abandoned(attempt)
    assert throttle.sizes == (before[0] - 1, before[1] - 1)


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Every log record of the process, from every library, at DEBUG, as the hub's JSON."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_no_secret_is_ever_logged(tmp_path: Path, demo_secrets: Path) -> None:
    with captured_logs() as logs:
        async with throttled_hub(tmp_path, demo_secrets, account=3, address=5) as hub:
            url = hub.base_url + COLLECTIONS
            good = hub.password("ke-cirt-read")
            wrong = [f"wrong-{new_secret()}" for _ in range(4)]
            pasted = new_secret()  # someone typing the secret into the username field
            attempts = [
                basic("ke-cirt-read", good),
                bearer("ke-cirt-read", good),
                basic(pasted, good),
                *(basic("ke-cirt-read", w) for w in wrong[:2]),
                bearer("ke-cirt-read", wrong[2]),
                basic("ke-cirt-read", wrong[3]),  # locked out by now: 429, no check
                basic("ke-cirt-read", good),
            ]
            for authorization in attempts:
                await call(url, authorization, "127.0.0.6")
            async with aiohttp.ClientSession() as session:
                for password in (hub.password("hub-operator"), wrong[0]):
                    form = {"username": "hub-operator", "password": password}
                    async with session.post(hub.base_url + "/dashboard/login", data=form):
                        pass
                submitter = hub.password("ng-cert-submit")
                identity = member_identity(hub, "ng-cert")
                async with session.post(
                    hub.base_url + COLLECTIONS + "inbox/objects/",
                    json={"objects": incident_report(identity, "ngCERT", TLP2["green"])},
                    headers={
                        "Authorization": basic("ng-cert-submit", submitter),
                        "Content-Type": TAXII,
                        "Accept": TAXII,
                    },
                ) as response:
                    assert response.status == 202
    text = logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    said = [e["message"] for e in lines]
    # The capture saw the hub at work, its lockout warning included...
    assert any(m == "submission accepted" for m in said), said
    assert any("'ke-cirt-read' locked out" in m for m in said), said
    # ...and no secret in any form: as sent, in Basic's base64, in a Bearer token.
    for secret in [good, submitter, hub.password("hub-operator"), pasted, *wrong]:
        assert secret not in text
        for username in ("ke-cirt-read", "hub-operator", "ng-cert-submit", pasted):
            assert basic(username, secret).split()[1] not in text
    assert "Authorization" not in text and "Basic " not in text and "Bearer " not in text


async def test_dashboard_sends_security_headers_and_a_strict_cookie_a_browser_keeps(
    tmp_path: Path, demo_secrets: Path
) -> None:
    async with running_hub("embedded", tmp_path / "data", demo_secrets) as hub:
        operator = hub.password("hub-operator")
        async with aiohttp.ClientSession() as session:
            async with session.get(hub.base_url + "/dashboard/login") as response:
                html = await response.text()
                login_policy = response.headers["Content-Security-Policy"]
                assert_protected(response.headers)
            async with session.post(
                hub.base_url + "/dashboard/login",
                data={"username": "hub-operator", "password": operator},
                allow_redirects=False,
            ) as response:
                assert response.status == 303
                cookie = response.headers["Set-Cookie"]
            for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
                assert flag in cookie, cookie
            auth = {"Authorization": basic("hub-operator", operator)}
            async with session.get(hub.base_url + "/dashboard", headers=auth) as response:
                page = await response.text()
                policy = response.headers["Content-Security-Policy"]
                assert_protected(response.headers)
            async with session.get(hub.base_url + "/dashboard/dashboard.js") as response:
                assert response.content_type == "text/javascript"
                assert response.headers["X-Content-Type-Options"] == "nosniff"
            async with session.get(hub.base_url + "/api/v1/dashboard", headers=auth) as response:
                assert response.headers["X-Content-Type-Options"] == "nosniff"
        for document, csp in ((html, login_policy), (page, policy)):
            directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
            assert directives["script-src"] == "'self'" and "unsafe" not in csp
            assert directives["frame-ancestors"] == "'none'"
            assert directives["default-src"] == "'none'"
            # No inline script, no inline handlers; the page's style blocks go by hash.
            assert not re.search(r"<script(?![^>]*\bsrc=)", document)
            assert not re.search(r"\son[a-z]+=", document)
            for css in re.findall(r"<style>(.*?)</style>", document, re.DOTALL):
                digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
                assert f"'sha256-{digest}'" in directives["style-src"]

        # A real browser over plain http://127.0.0.1: no policy violation, the styles and the
        # script work, and the Secure cookie is kept (loopback is a secure context) but is
        # out of reach of the page's scripts.
        async with browser_page(tmp_path / "chromium") as tab:
            await tab.send(
                "Page.addScriptToEvaluateOnNewDocument",
                source="window.violations = [];"
                "document.addEventListener('securitypolicyviolation',"
                " (e) => window.violations.push(e.violatedDirective));",
            )
            await tab.goto(hub.base_url + "/dashboard/login")
            button = "getComputedStyle(document.getElementById('login')).backgroundColor"
            assert await tab.evaluate(button) == "rgb(31, 95, 153)"
            await tab.evaluate(
                f"document.getElementById('username').value = 'hub-operator';"
                f"document.getElementById('password').value = {json.dumps(operator)};"
                "document.querySelector('form').submit()"
            )
            await tab.wait_for("location.pathname === '/dashboard'")
            await tab.wait_for("document.getElementById('node').textContent.startsWith('node ')")
            assert await tab.evaluate("window.violations") == []
            assert await tab.evaluate("document.cookie") == ""  # HttpOnly
            await tab.send("Network.enable")
            jar = await tab.send("Network.getCookies", urls=[hub.base_url + "/"])
            kept = {c["name"]: c for c in jar["cookies"]}["cirt_hub_session"]
            assert kept["httpOnly"] and kept["secure"] and kept["sameSite"] == "Strict"


async def test_the_dashboard_login_form_refuses_posts_from_other_sites(
    tmp_path: Path, demo_secrets: Path
) -> None:
    async with running_hub("embedded", tmp_path / "data", demo_secrets) as hub:
        form = {"username": "hub-operator", "password": hub.password("hub-operator")}

        async def login(**headers: str) -> tuple[int, str, str | None]:
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    hub.base_url + "/dashboard/login",
                    data=form,
                    headers=headers,
                    allow_redirects=False,
                ) as response,
            ):
                return response.status, await response.text(), response.headers.get("Set-Cookie")

        # Login CSRF: a page elsewhere posting the form (with its own account's secret, to
        # watch what the operator then does) logs nobody in.
        for headers in (
            {"Origin": "https://evil.example"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site", "Origin": hub.base_url},
            {"Sec-Fetch-Site": "same-site"},
        ):
            status, page, cookie = await login(**headers)
            assert (status, cookie) == (403, None), headers
            assert "own login page" in page
        # The hub's own page, as browsers send it (old ones: Origin alone), and scripts.
        for headers in (
            {"Sec-Fetch-Site": "same-origin", "Origin": hub.base_url},
            {"Origin": hub.base_url},
            {},
        ):
            status, _, cookie = await login(**headers)
            assert status == 303 and cookie is not None, headers


def assert_protected(headers: Any) -> None:
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"


# --- revocation on reload, against a real `cirt-hub serve` -------------------------------


def federation_file(path: Path, secrets: dict[str, str], **changes: Any) -> None:
    """examples/federation.yaml with these accounts' secrets (username → secret), and
    `changes`: disabled=[usernames], extra={username: (member, roles, secret)},
    rate_limits={member: {...}}, sharing={member: {...}}, raw={username: secret_hash}."""
    data = yaml.safe_load((ROOT / "examples" / "federation.yaml").read_text())
    members = {m["id"]: m for m in data["members"]}
    for username, (member, roles, secret) in changes.get("extra", {}).items():
        account = {"username": username, "roles": roles, "secret_hash": hash_secret(secret)}
        members[member]["accounts"].append(account)
    for member_id, limits in changes.get("rate_limits", {}).items():
        members[member_id]["rate_limits"] = limits
    for member_id, sharing in changes.get("sharing", {}).items():
        members[member_id]["sharing"] = sharing
    for account in [*data["hub"]["accounts"], *(a for m in data["members"] for a in m["accounts"])]:
        name = account["username"]
        if name in secrets:
            account["secret_hash"] = HASHES.setdefault(secrets[name], hash_secret(secrets[name]))
        if name in changes.get("raw", {}):
            account["secret_hash"] = changes["raw"][name]
        if name in changes.get("disabled", ()):
            account["disabled"] = True
    path.write_text(yaml.safe_dump(data, sort_keys=False))


HASHES: dict[str, str] = {}  # secret → its hash, made once: scrypt is slow on purpose


def wait_for_status(url: str, authorization: str, expected: int, deadline: float = 10) -> None:
    import urllib.error
    import urllib.request

    end = time.monotonic() + deadline
    got = None
    while time.monotonic() < end:
        request = urllib.request.Request(url, headers={"Authorization": authorization})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                got = response.status
        except urllib.error.HTTPError as exc:
            got = exc.code
        if got == expected:
            return
        time.sleep(0.1)
    pytest.fail(f"{url} answered {got}, not {expected}, within {deadline} s")


def status_of(url: str, authorization: str, body: bytes | None = None) -> int:
    import urllib.error
    import urllib.request

    headers = {"Authorization": authorization, "Accept": TAXII}
    if body is not None:
        headers["Content-Type"] = TAXII
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_for_log(log: Path, needle: str, deadline: float = 10) -> dict[str, Any]:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        for line in log.read_text().splitlines():
            if line.startswith("{") and needle in line:
                return json.loads(line)
        time.sleep(0.1)
    pytest.fail(f"no log line with {needle!r} within {deadline} s:\n{log.read_text()}")


def reload_command(data_dir: Path) -> int:
    """`cirt-hub reload --data-dir DATA_DIR`, run in this process (no interpreter start)."""
    return control.run(argparse.Namespace(data_dir=data_dir))


def test_revoked_and_rotated_secrets_stop_working_on_reload_without_a_restart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secrets = {name: new_secret() for name in ("ng-cert-read", "ng-cert-submit", "hub-operator")}
    config, data_dir, log = tmp_path / "federation.yaml", tmp_path / "data", tmp_path / "hub.log"
    federation_file(config, secrets)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    collections = base + COLLECTIONS
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                *(str(CONSOLE_SCRIPT), "serve", "--config", str(config)),
                *("--data-dir", str(data_dir), "--port", str(port), "--insecure-dev-keys"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_serving(f"{base}/readyz", proc)
        # The pid file is written once SIGHUP is handled: before it, SIGHUP would kill.
        end = time.monotonic() + 10
        while not (data_dir / "serve.pid").exists():
            assert time.monotonic() < end, "no serve.pid"
            time.sleep(0.05)
        reader = secrets["ng-cert-read"]
        assert status_of(collections, bearer("ng-cert-read", reader)) == 200  # now verified

        # Revoke ng-cert-read, add an account; SIGHUP: the same process takes both at once.
        newcomer = new_secret()
        federation_file(
            config,
            secrets,
            disabled=["ng-cert-read"],
            extra={"ng-cert-analyst": ("ng-cert", ["read"], newcomer)},
        )
        proc.send_signal(signal.SIGHUP)
        wait_for_status(collections, bearer("ng-cert-read", reader), 401)
        assert status_of(collections, basic("ng-cert-read", reader)) == 401
        assert status_of(collections, bearer("ng-cert-analyst", newcomer)) == 200
        submitter = secrets["ng-cert-submit"]
        assert status_of(collections, basic("ng-cert-submit", submitter)) == 200
        applied = wait_for_log(log, "reload: ")
        assert "ng-cert-analyst, ng-cert-read" in applied["message"]
        assert "needs a restart" not in applied["message"]

        # A file that does not validate (a secret pasted where its hash goes): `cirt-hub
        # reload` names the problem and leaves the hub alone; SIGHUP is refused and logged.
        federation_file(config, secrets, raw={"ng-cert-submit": submitter})
        assert reload_command(data_dir) == 2
        refused = capsys.readouterr()
        assert f"{config}:" in refused.err and "secret_hash" in refused.err, refused
        assert submitter not in refused.err + refused.out
        proc.send_signal(signal.SIGHUP)
        error = wait_for_log(log, "reload refused")
        assert error["level"] == "error" and "secret_hash" in error["message"]
        assert status_of(collections, basic("ng-cert-submit", submitter)) == 200  # old kept
        assert status_of(collections, basic("ng-cert-read", reader)) == 401  # still revoked

        # Rotation, a rate limit and a sharing rule through `cirt-hub reload`: the first two
        # apply at once, the rule waits for a restart and the log says so.
        rotated = {**secrets, "ng-cert-submit": new_secret()}
        federation_file(
            config,
            rotated,
            rate_limits={"ng-cert": {"requests_per_second": 0.2}},
            sharing={"ng-cert": {"default_tlp": "green"}},
        )
        assert reload_command(data_dir) == 0, capsys.readouterr()
        wait_for_status(collections, basic("ng-cert-submit", submitter), 401)
        fresh = basic("ng-cert-submit", rotated["ng-cert-submit"])
        assert status_of(collections, fresh) == 200
        restart = wait_for_log(log, "needs a restart")
        assert "members ng-cert" in restart["message"]
        identity = "identity--c4801c91-a321-4d5c-9a4f-aee9b0f362a2"
        body = json.dumps({"objects": incident_report(identity, "ngCERT", TLP2["green"])})
        inbox = collections + "inbox/objects/"
        assert status_of(inbox, fresh, body.encode()) == 202
        assert status_of(inbox, fresh, body.encode()) == 429  # 0.2/s: the next in 5 s

        assert proc.poll() is None  # one process all along: nothing restarted
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert not (data_dir / "serve.pid").exists()
        capsys.readouterr()
        assert reload_command(data_dir) == 1
        assert "no hub is serving" in capsys.readouterr().err
    finally:
        stop(proc)
    printed = log.read_text()
    assert "Traceback" not in printed, printed
    for secret in [*secrets.values(), *rotated.values(), newcomer]:
        assert secret not in printed
