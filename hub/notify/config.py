"""The federation file's `notify` block made usable: the SMTP server with its password read
from a file or the environment (never the file itself), the digest interval, and the
webhook prefixes subscribers may use. A block that cannot work stops startup naming the
field."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.config import SettingsError
from hub.policy.rules import parse_duration


@dataclass(frozen=True)
class SmtpSettings:
    """Where e-mails go and how the hub logs in there."""

    host: str
    sender: str
    port: int = 587
    starttls: bool = True
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0


@dataclass(frozen=True)
class NotifySettings:
    """How subscriptions are delivered on this hub."""

    smtp: SmtpSettings | None = None
    digest_seconds: float = 3600.0
    webhook_prefixes: tuple[str, ...] = ()
    max_per_account: int = 20
    console_url: str = ""

    def webhook_allowed(self, url: str) -> bool:
        return any(url.startswith(prefix) for prefix in self.webhook_prefixes)


def _password(smtp: Mapping[str, Any], environ: Mapping[str, str]) -> str | None:
    where = "notify.smtp"
    if "password_file" in smtp and "password_env" in smtp:
        raise SettingsError(f"{where}.password_env: give password_file or password_env, not both")
    if "password_file" in smtp:
        path = Path(smtp["password_file"])
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise SettingsError(f"{where}.password_file: cannot read {path}: {exc}") from exc
        if not lines or not lines[0]:
            raise SettingsError(f"{where}.password_file: {path} is empty")
        return lines[0]
    if "password_env" in smtp:
        value = environ.get(smtp["password_env"])
        if not value:
            raise SettingsError(f"{where}.password_env: {smtp['password_env']} is not set")
        return value
    return None


def notify_settings(
    block: Mapping[str, Any], environ: Mapping[str, str] = os.environ
) -> NotifySettings:
    """The (schema-valid) `notify` block as settings; SettingsError names what cannot work."""
    smtp = None
    if "smtp" in block:
        given = block["smtp"]
        password = _password(given, environ)
        if (password is None) != ("username" not in given):
            missing = "password_file or password_env" if password is None else "username"
            raise SettingsError(f"notify.smtp.{missing}: a login needs a username and a password")
        if password is not None and not given.get("starttls", True):
            raise SettingsError(
                "notify.smtp.starttls: the password would cross the network in clear; "
                "keep STARTTLS on to log in"
            )
        ca_file = Path(given["ca_file"]) if "ca_file" in given else None
        if ca_file is not None and not ca_file.is_file():
            raise SettingsError(f"notify.smtp.ca_file: {ca_file} is not a file")
        smtp = SmtpSettings(
            host=given["host"],
            sender=given["from"],
            port=given.get("port", 587),
            starttls=given.get("starttls", True),
            ca_file=ca_file,
            username=given.get("username"),
            password=password,
            timeout=float(given.get("timeout_seconds", 30)),
        )
    interval = parse_duration(block.get("digest_interval", "PT1H")).total_seconds()
    if interval <= 0:
        raise SettingsError("notify.digest_interval: must be longer than nothing")
    return NotifySettings(
        smtp=smtp,
        digest_seconds=interval,
        webhook_prefixes=tuple(block.get("webhook_prefixes", ())),
        max_per_account=block.get("max_per_account", 20),
        console_url=str(block.get("console_url", "")).rstrip("/"),
    )
