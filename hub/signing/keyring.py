"""The hub's Ed25519 signing keys: one JSON file per key in the keys dir.

    <keys dir>/<kid>.json   {"format", "kid", "created", "retired", "public": JWK, "private": …}

`kid` is the key's RFC 7638 thumbprint. The private part is sealed with AES-256-GCM under a
key derived by scrypt from the operator's passphrase (CIRT_HUB_KEY_PASSPHRASE, or the file
named by CIRT_HUB_KEY_PASSPHRASE_FILE); only `--insecure-dev-keys` writes it in the clear.
The current key is the newest one not retired. Rotating writes a new key and retires the
others: they stay (public part only, their private part destroyed) so what they signed
keeps verifying. Files are replaced atomically, so nodes that share the dir (pipeline nodes
read and write it, API nodes only read it) never see half a key. The dir also holds the
intake key (`intake.key`, hub.signing.intake), written under the same lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from hub.signing.jws import HUB_ALG, b64url, b64url_decode, jwk_thumbprint, load_jwk, public_jwk

KEY_FORMAT = "cirt-hub-key-v1"
PASSPHRASE_ENV = "CIRT_HUB_KEY_PASSPHRASE"
PASSPHRASE_FILE_ENV = "CIRT_HUB_KEY_PASSPHRASE_FILE"
# scrypt at 2^15 (32 MiB, ~0.1 s here): paid once per key load, so it can cost more than a
# login hash. The ceiling refuses key files crafted to make loading eat the machine.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_SCRYPT_MAX_N = 2**20
Protection = Literal["passphrase", "unencrypted", "destroyed"]


class KeyringError(Exception):
    """The keys cannot be used as asked; the message says what to do."""


def passphrase_from_environment(environ: Mapping[str, str] = os.environ) -> str | None:
    """The key passphrase from CIRT_HUB_KEY_PASSPHRASE_FILE or CIRT_HUB_KEY_PASSPHRASE."""
    path = environ.get(PASSPHRASE_FILE_ENV)
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise KeyringError(f"{PASSPHRASE_FILE_ENV}: cannot read {path}: {exc}") from exc
        if not text:
            raise KeyringError(f"{PASSPHRASE_FILE_ENV}: {path} is empty")
        return text
    return environ.get(PASSPHRASE_ENV) or None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _aad(kid: str) -> bytes:
    # Binds the sealed private key to its own public key id: no swapping sealed blobs.
    return f"{KEY_FORMAT}:{kid}".encode()


def _kek(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def _seal(raw: bytes, passphrase: str, kid: str) -> dict[str, Any]:
    salt, nonce = os.urandom(16), os.urandom(12)
    kek = _kek(passphrase, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return {
        "kdf": "scrypt",
        "n": _SCRYPT_N,
        "r": _SCRYPT_R,
        "p": _SCRYPT_P,
        "salt": b64url(salt),
        "cipher": "A256GCM",
        "nonce": b64url(nonce),
        "ciphertext": b64url(AESGCM(kek).encrypt(nonce, raw, _aad(kid))),
    }


def _unseal(sealed: Mapping[str, Any], passphrase: str, kid: str) -> bytes:
    try:
        n, r, p = int(sealed["n"]), int(sealed["r"]), int(sealed["p"])
        if sealed["kdf"] != "scrypt" or sealed["cipher"] != "A256GCM" or n > _SCRYPT_MAX_N:
            raise ValueError("unsupported protection")
        kek = _kek(passphrase, b64url_decode(sealed["salt"]), n, r, p)
        nonce, ciphertext = b64url_decode(sealed["nonce"]), b64url_decode(sealed["ciphertext"])
        return AESGCM(kek).decrypt(nonce, ciphertext, _aad(kid))
    except InvalidTag as exc:
        raise KeyringError(f"the passphrase does not open key {kid}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyringError(f"key {kid}: the sealed private key is damaged ({exc})") from exc


@dataclass(frozen=True)
class KeyRecord:
    """One key file: public part, dates, and the private part as stored (sealed or not)."""

    kid: str
    x: str
    created: str
    retired: str | None = None
    private: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def protection(self) -> Protection:
        if self.private is None:
            return "destroyed"
        return "unencrypted" if "d" in self.private else "passphrase"

    @property
    def public_key(self) -> Ed25519PublicKey:
        return load_jwk({"kty": "OKP", "crv": "Ed25519", "x": self.x})

    def jwk(self, status: str) -> dict[str, str]:
        """The public JWK as the JWKS lists it, with the hub's current/retired marker."""
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid}
        jwk |= {"use": "sig", "alg": HUB_ALG, "status": status, "created": self.created}
        if self.retired:
            jwk["retired"] = self.retired
        return jwk

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "format": KEY_FORMAT,
            "kid": self.kid,
            "created": self.created,
            "retired": self.retired,
            "public": {"kty": "OKP", "crv": "Ed25519", "x": self.x},
        }
        if self.private is not None:
            doc["private"] = dict(self.private)
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes, name: str) -> KeyRecord:
        try:
            doc = orjson.loads(data)
            if doc.get("format") != KEY_FORMAT:
                raise ValueError(f"format is not {KEY_FORMAT}")
            record = cls(
                kid=doc["kid"],
                x=doc["public"]["x"],
                created=doc["created"],
                retired=doc.get("retired"),
                private=doc.get("private"),
            )
            if jwk_thumbprint({"kty": "OKP", "crv": "Ed25519", "x": record.x}) != record.kid:
                raise ValueError("kid is not the thumbprint of the public key")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise KeyringError(f"key file {name} is damaged: {exc}") from exc
        return record


def new_key(passphrase: str | None) -> tuple[KeyRecord, Ed25519PrivateKey]:
    """A fresh key; sealed under `passphrase`, or in the clear when it is None (dev only)."""
    private = Ed25519PrivateKey.generate()
    x = public_jwk(private.public_key())["x"]
    kid = jwk_thumbprint({"kty": "OKP", "crv": "Ed25519", "x": x})
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    sealed = {"d": b64url(raw)} if passphrase is None else _seal(raw, passphrase, kid)
    return KeyRecord(kid, x, _now(), private=sealed), private


@contextlib.contextmanager
def keys_dir_lock(path: Path) -> Iterator[None]:
    """Serialises writers of a keys dir (two nodes starting at once make one first key)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """`path` holds `data` (owner-only), or what it held before: never half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


# Keys are written by renaming a file into the dir, which moves the dir's change time: one
# stat tells whether anything changed since the dir was last listed. A change within the
# filesystem's timestamp granularity of that listing may leave the time as it was, so a
# time younger than this is not trusted and the dir is listed again.
_SETTLED_NS = 2_000_000_000


class KeyStore:
    """The keys dir. Read once per change to it (a rotation here or on another node): one
    stat of the dir per call otherwise."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[tuple[str, int, int], ...] | None = None
        self._settled: tuple[int, int, int] | None = None  # the dir's stamp, once settled
        self._records: tuple[KeyRecord, ...] = ()
        self._lock = threading.Lock()

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)

    def _listing(self) -> tuple[tuple[str, int, int], ...]:
        try:
            entries = list(os.scandir(self.path))
        except FileNotFoundError:
            return ()
        return tuple(
            sorted(
                (e.name, e.inode(), e.stat().st_mtime_ns)
                for e in entries
                if e.name.endswith(".json") and e.is_file()
            )
        )

    def records(self) -> tuple[KeyRecord, ...]:
        """Every key, oldest first; the current one (if any) last."""
        with self._lock:  # threads of one node share the store: the stamp goes with its read
            stamp = self._stamp()
            if stamp is not None and stamp == self._settled:
                return self._records
            listing = self._listing()
            if listing != self._seen:
                found = [
                    KeyRecord.from_json((self.path / name).read_bytes(), name)
                    for name, _, _ in listing
                ]
                # Retired keys first, then by age: the last one is the current key.
                found.sort(key=lambda k: (k.retired is None, k.created, k.kid))
                self._records, self._seen = tuple(found), listing
            settled = stamp is not None and time.time_ns() - stamp[2] > _SETTLED_NS
            self._settled = stamp if settled else None
            return self._records

    def current(self) -> KeyRecord | None:
        records = self.records()
        return records[-1] if records and records[-1].retired is None else None

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys: the current one and every retired one, marked."""
        current = self.current()
        return {
            "keys": [
                k.jwk("current" if k is current else "retired") for k in reversed(self.records())
            ]
        }

    def private_key(self, record: KeyRecord, passphrase: str | None) -> Ed25519PrivateKey:
        """The private key of `record`, opened with `passphrase` (None: dev keys only)."""
        if record.private is None:
            raise KeyringError(f"key {record.kid} is retired; its private part was destroyed")
        if "d" in record.private:
            if passphrase is not None:
                raise KeyringError(
                    f"key {record.kid} is stored unencrypted (made with --insecure-dev-keys); "
                    "run `cirt-hub keys rotate` with the passphrase set to replace it"
                )
            raw = b64url_decode(record.private["d"])
        elif passphrase is None:
            raise KeyringError(
                f"key {record.kid} is encrypted: set CIRT_HUB_KEY_PASSPHRASE or "
                "CIRT_HUB_KEY_PASSPHRASE_FILE"
            )
        else:
            raw = _unseal(record.private, passphrase, record.kid)
        private = Ed25519PrivateKey.from_private_bytes(raw)
        if public_jwk(private.public_key())["x"] != record.x:
            raise KeyringError(f"key {record.kid}: private and public parts do not match")
        return private

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return keys_dir_lock(self.path)

    def _write(self, record: KeyRecord) -> None:
        write_atomically(self.path / f"{record.kid}.json", record.to_json())

    def ensure_key(self, passphrase: str | None) -> KeyRecord:
        """The current key, made now if the dir has none (a hub's first start)."""
        with self._locked():
            current = self.current()
            if current is not None:
                return current
            record, _ = new_key(passphrase)
            self._write(record)
            return record

    def rotate(self, passphrase: str | None) -> KeyRecord:
        """A new current key; every other key retired, its private part destroyed."""
        with self._locked():
            current = self.current()
            if current is not None and current.protection == "passphrase":
                # Nodes that share this dir run with one passphrase: refuse a mistyped one.
                self.private_key(current, passphrase)
            record, _ = new_key(passphrase)
            self._write(record)
            retired_at = _now()
            for old in self.records():
                if old.kid != record.kid and (old.retired is None or old.private is not None):
                    self._write(replace(old, retired=old.retired or retired_at, private=None))
            return record
