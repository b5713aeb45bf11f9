"""HTTPS and mutual TLS over a real hub: OASIS taxii2-client checking the hub against a test
CA, client certificates that log in as the account pinning their fingerprint, and the
certificates, headers and plain-HTTP clients that must be turned away."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from aiohttp import web
from taxii2client.v21 import Server

from hub.federation import Account, Federation, FederationError, parse_federation
from hub.tls import (
    KEY_PASSWORD_ENV,
    TlsError,
    TlsFiles,
    fingerprint,
    normal_fingerprint,
    tls_files,
)
from tests.conftest import ROOT, free_port
from tests.hubs import RunningHub, member_identity, running_hub
from tests.security.tls_pki import Issued, authority, issue
from tests.stixdata import TLP2, incident_report

TAXII = "application/taxii+json;version=2.1"
module_loop = pytest.mark.asyncio(loop_scope="module")  # the loop the module's hub runs on
COLLECTIONS = "/taxii2/hub/collections/"


@dataclass(frozen=True)
class Pki:
    folder: Path
    ca: Path
    server: Issued
    clients: dict[str, Issued]

    def context(self, client: str | None = None) -> ssl.SSLContext:
        """A client's context: trusts the test CA, presents `client`'s certificate if named."""
        context = ssl.create_default_context(cafile=self.ca)
        if client is not None:
            context.load_cert_chain(self.clients[client].cert, self.clients[client].key)
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = authority(folder, "test-ca")
    rogue = authority(folder, "rogue-ca")
    return Pki(
        folder=folder,
        ca=ca.path,
        server=issue(ca, folder, "hub", server=True),
        clients={
            "ke-cirt": issue(ca, folder, "ke-cirt-client"),
            "ng-cert": issue(ca, folder, "ng-cert-client"),
            "unmapped": issue(ca, folder, "unmapped-client"),
            "expired": issue(ca, folder, "expired-client", expired=True),
            "rogue": issue(rogue, folder, "rogue-client"),
        },
    )


def pinned(pki: Pki) -> Callable[[Federation], Federation]:
    """ke-cirt-read pins the ke-cirt certificate and also the expired and the rogue one (so
    only the TLS checks can refuse those); ng-cert-read pins the ng-cert certificate."""
    owners = {
        "ke-cirt-read": {pki.clients[n].fingerprint for n in ("ke-cirt", "expired", "rogue")},
        "ng-cert-read": {pki.clients["ng-cert"].fingerprint},
    }

    def account(a: Account) -> Account:
        return replace(a, certificates=frozenset(owners.get(a.username, ())))

    def adjust(federation: Federation) -> Federation:
        members = tuple(
            replace(m, accounts=tuple(account(a) for a in m.accounts)) for m in federation.members
        )
        return replace(federation, members=members)

    return adjust


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hub(
    tmp_path_factory: pytest.TempPathFactory, demo_secrets: Path, pki: Pki
) -> AsyncIterator[RunningHub]:
    """One hub for the module (a start and stop cost ~3 s): HTTPS, client CA, pins."""
    files = TlsFiles(pki.server.cert, pki.server.key, client_ca=pki.ca)
    data_dir = tmp_path_factory.mktemp("hub") / "data"
    async with running_hub(
        "embedded", data_dir, demo_secrets, adjust=pinned(pki), tls=files
    ) as running:
        yield running


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> tuple[str, bytes | None]:
    """A handshake run in memory: why `server` refused `client`, or "accepted" and the
    client certificate it got (deterministic, unlike reading an alert off a socket that
    the hub may already have reset)."""
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    near = client.wrap_bio(client_in, client_out, server_hostname="localhost")
    far = server.wrap_bio(server_in, server_out, server_side=True)
    for _ in range(8):
        with contextlib.suppress(ssl.SSLWantReadError):
            near.do_handshake()
        server_in.write(client_out.read())
        try:
            far.do_handshake()
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLCertVerificationError as exc:
            return exc.verify_message, None
        client_in.write(server_out.read())
    return "accepted", far.getpeercert(binary_form=True)


def basic(hub: RunningHub, username: str, password: str | None = None) -> str:
    secret = password or hub.password(username)
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


async def get(
    url: str, context: ssl.SSLContext, authorization: str | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Accept": TAXII} | ({"Authorization": authorization} if authorization else {})
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers, ssl=context) as response,
    ):
        return response.status, await response.json(content_type=None)


async def visible(hub: RunningHub, context: ssl.SSLContext, auth: str | None = None) -> set[str]:
    status, body = await get(hub.base_url + COLLECTIONS, context, auth)
    assert status == 200, body
    return {c["alias"] for c in body["collections"]}


@module_loop
async def test_taxii2_client_round_trip_over_https(
    hub: RunningHub, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert hub.base_url.startswith("https://127.0.0.1:")
    # requests lets these override a session's `verify` (psf/requests#3829), so a machine
    # that sets them would make taxii2-client's `verify=` meaningless.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    report = incident_report(member_identity(hub, "ke-cirt"), "KE-CIRT", TLP2["clear"])
    verify = str(pki.ca)

    def round_trip() -> tuple[Any, set[str], set[str]]:
        def root(**login: Any) -> Any:
            return Server(f"{hub.base_url}/taxii2/", verify=verify, **login).default

        submitter = root(user="ke-cirt-submit", password=hub.password("ke-cirt-submit"))
        inbox = next(c for c in submitter.collections if c.alias == "inbox")
        status = inbox.add_objects({"objects": report}, poll_interval=0.05, timeout=30)
        # Basic over TLS without a client certificate, although the hub asks for one.
        reader = root(user="ng-cert-read", password=hub.password("ng-cert-read"))
        by_password = next(c for c in reader.collections if c.alias == "public")
        # A client certificate and no password at all: taxii2-client's `cert=`.
        ke = pki.clients["ke-cirt"]
        by_certificate = next(
            c for c in root(cert=(str(ke.cert), str(ke.key))).collections if c.alias == "public"
        )
        return (
            status,
            {o["id"] for o in by_password.get_objects()["objects"]},
            {o["id"] for o in by_certificate.get_objects()["objects"]},
        )

    status, read_by_password, read_by_certificate = await asyncio.to_thread(round_trip)
    assert status.status == "complete" and status.success_count == len(report)
    sent = {o["id"] for o in report}
    assert sent <= read_by_password and sent <= read_by_certificate


@module_loop
async def test_a_client_certificate_logs_in_as_the_account_that_pins_it(
    hub: RunningHub, pki: Pki
) -> None:
    ke = pki.context("ke-cirt")
    as_ke = await visible(hub, ke)
    assert "member-ke-cirt" in as_ke and "member-ng-cert" not in as_ke
    assert "member-ng-cert" in await visible(hub, pki.context("ng-cert"))
    # Its own password (or token) beside its own certificate is fine; a wrong one is not.
    assert await visible(hub, ke, basic(hub, "ke-cirt-read")) == as_ke
    bearer = f"Bearer ke-cirt-read.{hub.password('ke-cirt-read')}"
    assert await visible(hub, ke, bearer) == as_ke
    status, body = await get(hub.base_url + COLLECTIONS, ke, basic(hub, "ke-cirt-read", "wrong"))
    assert status == 401 and body["http_status"] == "401"
    # Without a certificate: Basic and Bearer over TLS, and nothing without either.
    assert await visible(hub, pki.context(), bearer) == as_ke
    status, _ = await get(hub.base_url + COLLECTIONS, pki.context())
    assert status == 401


@module_loop
async def test_another_members_certificate_with_this_members_password_is_refused(
    hub: RunningHub, pki: Pki
) -> None:
    status, body = await get(
        hub.base_url + COLLECTIONS, pki.context("ng-cert"), basic(hub, "ke-cirt-read")
    )
    assert status == 401
    assert body["title"] and "ng-cert-read" in body["description"]
    assert "another account" in body["description"]


@module_loop
async def test_a_certificate_no_account_pins_is_refused(hub: RunningHub, pki: Pki) -> None:
    for authorization in (None, basic(hub, "ke-cirt-read")):
        status, body = await get(hub.base_url + COLLECTIONS, pki.context("unmapped"), authorization)
        assert status == 401 and body["http_status"] == "401"
        assert pki.clients["unmapped"].fingerprint in body["description"]
        assert "not mapped to any account" in body["description"]


@pytest.mark.parametrize(
    ("client", "reason"),
    [("expired", "certificate has expired"), ("rogue", "unable to get local issuer certificate")],
)
@module_loop
async def test_expired_or_unknown_ca_certificates_fail_the_handshake(
    hub: RunningHub, pki: Pki, client: str, reason: str
) -> None:
    assert await visible(hub, pki.context("ke-cirt"))  # the hub answers a good certificate
    # TLS 1.3 ends the client's side of the handshake before the hub has checked its
    # certificate: the refusal arrives as the connection is used, and no answer comes.
    with pytest.raises(aiohttp.ClientError):
        await get(hub.base_url + COLLECTIONS, pki.context(client))
    tls12 = pki.context(client)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    port = int(hub.base_url.rpartition(":")[2])
    with pytest.raises(OSError):  # the hub's alert, or its reset when it closes first
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls12)
        writer.close()
    # Why: the hub's own context, in a handshake run in memory.
    served = TlsFiles(pki.server.cert, pki.server.key, pki.ca).context(environ={})
    assert handshake(served, pki.context(client)) == (reason, None)
    assert handshake(served, pki.context("ke-cirt"))[0] == "accepted"


@module_loop
async def test_plain_http_to_the_tls_port_gets_no_answer(hub: RunningHub) -> None:
    plain = hub.base_url.replace("https://", "http://") + "/taxii2/"
    with pytest.raises(aiohttp.ClientError):
        async with aiohttp.ClientSession() as session, session.get(plain) as response:
            await response.read()


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


@asynccontextmanager
async def tls_proxy(upstream: str, pki: Pki, port: int) -> AsyncIterator[str]:
    """A TLS-terminating reverse proxy on 127.0.0.1:`port` in front of `upstream` (plain
    HTTP), as README suggests one: it passes Host on and adds X-Forwarded-Proto/-Host/-For."""

    async def forward(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers.pop("Content-Encoding", None)  # the body is read decoded
        headers |= {
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": request.host,
            "X-Forwarded-For": request.remote or "",
        }
        async with session.request(
            request.method,
            upstream + request.path_qs,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as answer:
            kept = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() not in _HOP_BY_HOP | {"content-encoding"}
            }
            return web.Response(status=answer.status, body=await answer.read(), headers=kept)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server.cert, pki.server.key)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    async with aiohttp.ClientSession() as session:
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
            yield f"https://127.0.0.1:{port}"
        finally:
            await runner.cleanup()


@pytest.mark.parametrize("public_url", [False, True], ids=["relative", "public-url"])
async def test_behind_a_tls_proxy_taxii2_client_is_only_ever_sent_to_https(
    tmp_path: Path, demo_secrets: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch, public_url: bool
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    port = free_port()
    proxied = f"https://127.0.0.1:{port}"
    async with (
        running_hub(
            "embedded",
            tmp_path / "data",
            demo_secrets,
            public_url=f"{proxied}/" if public_url else None,
        ) as hub,
        tls_proxy(hub.base_url, pki, port) as proxy,
    ):
        # The hub speaks plain HTTP behind the proxy, which tells it "https" in
        # X-Forwarded-Proto; the hub trusts no such header, and needs none.
        assert hub.base_url.startswith("http://")
        report = incident_report(member_identity(hub, "ke-cirt"), "KE-CIRT", TLP2["clear"])

        def round_trip() -> tuple[str, Any, set[str]]:
            def root(username: str) -> Any:
                server = Server(
                    f"{proxy}/taxii2/",
                    user=username,
                    password=hub.password(username),
                    verify=str(pki.ca),
                )
                return server.default

            submitter = root("ke-cirt-submit")
            inbox = next(c for c in submitter.collections if c.alias == "inbox")
            status = inbox.add_objects({"objects": report}, poll_interval=0.05, timeout=30)
            public = next(c for c in root("ng-cert-read").collections if c.alias == "public")
            return submitter.url, status, {o["id"] for o in public.get_objects()["objects"]}

        api_root, status, read = await asyncio.to_thread(round_trip)
    # Every request after discovery (credentials included) went to the proxy's https://.
    assert api_root == f"{proxied}/taxii2/hub/"
    assert status.status == "complete" and status.success_count == len(report)
    assert {o["id"] for o in report} <= read


def test_without_a_client_ca_no_certificate_is_asked_for(pki: Pki) -> None:
    ke = pki.context("ke-cirt")
    mutual = TlsFiles(pki.server.cert, pki.server.key, pki.ca).context(environ={})
    accepted, certificate = handshake(mutual, ke)
    assert accepted == "accepted" and certificate is not None
    assert fingerprint(certificate) == pki.clients["ke-cirt"].fingerprint
    plain = TlsFiles(pki.server.cert, pki.server.key).context(environ={})
    assert plain.verify_mode == ssl.CERT_NONE
    assert handshake(plain, ke) == ("accepted", None)  # the client had one, and kept it


# Startup: files that cannot be used stop the hub with a message naming them.


def test_tls_files_that_cannot_be_used_are_named(pki: Pki, tmp_path: Path) -> None:
    server, other = pki.server, pki.clients["ke-cirt"]
    missing = tmp_path / "missing.pem"
    cases: list[tuple[TlsFiles, str]] = [
        (TlsFiles(missing, server.key), f"--tls-cert {missing}: cannot read"),
        (TlsFiles(server.key, server.key), f"--tls-cert {server.key}: holds no PEM certificate"),
        (TlsFiles(server.cert, server.cert), f"--tls-key {server.cert}: not a PEM private key"),
        (TlsFiles(server.cert, other.key), f"--tls-key {other.key} does not go with"),
        (TlsFiles(server.cert, server.key, missing), f"--tls-client-ca {missing}: cannot read"),
        (
            TlsFiles(pki.clients["expired"].cert, pki.clients["expired"].key),
            f"--tls-cert {pki.clients['expired'].cert}: expired on",
        ),
    ]
    for files, message in cases:
        with pytest.raises(TlsError) as refused:
            files.context(environ={})
        assert str(refused.value).startswith(message), str(refused.value)
    context = TlsFiles(server.cert, server.key, pki.ca).context(environ={})
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_OPTIONAL


def test_an_encrypted_server_key_takes_its_password_from_the_environment(
    pki: Pki, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pki.server.key.read_bytes(), None)
    sealed = tmp_path / "sealed.key"
    sealed.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"key password"),
        )
    )
    files = TlsFiles(pki.server.cert, sealed)
    with pytest.raises(TlsError, match=f"the key is encrypted: set {KEY_PASSWORD_ENV}"):
        files.context(environ={})
    with pytest.raises(TlsError, match=f"or {KEY_PASSWORD_ENV} is not its password"):
        files.context(environ={KEY_PASSWORD_ENV: "wrong"})
    assert files.context(environ={KEY_PASSWORD_ENV: "key password"})


def test_serve_exits_2_naming_a_tls_file_it_cannot_use(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-cert.pem"
    argv = [sys.executable, "-m", "hub", "serve", "--data-dir", str(tmp_path)]
    argv += ["--port", str(free_port()), "--tls-cert", str(missing)]
    argv += ["--tls-key", str(pki.server.key)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"--tls-cert {missing}: cannot read: No such file or directory" in done.stderr


def test_tls_options_must_add_up() -> None:
    cert, key, ca = Path("cert.pem"), Path("key.pem"), Path("ca.pem")
    assert tls_files(None, None, None) is None
    assert tls_files(cert, key, ca) == TlsFiles(cert.resolve(), key.resolve(), ca.resolve())
    with pytest.raises(TlsError, match="--tls-cert and --tls-key: give both"):
        tls_files(cert, None, None)
    with pytest.raises(TlsError, match="--tls-client-ca: needs --tls-cert and --tls-key"):
        tls_files(None, None, ca)


# The federation file: `certificates` under an account.


def _federation_with(certificates: dict[int, list[str]]) -> Federation:
    data = yaml.safe_load((ROOT / "examples/federation.yaml").read_text())
    for index, listed in certificates.items():
        data["members"][0]["accounts"][index]["certificates"] = listed
    return parse_federation(yaml.safe_dump(data), "federation.yaml")


def test_federation_certificates_are_pinned_by_fingerprint_in_either_form(pki: Pki) -> None:
    plain = pki.clients["ke-cirt"].fingerprint
    colons = "SHA256:" + ":".join(
        plain[7:][i : i + 2].upper() for i in range(0, 64, 2)
    )  # as `openssl x509 -fingerprint -sha256` prints it
    federation = _federation_with({0: [colons]})
    account = federation.members[0].accounts[0]
    assert account.certificates == frozenset({plain}) and normal_fingerprint(colons) == plain
    cert = pki.clients["ke-cirt"].cert
    printed = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", cert],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert normal_fingerprint("sha256:" + printed.strip().partition("=")[2]) == plain


def test_federation_refuses_bad_or_doubly_mapped_fingerprints(pki: Pki) -> None:
    with pytest.raises(FederationError) as bad:
        _federation_with({0: ["sha1:0123"]})
    assert "members[0].accounts[0].certificates[0]" in str(bad.value)
    assert "openssl x509 -noout -fingerprint -sha256" in str(bad.value)
    plain = pki.clients["ke-cirt"].fingerprint
    with pytest.raises(FederationError) as twice:
        _federation_with({0: [plain], 1: [plain.upper().replace("SHA256", "sha256")]})
    assert "members[0].accounts[1].certificates[0]: this certificate is already mapped" in str(
        twice.value
    )
