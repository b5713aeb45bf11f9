"""Detached JWS (RFC 7515 compact serialization, Appendix F) with Ed25519, and Ed25519 JWKs.

A detached JWS is `BASE64URL(header) + ".." + BASE64URL(signature)`: the payload is left
out because the verifier recomputes it (here: the RFC 8785 canonical JSON of an object).
Decoding is strict: base64url that does not re-encode to the same text is refused, so no
two different strings carry the same signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import nacl.signing
import orjson
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

# "EdDSA" is what the hub writes (RFC 8037); RFC 9864 names Ed25519 alone "Ed25519", and a
# member signing with a newer JOSE library may use that: both mean the same algorithm here.
HUB_ALG = "EdDSA"
ED25519_ALGS = frozenset({"EdDSA", "Ed25519"})
_SIGNATURE_LEN = 64
_MAX_HEADER = 4096
# Three dot-separated runs of printable ASCII, not opening as JSON does: meant as a compact
# JWS, so a fault in a part (say, padding) is named rather than called "unsigned".
_COMPACT = re.compile(rb'(?:[^\s."{\[][^\s.]*)?\.[^\s.]*\.[^\s.]*')


class MalformedJws(ValueError):
    """Not a detached compact JWS this hub can check; the message says what is wrong."""


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64url(data: bytes) -> bytes:
    # base64.urlsafe_b64encode is these two calls behind two more: this runs per signature.
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


def b64url(data: bytes) -> str:
    return _b64url(data).decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding: anything that does not re-encode to `text` fails."""
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedJws(f"not base64url: {exc}") from exc
    if b64url(data) != text:
        raise MalformedJws("not canonical base64url")
    return data


@dataclass(frozen=True, slots=True)
class DetachedJws:
    """A parsed detached JWS: its protected header and the bytes its signature covers."""

    header: dict[str, Any]
    encoded_header: str
    signature: bytes

    @property
    def kid(self) -> str:
        return str(self.header["kid"])

    def verifies(self, key: Ed25519PublicKey, payload: bytes) -> bool:
        """True when the signature is `key`'s over `payload` with this header."""
        signing_input = self.encoded_header.encode("ascii") + b"." + b64url(payload).encode()
        try:
            key.verify(self.signature, signing_input)
        except InvalidSignature:
            return False
        return True


class Signs(Protocol):
    """An Ed25519 private key, as signing needs it: cryptography's, or a SodiumKey."""

    def sign(self, data: bytes) -> bytes: ...


class SodiumKey:
    """An Ed25519 private key signing through libsodium (PyNaCl): the same signatures as
    cryptography's (Ed25519 signatures are deterministic, RFC 8032), in about 0.65 of its
    time on the hub's objects (bench/sign_path.py). Keys are made and stored with
    cryptography (hub.signing.keyring); this only signs."""

    __slots__ = ("_key",)

    def __init__(self, key: Ed25519PrivateKey) -> None:
        seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        self._key = nacl.signing.SigningKey(seed)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data).signature


def protected_header(header: Mapping[str, Any]) -> str:
    """`header` as a JWS carries it: its JSON (in `header`'s order), base64url-encoded."""
    return b64url(orjson.dumps(dict(header)))


def sign_encoded(key: Signs, encoded_header: str, payload: bytes) -> str:
    """The detached compact JWS of `payload` under a header already encoded (for a signer
    that puts one header on many payloads: the header is encoded once)."""
    signing_input = b"%s.%s" % (encoded_header.encode("ascii"), _b64url(payload))
    return f"{encoded_header}..{b64url(key.sign(signing_input))}"


def sign_detached(key: Signs, header: Mapping[str, Any], payload: bytes) -> str:
    """The detached compact JWS of `payload` under `header` (which names alg and kid)."""
    return sign_encoded(key, protected_header(header), payload)


def parse_detached(text: object) -> DetachedJws:
    """Parse a detached compact JWS signed with Ed25519; MalformedJws says why not."""
    if not isinstance(text, str):
        raise MalformedJws("a signature must be a string")
    parts = text.split(".")
    if len(parts) != 3:
        raise MalformedJws("a compact JWS has three parts separated by dots")
    encoded_header, payload, signature = parts
    if payload:
        raise MalformedJws("the payload part must be empty (detached content, RFC 7515 F)")
    if len(encoded_header) > _MAX_HEADER:
        raise MalformedJws("the protected header is too long")
    try:
        header = orjson.loads(b64url_decode(encoded_header))
    except orjson.JSONDecodeError as exc:
        raise MalformedJws("the protected header is not JSON") from exc
    if not isinstance(header, dict):
        raise MalformedJws("the protected header is not a JSON object")
    if header.get("alg") not in ED25519_ALGS:
        raise MalformedJws(f"alg is {header.get('alg')!r}; only EdDSA (Ed25519) is accepted")
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise MalformedJws("the protected header names no kid")
    if "crit" in header or header.get("b64", True) is not True:
        # RFC 7797 unencoded payloads and critical extensions change what is signed.
        raise MalformedJws("crit and b64 header parameters are not supported")
    raw = b64url_decode(signature)
    if len(raw) != _SIGNATURE_LEN:
        raise MalformedJws(f"an Ed25519 signature is {_SIGNATURE_LEN} bytes, not {len(raw)}")
    return DetachedJws(header, encoded_header, raw)


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The key as an OKP JWK (RFC 8037) with just the members its thumbprint covers."""
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)}


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url): the hub's key ids are these."""
    members = {name: jwk[name] for name in ("crv", "kty", "x")}
    return b64url(hashlib.sha256(rfc8785.dumps(members)).digest())


def load_jwk(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    """An Ed25519 public key from an OKP JWK; ValueError when it is not one."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("not an OKP Ed25519 key")
    try:
        raw = b64url_decode(str(jwk.get("x", "")))
    except MalformedJws as exc:
        raise ValueError(f"x is {exc}") from exc
    if len(raw) != 32:
        raise ValueError("x is not a 32-byte Ed25519 public key")
    return Ed25519PublicKey.from_public_bytes(raw)


@dataclass(frozen=True, slots=True)
class AttachedJws:
    """A JWS that carries its payload (RFC 7515 compact or flattened JSON serialization):
    the signature as a detached JWS over `payload`, which is not parsed here."""

    detached: str  # `header..signature`: what MemberKeys.check takes
    payload: bytes


def _part(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str):
        raise MalformedJws(f"the JSON serialization's {name!r} must be a string")
    return value


def parse_attached(value: bytes, doc: object = None) -> AttachedJws:
    """A compact JWS (`value`), or the flattened JSON serialization already parsed (`doc`),
    taken apart; MalformedJws says what is wrong. The signature is checked by the caller."""
    if isinstance(doc, dict):
        if "signatures" in doc:
            raise MalformedJws(
                "the general JSON serialization (`signatures`) is not accepted: one "
                "signature, in the compact or the flattened JSON serialization"
            )
        if "header" in doc:
            # Only what the signature covers is believed: alg and kid must be protected.
            raise MalformedJws(
                "unprotected header parameters (`header`) are not accepted: put alg and kid "
                "in the protected header"
            )
        extra = sorted(set(doc) - {"protected", "payload", "signature"})
        if extra:
            raise MalformedJws(f"unknown members in the JSON serialization: {extra}")
        parts = [_part(doc, "protected"), _part(doc, "payload"), _part(doc, "signature")]
    else:
        try:
            text = value.strip().decode("ascii")
        except UnicodeDecodeError as exc:
            raise MalformedJws("a compact JWS is ASCII") from exc
        parts = text.split(".")
        if len(parts) != 3:  # header.payload.signature
            raise MalformedJws("a compact JWS has three parts separated by dots")
    encoded_header, encoded_payload, signature = parts
    if not encoded_payload:
        raise MalformedJws(
            "the payload is empty: a detached JWS goes in the cirt-hub-signature header, "
            "with the record value as its payload"
        )
    detached = f"{encoded_header}..{signature}"
    parse_detached(detached)  # the header and signature rules of every member signature
    try:
        payload = b64url_decode(encoded_payload)
    except MalformedJws as exc:
        raise MalformedJws(f"the payload is {exc}") from exc
    return AttachedJws(detached, payload)


def looks_compact(value: bytes) -> bool:
    """Whether a record value is meant as a compact JWS (three parts) rather than JSON:
    decides which refusal it gets, never whether it is believed."""
    return bool(_COMPACT.fullmatch(value.strip()))


def looks_flattened(doc: object) -> bool:
    """Whether parsed JSON is meant as a JWS JSON serialization rather than STIX (which has
    a `type`)."""
    return (
        isinstance(doc, dict)
        and "type" not in doc
        and "payload" in doc
        and ("signature" in doc or "signatures" in doc)
    )
