"""The intake key: how the pipeline knows that a record on `<prefix>intake` was written by one
of the hub's own API nodes, and not by whoever else can write that topic.

An API node puts, in the `cirt-hub-intake-mac` header of each intake record it writes,
`<kid>.<base64url HMAC-SHA256 of the exact record value>`, made with the current intake key.
Only hub nodes hold the keys; they live beside the signing keys, in the keys dir:

    <keys dir>/intake.key  {"format", "keys": [{"kid", "secret", "created", "retired"}, ...],
                            "trusted_before": {"topic", "offsets": {"<partition>": offset}}}

The first node that needs the file and may write the keys dir makes it, under the dir's
lock, and notes where `<prefix>intake` ended at that moment (`trusted_before`). Records
below those offsets were written before any node could make a MAC, by the hub's API as it
was before this check existed (an upgrade with a backlog), and are read as they were then;
every later record needs a MAC. No writer can add a record below an offset that exists.

Rotating (`cirt-hub keys rotate`) makes a new current key; a retired key still verifies for
RETIRED_GRACE, so records MACed just before the rotation are read, then it stops counting.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from hub.model import RefusalCode
from hub.records import INTAKE_MAC
from hub.signing.jws import MalformedJws, b64url, b64url_decode
from hub.signing.keyring import keys_dir_lock, write_atomically

INTAKE_KEY_FILE = "intake.key"
INTAKE_KEY_FORMAT = "cirt-hub-intake-key-v1"
# Long enough for what an API node wrote just before a rotation to reach the pipeline (intake
# lag is bounded by backpressure); short enough that a leaked key stops counting soon.
RETIRED_GRACE = timedelta(hours=1)
_SECRET_BYTES = 32
_MAC_LENGTH = 43  # base64url of 32 bytes


class IntakeKeyError(Exception):
    """The intake key file cannot be used; the message says what to do."""


class IntakeMacError(Exception):
    """Why an intake record's MAC is not accepted; `reason` is a stable short code."""

    def __init__(self, reason: RefusalCode, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(when: datetime) -> str:
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class IntakeKey:
    kid: str
    secret: bytes = field(repr=False)
    created: str
    retired: str | None = None

    def mac(self, value: bytes) -> str:
        return b64url(hmac.new(self.secret, value, hashlib.sha256).digest())

    def counts_at(self, now: datetime) -> bool:
        """Current, or retired less than RETIRED_GRACE ago."""
        if self.retired is None:
            return True
        return now - datetime.fromisoformat(self.retired) <= RETIRED_GRACE


def new_intake_key() -> IntakeKey:
    return IntakeKey(secrets.token_hex(8), secrets.token_bytes(_SECRET_BYTES), _stamp(_now()))


@dataclass(frozen=True)
class IntakeKeys:
    """One reading of the intake key file: the keys (the current one first) and the backlog
    that predates them."""

    keys: tuple[IntakeKey, ...]
    topic: str
    trusted_before: Mapping[int, int]

    @property
    def current(self) -> IntakeKey:
        return self.keys[0]

    def header(self, value: bytes) -> tuple[str, bytes]:
        """The header that authenticates `value` as written by this hub's API."""
        key = self.current
        return INTAKE_MAC, f"{key.kid}.{key.mac(value)}".encode("ascii")

    def predates(self, topic: str, partition: int, offset: int) -> bool:
        """True for a record written before the first intake key existed (module docstring)."""
        return topic == self.topic and offset < self.trusted_before.get(partition, 0)

    def check(self, header: bytes | None, value: bytes, now: datetime | None = None) -> None:
        """IntakeMacError unless `header` is a MAC over `value` made with a key that counts."""
        if header is None:
            raise IntakeMacError(
                RefusalCode.INTAKE_MAC_MISSING,
                f"no {INTAKE_MAC!r} header: only the hub's own API nodes write this topic, "
                "and they authenticate every record they write",
            )
        kid, _, mac = header.decode("ascii", "replace").partition(".")
        try:
            if len(mac) != _MAC_LENGTH:
                raise MalformedJws("not 32 bytes")
            given = b64url_decode(mac)
        except MalformedJws as exc:
            raise IntakeMacError(
                RefusalCode.INTAKE_MAC_MALFORMED,
                f"the {INTAKE_MAC!r} header is not '<kid>.<base64url HMAC-SHA256>' ({exc})",
            ) from exc
        now = now or _now()
        key = next((k for k in self.keys if k.kid == kid and k.counts_at(now)), None)
        if key is None:
            raise IntakeMacError(
                RefusalCode.INTAKE_MAC_UNKNOWN_KEY,
                f"made with key {kid[:40]!r}, which is not one of this hub's intake keys (or was "
                f"retired more than {RETIRED_GRACE} ago)",
            )
        expected = hmac.new(key.secret, value, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, given):
            raise IntakeMacError(
                RefusalCode.INTAKE_MAC_INVALID,
                f"the MAC (key {kid!r}) does not match the record: it was changed after the "
                "hub's API wrote it, or it is forged",
            )

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "format": INTAKE_KEY_FORMAT,
                "keys": [
                    {"kid": k.kid, "secret": b64url(k.secret), "created": k.created}
                    | ({"retired": k.retired} if k.retired else {})
                    for k in self.keys
                ],
                "trusted_before": {
                    "topic": self.topic,
                    "offsets": {str(p): o for p, o in sorted(self.trusted_before.items())},
                },
            },
            option=orjson.OPT_INDENT_2,
        )

    @classmethod
    def from_json(cls, data: bytes, name: str) -> IntakeKeys:
        try:
            doc: dict[str, Any] = orjson.loads(data)
            if doc.get("format") != INTAKE_KEY_FORMAT:
                raise ValueError(f"format is not {INTAKE_KEY_FORMAT}")
            keys = tuple(
                IntakeKey(
                    str(k["kid"]), b64url_decode(k["secret"]), str(k["created"]), k.get("retired")
                )
                for k in doc["keys"]
            )
            if not keys or keys[0].retired is not None:
                raise ValueError("no current key")
            trusted = doc["trusted_before"]
            offsets = {int(p): int(o) for p, o in trusted["offsets"].items()}
            return cls(keys, str(trusted["topic"]), offsets)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, MalformedJws) as exc:
            raise IntakeKeyError(f"intake key file {name} is damaged: {exc}") from exc


class IntakeKeyFile:
    """`<keys dir>/intake.key`, read again only when the file changed (a rotation)."""

    def __init__(self, keys_dir: Path) -> None:
        self.dir = keys_dir
        self.path = keys_dir / INTAKE_KEY_FILE
        self._seen: tuple[int, int, int] | None = None
        self._keys: IntakeKeys | None = None

    def read(self) -> IntakeKeys | None:
        """The keys, or None while no node has made them yet."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if seen != self._seen:
            self._keys = IntakeKeys.from_json(self.path.read_bytes(), str(self.path))
            self._seen = seen
        return self._keys

    def ensure(self, topic: str, ends: Mapping[int, int]) -> IntakeKeys:
        """The keys, made now if there are none, with `ends` (where `topic` ends now, per
        partition) as the backlog that predates them. OSError when the dir is not writable."""
        with keys_dir_lock(self.dir):
            found = self.read()
            if found is not None:
                return found
            keys = IntakeKeys((new_intake_key(),), topic, dict(ends))
            write_atomically(self.path, keys.to_json())
            return keys

    def rotate(self) -> tuple[IntakeKeys, int] | None:
        """A new current key; the others retired (and dropped once past their grace).
        Returns the keys and how many retired ones still count; None when there is no file."""
        with keys_dir_lock(self.dir):
            found = self.read()
            if found is None:
                return None
            now = _now()
            retired = [
                k if k.retired else replace(k, retired=_stamp(now))
                for k in found.keys
                if k.counts_at(now)
            ]
            keys = replace(found, keys=(new_intake_key(), *retired))
            write_atomically(self.path, keys.to_json())
            return keys, len(retired)
