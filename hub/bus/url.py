"""Bus URLs: `embedded` (the SQLite log in the data dir) or `kafka://host:port[,host:port]`
(with TLS and SASL options: hub.bus.kafka_security)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from hub.bus import Bus
from hub.bus.embedded import EmbeddedBus
from hub.bus.kafka import KafkaBus, KafkaSettings
from hub.bus.kafka_security import (
    OPTIONS,
    SASL_PASSWORD_ENV,
    KafkaSecurityError,
    security_from,
)

EMBEDDED_FILE = "bus.sqlite3"


class BusUrlError(ValueError):
    pass


_OPTIONS = ("client_id", "replication_factor", *OPTIONS)


def _shown(url: str) -> str:
    """`url` fit for an error message: no query, nothing before an @ (either may be secret)."""
    base = url.partition("?")[0]
    scheme, sep, rest = base.rpartition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"


def parse_kafka_url(url: str, environ: Mapping[str, str] = os.environ) -> KafkaSettings:
    """`kafka://h1:9092,h2:9092?replication_factor=3&client_id=hub-a` → settings; TLS and
    SASL options as hub.bus.kafka_security reads them, their secrets from `environ`."""
    parts = urlsplit(url)
    shown = _shown(url)
    if parts.scheme != "kafka" or not parts.netloc:
        raise BusUrlError(f"bus URL {shown!r}: expected kafka://HOST:PORT[,HOST:PORT]")
    if "@" in parts.netloc:
        raise BusUrlError(
            "bus URL: user names and passwords do not go before the host; give "
            f"?sasl_username=NAME and the password in {SASL_PASSWORD_ENV}"
        )
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    try:
        security = security_from(query, environ)
    except KafkaSecurityError as exc:
        raise BusUrlError(f"bus URL {shown!r}: {exc}") from exc
    for server in parts.netloc.split(","):
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit():
            raise BusUrlError(f"bus URL {shown!r}: {server!r} is not HOST:PORT")
    unknown = set(query) - set(_OPTIONS)
    if unknown:
        raise BusUrlError(
            f"bus URL {shown!r}: unknown option(s) {', '.join(sorted(unknown))} "
            f"(known: {', '.join(_OPTIONS)})"
        )
    if query.get("client_id") == "":
        raise BusUrlError(f"bus URL {shown!r}: client_id: is empty")
    try:
        replication = int(query.get("replication_factor", "1"))
    except ValueError as exc:
        raise BusUrlError(f"bus URL {shown!r}: replication_factor must be an integer") from exc
    return KafkaSettings(
        bootstrap_servers=parts.netloc,
        client_id=query.get("client_id", "cirt-hub"),
        replication_factor=replication,
        security=security,
    )


def validate_bus_url(url: str) -> None:
    """Raise BusUrlError when `url` names no bus we can open (its TLS files are loaded)."""
    if url == "embedded":
        return
    settings = parse_kafka_url(url)
    try:
        settings.security.ssl_context()
    except KafkaSecurityError as exc:
        raise BusUrlError(f"bus URL {_shown(url)!r}: {exc}") from exc


def open_bus(url: str, data_dir: Path, *, partitions: int = 1) -> Bus:
    """The bus named by `url`; the embedded log lives in `data_dir`. Does no I/O."""
    if url == "embedded":
        return EmbeddedBus(data_dir / EMBEDDED_FILE, default_partitions=partitions)
    return KafkaBus(parse_kafka_url(url))
