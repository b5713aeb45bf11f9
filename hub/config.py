"""Settings: everything a hub node runs with, built once from the CLI and the federation file."""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from hub.federation import Federation
from hub.throttle import LoginThrottling
from hub.tls import TlsFiles
from hub.topics import Topics

Role = Literal["all", "api", "pipeline"]
ROLES: tuple[Role, ...] = ("all", "api", "pipeline")


class SettingsError(ValueError):
    """A setting that cannot work; the message names it."""


@dataclass(frozen=True)
class Settings:
    federation: Federation
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    bus_url: str = "embedded"
    role: Role = "all"
    topic_prefix: str = "cirt-hub."
    partitions: int = 1
    node_id: str = "node-1"
    max_view_lag: int = 10_000
    page_limit: int = 1000
    # The hub's signing keys, shared by its pipeline nodes (read-write) and API nodes (read).
    keys_dir: Path | None = None
    # Opens the private signing key; None means unencrypted dev keys (--insecure-dev-keys).
    key_passphrase: str | None = field(default=None, repr=False)
    # The federation-wide key of pseudonymisation; every pipeline node must use the same one.
    pseudonym_key_file: Path | None = None
    # HTTPS (and mutual TLS when it names client CAs); None serves plain HTTP.
    tls: TlsFiles | None = None
    # Live streams: a comment line when idle this long; a reader that cannot take a write
    # within stream_write_timeout, with stream_buffer_bytes already queued, is disconnected.
    stream_heartbeat: float = 15.0
    stream_write_timeout: float = 10.0
    stream_buffer_bytes: int = 256 * 1024
    # Failed logins: how many, how fast, locks an account or a source address out, how long.
    login_throttling: LoginThrottling = field(default_factory=LoginThrottling)
    # Backpressure: above this many unprocessed intake records of its member a POST gets 503
    # (None: never).
    max_intake_lag: int | None = 10_000
    # TAXII submissions go to `<prefix>intake` for everyone, as before per-member intake:
    # while pipeline nodes of such a release run, which refuse hub records on member topics.
    shared_intake: bool = False
    # Disk: below this many free bytes under the data dir a POST gets 503 (the pipeline
    # keeps room to route what intake already took).
    min_free_bytes: int = 256 * 1024 * 1024
    intake_lag_interval: float = 1.0
    # A stop (SIGTERM) lets open requests and units of work in hand finish for this long.
    drain_seconds: float = 10.0
    # Slow clients: a request's headers must be in within header_timeout seconds of the
    # connection opening or of its last answer (also how long an idle connection stays); a
    # body gets body_timeout seconds, and after that must keep up body_min_rate bytes/s.
    header_timeout: float = 30.0
    body_timeout: float = 30.0
    body_min_rate: int = 8 * 1024
    # Connections one source address (IPv6: its /64) may hold at once; 0: no limit.
    max_connections_per_address: int = 64
    # Where clients reach the hub (https://host[:port][/prefix]): discovery's API root
    # address. None: a relative address, which a client resolves against where it asked.
    public_url: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise SettingsError(f"role: {self.role!r} is not one of {', '.join(ROLES)}")
        if not re.fullmatch(r"[A-Za-z0-9._-]*", self.topic_prefix):
            raise SettingsError(f"topic_prefix: {self.topic_prefix!r} has characters Kafka refuses")
        if self.partitions < 1:
            raise SettingsError("partitions: must be at least 1")
        if self.max_intake_lag is not None and self.max_intake_lag < 1:
            raise SettingsError("max_intake_lag: must be at least 1")
        if self.min_free_bytes < 0:
            raise SettingsError("min_free_bytes: must be 0 or more")
        if self.drain_seconds <= 0:
            raise SettingsError("drain_seconds: must be more than 0")
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port: {self.port} is not a TCP port")
        for name in ("header_timeout", "body_timeout", "body_min_rate"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name}: must be more than 0")
        if self.max_connections_per_address < 0:
            raise SettingsError("max_connections_per_address: must be 0 (no limit) or more")
        if self.public_url is not None:
            _check_public_url(self.public_url)

    @property
    def max_content_length(self) -> int:
        return self.federation.hub.limits.max_content_length

    @property
    def page_bytes(self) -> int:
        return self.federation.hub.limits.page_bytes

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    @property
    def signing_keys_dir(self) -> Path:
        return self.keys_dir or self.data_dir / "keys"

    @property
    def pseudonym_key_path(self) -> Path:
        return self.pseudonym_key_file or self.data_dir / "pseudonym.key"

    @property
    def runs_api(self) -> bool:
        return self.role in ("all", "api")

    @property
    def runs_pipeline(self) -> bool:
        return self.role in ("all", "pipeline")


def _check_public_url(url: str) -> None:
    # TAXII 2.1 (section 4.1): API root addresses are HTTPS URLs, or relative ones.
    try:
        parts = urlsplit(url)
        valid = parts.port is None or parts.port > 0  # .port raises on a port that is none
    except ValueError:
        valid = False
    if not valid or parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise SettingsError(
            f"public_url: {url!r} is not an https://host[:port][/path] address (without a "
            "query); leave it out for relative addresses"
        )


def default_data_dir() -> Path:
    """The per-user data folder (XDG), used when --data-dir is not given."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "cirt-hub"


def node_id(data_dir: Path) -> str:
    """This node's stable id, made at first start; names its transactional producer."""
    path = data_dir / "node-id"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = f"node-{uuid.uuid4().hex[:12]}"
    path.write_text(value + "\n")
    return value
