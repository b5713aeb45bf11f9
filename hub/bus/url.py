"""Bus URLs: `embedded` (the SQLite log in the data dir) or `kafka://host:port[,host:port]`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from hub.bus import Bus
from hub.bus.embedded import EmbeddedBus
from hub.bus.kafka import KafkaBus, KafkaSettings

EMBEDDED_FILE = "bus.sqlite3"


class BusUrlError(ValueError):
    pass


def parse_kafka_url(url: str) -> KafkaSettings:
    """`kafka://h1:9092,h2:9092?replication_factor=3&client_id=hub-a` → settings."""
    parts = urlsplit(url)
    if parts.scheme != "kafka" or not parts.netloc:
        raise BusUrlError(f"bus URL {url!r}: expected kafka://HOST:PORT[,HOST:PORT]")
    for server in parts.netloc.split(","):
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit():
            raise BusUrlError(f"bus URL {url!r}: {server!r} is not HOST:PORT")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    known = {"client_id", "replication_factor"}
    unknown = set(query) - known
    if unknown:
        raise BusUrlError(f"bus URL {url!r}: unknown option(s) {sorted(unknown)}")
    try:
        replication = int(query.get("replication_factor", "1"))
    except ValueError as exc:
        raise BusUrlError(f"bus URL {url!r}: replication_factor must be an integer") from exc
    return KafkaSettings(
        bootstrap_servers=parts.netloc,
        client_id=query.get("client_id", "cirt-hub"),
        replication_factor=replication,
    )


def validate_bus_url(url: str) -> None:
    """Raise BusUrlError when `url` names no bus we can open."""
    if url != "embedded":
        parse_kafka_url(url)


def open_bus(url: str, data_dir: Path, *, partitions: int = 1) -> Bus:
    """The bus named by `url`; the embedded log lives in `data_dir`. Does no I/O."""
    if url == "embedded":
        return EmbeddedBus(data_dir / EMBEDDED_FILE, default_partitions=partitions)
    return KafkaBus(parse_kafka_url(url))
