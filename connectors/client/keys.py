"""A member's own Ed25519 key: made, stored as PEM, and used to sign objects before they leave.

The signature is the one the hub checks (hub.signing.members): a detached JWS, alg EdDSA,
kid listed for the member in the federation file, over the RFC 8785 canonical JSON of the
object without the provenance extension, carried in that extension as `member_signature`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from hub.i18n.cli import say
from hub.signing.jws import HUB_ALG, jwk_thumbprint, public_jwk, sign_detached
from hub.signing.provenance import EXTENSION_ID, EXTENSION_TYPE, canonical, without_extension

KEY_PASSPHRASE_ENV = "CIRT_HUB_MEMBER_KEY_PASSPHRASE"


class MemberKeyError(Exception):
    """A key file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class MemberKey:
    """A member's signing key and its kid (the RFC 7638 thumbprint of the public key)."""

    private: Ed25519PrivateKey
    kid: str

    @classmethod
    def generate(cls) -> MemberKey:
        key = Ed25519PrivateKey.generate()
        return cls(key, jwk_thumbprint(public_jwk(key.public_key())))

    @classmethod
    def load(cls, path: Path, passphrase: str | None = None) -> MemberKey:
        """The key in a PEM file (PKCS#8, encrypted when a passphrase is given or set in
        CIRT_HUB_MEMBER_KEY_PASSPHRASE)."""
        if passphrase is None:
            passphrase = os.environ.get(KEY_PASSPHRASE_ENV)
        try:
            key = load_pem_private_key(
                path.read_bytes(), passphrase.encode() if passphrase else None
            )
        except OSError as exc:
            raise MemberKeyError(
                say("%(file)s: cannot read the key: %(error)s", file=path, error=exc)
            ) from exc
        except (TypeError, ValueError) as exc:
            raise MemberKeyError(
                say(
                    "%(file)s: not a usable PEM private key (wrong or missing passphrase in "
                    "%(variable)s?): %(error)s",
                    file=path,
                    variable=KEY_PASSPHRASE_ENV,
                    error=exc,
                )
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise MemberKeyError(say("%(file)s: not an Ed25519 key", file=path))
        return cls(key, jwk_thumbprint(public_jwk(key.public_key())))

    def save(self, path: Path, passphrase: str | None = None) -> None:
        """Write the key as PKCS#8 PEM, owner-only, encrypted when given a passphrase."""
        encryption = BestAvailableEncryption(passphrase.encode()) if passphrase else NoEncryption()
        pem = self.private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)

    def public_jwk(self) -> dict[str, str]:
        """The public key as the federation file lists it under the member's `public_keys`."""
        return {**public_jwk(self.private.public_key()), "kid": self.kid}

    def sign_bytes(self, payload: bytes) -> str:
        """A detached JWS of `payload` under this key."""
        return sign_detached(self.private, {"alg": HUB_ALG, "kid": self.kid}, payload)

    def sign(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """`obj` with this member's signature in the provenance extension."""
        body = without_extension(obj)
        ext = {
            "extension_type": EXTENSION_TYPE,
            "member_signature": self.sign_bytes(canonical(body)),
        }
        return {**body, "extensions": {**body.get("extensions", {}), EXTENSION_ID: ext}}


def is_signed(obj: Mapping[str, Any]) -> bool:
    """True when `obj` already carries a member signature (kept as it is, never re-signed)."""
    extensions = obj.get("extensions")
    ext = extensions.get(EXTENSION_ID) if isinstance(extensions, Mapping) else None
    return isinstance(ext, Mapping) and isinstance(ext.get("member_signature"), str)
