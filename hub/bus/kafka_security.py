"""TLS and SASL for the hub's own Kafka connections: options from the bus URL, secrets from
the environment.

`kafka://h:9093?security_protocol=SASL_SSL&sasl_mechanism=SCRAM-SHA-512&sasl_username=hub
&ssl_cafile=/etc/cirt-hub/kafka-ca.pem`. Secrets never travel in the URL (it is printed at
startup and shows in a process listing): the SASL password comes from
CIRT_HUB_KAFKA_SASL_PASSWORD (or the file CIRT_HUB_KAFKA_SASL_PASSWORD_FILE names), the
password of an encrypted client key from CIRT_HUB_KAFKA_SSL_KEY_PASSWORD.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
SASL_PASSWORD_ENV = "CIRT_HUB_KAFKA_SASL_PASSWORD"
SASL_PASSWORD_FILE_ENV = "CIRT_HUB_KAFKA_SASL_PASSWORD_FILE"
SSL_KEY_PASSWORD_ENV = "CIRT_HUB_KAFKA_SSL_KEY_PASSWORD"
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
OPTIONS = (
    "security_protocol",
    "sasl_mechanism",
    "sasl_username",
    "ssl_cafile",
    "ssl_certfile",
    "ssl_keyfile",
)
# Secrets someone may try to put in the URL, and where they belong instead.
_SECRETS = {
    "sasl_password": SASL_PASSWORD_ENV,
    "sasl_plain_password": SASL_PASSWORD_ENV,
    "password": SASL_PASSWORD_ENV,
    "ssl_password": SSL_KEY_PASSWORD_ENV,
    "ssl_key_password": SSL_KEY_PASSWORD_ENV,
}


class KafkaSecurityError(ValueError):
    """A TLS or SASL setting that cannot work; the message names the option."""


@dataclass(frozen=True)
class KafkaSecurity:
    """How the hub authenticates to the brokers and checks who they are."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: str | None = field(default=None, repr=False)

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client-side context for SSL and SASL_SSL (reads the files); None otherwise."""
        if not self.uses_tls:
            return None
        # Hostname checking stays on: the brokers must be who their certificates say. With
        # ssl_cafile, only that CA vouches for them (not every CA the system trusts).
        if self.ssl_cafile is None:
            context = ssl.create_default_context()
        else:
            cafile = self.ssl_cafile
            context = _load("ssl_cafile", cafile, lambda: ssl.create_default_context(cafile=cafile))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.ssl_certfile is not None:
            password = (self.ssl_key_password or "").encode()
            _load(
                "ssl_certfile",
                self.ssl_certfile,
                context.load_cert_chain,
                self.ssl_certfile,
                self.ssl_keyfile,
                # A callback, never None: OpenSSL would otherwise prompt on the terminal.
                lambda: password,
            )
        return context

    def client_options(self) -> dict[str, Any]:
        """aiokafka keyword arguments (the same for producers, consumers and the admin)."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        if self.uses_sasl:
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password,
            }
        return options


def _load(option: str, path: Path, load: Callable[..., T], *args: Any) -> T:
    try:
        return load(*args)
    except ssl.SSLError as exc:
        raise KafkaSecurityError(f"{option} {path}: cannot be used ({exc.reason})") from exc
    except OSError as exc:
        raise KafkaSecurityError(f"{option} {path}: cannot read: {exc.strerror}") from exc


def _sasl_password(environ: Mapping[str, str]) -> str | None:
    path = environ.get(SASL_PASSWORD_FILE_ENV)
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").rstrip("\r\n") or None
        except OSError as exc:
            raise KafkaSecurityError(
                f"{SASL_PASSWORD_FILE_ENV}: cannot read {path}: {exc.strerror}"
            ) from exc
    return environ.get(SASL_PASSWORD_ENV) or None


def _choice(query: Mapping[str, str], option: str, allowed: tuple[str, ...]) -> str | None:
    value = query.get(option)
    if value is None:
        return None
    if value.upper() not in allowed:
        raise KafkaSecurityError(f"{option}: {value!r} is not one of {', '.join(allowed)}")
    return value.upper()


def security_from(
    query: Mapping[str, str], environ: Mapping[str, str] = os.environ
) -> KafkaSecurity:
    """The security options among a bus URL's `query`, checked, with secrets from `environ`.
    Options that are not security options are the caller's to check."""
    for option, env in _SECRETS.items():
        if option in query:
            raise KafkaSecurityError(
                f"{option}: secrets do not belong in the bus URL (it is printed and shows in "
                f"process listings); set {env} instead"
            )
    for option in OPTIONS:
        if option in query and not query[option]:
            raise KafkaSecurityError(f"{option}: is empty")
    protocol = _choice(query, "security_protocol", PROTOCOLS) or "PLAINTEXT"
    mechanism = _choice(query, "sasl_mechanism", MECHANISMS)
    files = {o: Path(query[o]) for o in ("ssl_cafile", "ssl_certfile", "ssl_keyfile") if o in query}
    security = KafkaSecurity(
        protocol=protocol,
        sasl_mechanism=mechanism,
        sasl_username=query.get("sasl_username"),
        ssl_cafile=files.get("ssl_cafile"),
        ssl_certfile=files.get("ssl_certfile"),
        ssl_keyfile=files.get("ssl_keyfile"),
    )
    if security.uses_tls:
        if security.ssl_keyfile is not None and security.ssl_certfile is None:
            raise KafkaSecurityError("ssl_keyfile: needs ssl_certfile (the certificate it is for)")
        if security.ssl_certfile is not None:
            password = environ.get(SSL_KEY_PASSWORD_ENV) or None
            security = replace(security, ssl_key_password=password)
    elif files:
        raise KafkaSecurityError(f"{min(files)}: needs security_protocol=SSL or SASL_SSL")
    if not security.uses_sasl:
        for option in ("sasl_mechanism", "sasl_username"):
            if option in query:
                raise KafkaSecurityError(
                    f"{option}: needs security_protocol=SASL_SSL or SASL_PLAINTEXT"
                )
        return security
    if mechanism is None:
        raise KafkaSecurityError(
            f"sasl_mechanism: security_protocol={protocol} needs one of {', '.join(MECHANISMS)}"
        )
    if security.sasl_username is None:
        raise KafkaSecurityError(f"sasl_username: security_protocol={protocol} needs it")
    password = _sasl_password(environ)
    if password is None:
        raise KafkaSecurityError(
            f"sasl_password: security_protocol={protocol} needs {SASL_PASSWORD_ENV} "
            f"(or {SASL_PASSWORD_FILE_ENV}) in the environment"
        )
    return replace(security, sasl_password=password)
