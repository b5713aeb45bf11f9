"""Account secrets: generated at random, stored only as scrypt hashes, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

# scrypt cost: ~50 ms per hash on one of our cores; what OWASP suggests for interactive logins.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_KEY_LEN = 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_secret() -> str:
    """A fresh random secret (256 bits, URL-safe, no dots so it can sit in a bearer token)."""
    return secrets.token_urlsafe(32).replace(".", "")


def hash_secret(secret: str) -> str:
    """`scrypt$N$r$p$salt$hash`: the only form in which a secret is ever written down."""
    salt = os.urandom(16)
    kdf = Scrypt(salt=salt, length=_KEY_LEN, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    digest = kdf.derive(secret.encode())
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    """True when `secret` matches the `stored` hash (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        kdf = Scrypt(salt=_unb64(salt), length=_KEY_LEN, n=int(n), r=int(r), p=int(p))
        kdf.verify(secret.encode(), _unb64(digest))
    except (ValueError, InvalidKey):
        return False
    return True


@dataclass
class VerifiedCache:
    """Remembers secrets already verified, keyed by a keyed hash, so scrypt runs once per secret.

    Holds no secret: only HMACs under a key that lives in this process's memory.
    """

    _key: bytes = field(default_factory=lambda: os.urandom(32))
    _seen: dict[str, str] = field(default_factory=dict)
    limit: int = 10_000

    def _tag(self, username: str, secret: str) -> str:
        return hmac.new(self._key, f"{username}\0{secret}".encode(), hashlib.sha256).hexdigest()

    def known(self, username: str, secret: str, stored: str) -> bool:
        return hmac.compare_digest(self._seen.get(self._tag(username, secret), ""), stored)

    def remember(self, username: str, secret: str, stored: str) -> None:
        if len(self._seen) >= self.limit:
            self._seen.clear()
        self._seen[self._tag(username, secret)] = stored
