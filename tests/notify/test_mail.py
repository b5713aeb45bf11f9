"""`hub.notify.mail.send_mail`, the one way the hub sends e-mail, against real SMTP servers:
it upgrades with STARTTLS and verifies the certificate before it logs in, and sends nothing
(and no password) to a server that offers no STARTTLS or whose certificate it cannot
verify."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from hub.notify.config import SmtpSettings
from hub.notify.mail import Mail, MailError, send_mail
from tests.conftest import free_port
from tests.notify.servers import SMTP_PASSWORD, SMTP_USER, Handler, Mailbox, smtp_server
from tests.security.tls_pki import authority

MAIL = Mail("soc@ng-cert.example", "[TLP:GREEN] Test", "Bonjour.", language="fr")


def settings(box: Mailbox, ca_file: Path | None = None) -> SmtpSettings:
    return SmtpSettings(
        host=box.host,
        sender="cirt-hub@hub.example",
        port=box.port,
        ca_file=ca_file or box.ca_file,
        username=SMTP_USER,
        password=SMTP_PASSWORD,
        timeout=10,
    )


async def test_one_message_goes_over_starttls_after_a_login(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as box:
        await send_mail(settings(box), MAIL)
    (message,) = box.to("soc@ng-cert.example")
    assert box.tls_sessions == 1 and box.logins == [SMTP_USER]
    assert message["Subject"] == "[TLP:GREEN] Test" and message["Content-Language"] == "fr"
    assert message["From"] == "cirt-hub@hub.example" and message["Auto-Submitted"]
    assert message.get_content().strip() == "Bonjour."


async def test_a_certificate_it_cannot_verify_gets_nothing(tmp_path: Path) -> None:
    stranger = authority(tmp_path, "another-ca")
    with (
        smtp_server(tmp_path / "smtp") as box,
        pytest.raises(MailError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        await send_mail(settings(box, stranger.path), MAIL)
    assert box.messages == [] and box.logins == []


async def test_a_server_without_starttls_gets_nothing_not_even_the_password(
    tmp_path: Path,
) -> None:
    box = Mailbox("127.0.0.1", free_port(), authority(tmp_path, "test-ca").path)
    plain = Controller(Handler(box), hostname=box.host, port=box.port)
    plain.start()
    try:
        with pytest.raises(MailError, match="STARTTLS"):
            await send_mail(settings(box), MAIL)
    finally:
        plain.stop()
    assert box.messages == [] and box.logins == []
