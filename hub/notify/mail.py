"""Sending one e-mail through the hub's SMTP server (the federation file's `notify.smtp`).

`send_mail` is the one way the hub sends mail: subscriptions' notifications use it, and so
may any feature that must reach a person (a contact's reachability check). The connection
is upgraded with STARTTLS, the server's certificate verified (against `ca_file` when set),
before the hub logs in; nothing is sent in clear to a server that does not offer it.

    smtp = app[NOTIFY].smtp  # hub.api.keys.NOTIFY; None: the operator set no notify.smtp
    text = Words(language).say("...")  # hub.notify.messages: the console catalogue, en or fr
    await send_mail(smtp, Mail(to=address, subject=..., body=text, language=language))
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from hub.notify.config import SmtpSettings


class MailError(Exception):
    """The server could not be reached or refused the message; the text says which."""


@dataclass(frozen=True)
class Mail:
    """One message to one address, already written in `language` ("en" or "fr")."""

    to: str
    subject: str
    body: str
    language: str = "en"


def _message(smtp: SmtpSettings, mail: Mail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the hub
    message.set_content(mail.body)
    message["Content-Language"] = mail.language  # after set_content, which clears Content-*
    return message


def _send(smtp: SmtpSettings, mail: Mail) -> None:
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
            client.ehlo()
            if smtp.starttls:
                context = ssl.create_default_context(
                    cafile=str(smtp.ca_file) if smtp.ca_file else None
                )
                client.starttls(context=context)
                client.ehlo()
            if smtp.username is not None and smtp.password is not None:
                client.login(smtp.username, smtp.password)
            client.send_message(_message(smtp, mail))
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"{smtp.host}:{smtp.port}: {type(exc).__name__}: {exc}") from exc


async def send_mail(smtp: SmtpSettings, mail: Mail) -> None:
    """Send `mail` through `smtp` (STARTTLS, then login); MailError when it did not go."""
    await asyncio.to_thread(_send, smtp, mail)
