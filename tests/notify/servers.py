"""The receivers notifications go to in tests: a real SMTP server (aiosmtpd) that requires
STARTTLS, with a certificate from a throwaway CA, and a login; and a webhook receiver (an
aiohttp server on a loopback port) that can be told to fail."""

from __future__ import annotations

import email
import email.policy
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.conftest import free_port
from tests.security.tls_pki import authority, issue

SMTP_USER, SMTP_PASSWORD = "cirt-hub", "test-only smtp password"


@dataclass
class Mailbox:
    """What the SMTP server took: each message as parsed, with its recipients."""

    host: str
    port: int
    ca_file: Path
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    tls_sessions: int = 0

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpts, m in self.messages if address in rcpts]

    def notify_block(self, password_file: Path) -> dict[str, Any]:
        """The federation file's `notify.smtp` for this server."""
        return {
            "host": self.host,
            "port": self.port,
            "from": "cirt-hub@hub.example",
            "ca_file": str(self.ca_file),
            "username": SMTP_USER,
            "password_file": str(password_file),
        }


class Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if session.ssl is not None:
            self.box.tls_sessions += 1
        raw = envelope.content if isinstance(envelope.content, bytes) else b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.box.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


def _tls_context(folder: Path) -> tuple[ssl.SSLContext, Path]:
    ca = authority(folder, "test-smtp-ca")
    server = issue(ca, folder, "test-smtp", server=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server.cert, server.key)
    return context, ca.path


@contextmanager
def smtp_server(folder: Path, port: int | None = None) -> Iterator[Mailbox]:
    """An SMTP server on 127.0.0.1 that takes mail only after STARTTLS and a login."""
    folder.mkdir(parents=True, exist_ok=True)
    context, ca_file = _tls_context(folder)
    box = Mailbox("127.0.0.1", port or free_port(), ca_file)

    def login(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if ok:
            box.logins.append(SMTP_USER)
        return AuthResult(success=ok)

    controller = Controller(
        Handler(box),
        hostname=box.host,
        port=box.port,
        tls_context=context,
        require_starttls=True,
        authenticator=login,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def password_file(folder: Path) -> Path:
    path = folder / "smtp-password"
    path.write_text(SMTP_PASSWORD + "\n")
    return path


@dataclass
class Receiver:
    """A webhook receiver: every POST it got (time, delivery id, body), and what it answered."""

    url: str
    fail_next: int = 0  # answer 503 to this many POSTs first
    redirect_to: str | None = None  # answer every POST with a 307 to there
    attempts: list[float] = field(default_factory=list)
    accepted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        """What the operator lists in `notify.webhook_prefixes` to allow this receiver."""
        return self.url.removesuffix("hooks/cirt-hub")

    def bodies(self) -> list[dict[str, Any]]:
        return [body for _, body in self.accepted]


@asynccontextmanager
async def webhook_receiver(port: int | None = None) -> AsyncIterator[Receiver]:
    port = port or free_port()
    receiver = Receiver(f"http://127.0.0.1:{port}/hooks/cirt-hub")

    async def receive(request: web.Request) -> web.Response:
        receiver.attempts.append(time.monotonic())
        if receiver.redirect_to is not None:
            raise web.HTTPTemporaryRedirect(receiver.redirect_to)
        if receiver.fail_next > 0:
            receiver.fail_next -= 1
            return web.Response(status=503)
        assert request.content_type == "application/stix+json"
        body = await request.json()
        receiver.accepted.append((request.headers["X-Cirt-Hub-Delivery"], body))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks/cirt-hub", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield receiver
    finally:
        await runner.cleanup()
