"""The provenance extension: what the hub vouches for on every object it delivers.

    "extensions": {"extension-definition--d48c7d39-…": {
        "extension_type": "property-extension",
        "signature": "<detached JWS>",   the hub's, over the canonical object (see below)
        "kid": "<hub key id>",
        "received": "<when the hub received the object>",
        "submitter": "<member id>" | "anonymous",
        "policy_version": "<hash of the rules it was routed under>",
        "redacted": false,               true: changed by the hub after the submitter sent it
        "member_signature": "<detached JWS>",  only when the member signed
        "chain": ["<detached JWS>", ...]        only for relayed objects (see below)
    }}

The signed payload is the RFC 8785 canonical JSON of the object without this extension
(and without `extensions` when nothing else is left in it). The other fields are bound to
the signature by the JWS protected header, which carries them as `provenance` (the member
signature as its SHA-256): a verifier checks that they equal the extension's fields.

A relayed object (hub-to-hub federation: a peer hub is a member here) arrives signed by the
peer, whose signature becomes the member signature; `chain` keeps the signatures that were
on it before, oldest first (the original member's, earlier hubs'), each over the same
canonical object, so the whole path stays checkable and a hub recognises its own objects
coming back.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import rfc8785

from hub.signing.jws import (
    HUB_ALG,
    Signs,
    SodiumKey,
    b64url,
    protected_header,
    sign_detached,
    sign_encoded,
)
from hub.signing.keyring import KeyRecord, KeyringError, KeyStore

log = logging.getLogger(__name__)

EXTENSION_ID = "extension-definition--d48c7d39-99e9-432b-b5db-b86b19be051f"
EXTENSION_TYPE = "property-extension"
HEADER_CLAIMS = "provenance"
EXTENSION_FIELDS = frozenset(
    {
        "extension_type",
        "signature",
        "kid",
        "received",
        "submitter",
        "policy_version",
        "redacted",
        "member_signature",
        "chain",
    }
)
MAX_CHAIN = 16

CanonicalizationError = rfc8785.CanonicalizationError


_MAX_SAFE_INT = 2**53 - 1


def orjson_is_canonical(value: object) -> bool:
    """True when orjson's sorted output is byte for byte RFC 8785 for `value`: no floats
    (number formatting differs), integers within I-JSON's range, keys in ASCII (the two
    sort orders agree there). String escaping is the same in both; the tests hold orjson
    to rfc8785 on random JSON."""
    stack = [value]
    while stack:
        v = stack.pop()
        if v is None or isinstance(v, str | bool):
            continue
        if isinstance(v, int):
            if -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT:
                continue
            return False
        if isinstance(v, dict):
            for key, item in v.items():
                if not isinstance(key, str) or not key.isascii():
                    return False
                stack.append(item)
        elif isinstance(v, list):
            stack.extend(v)
        else:
            return False
    return True


def canonical(obj: Mapping[str, Any], *, plain: bool | None = None) -> bytes:
    """RFC 8785 canonical JSON: the bytes every signature here covers.

    The `rfc8785` package is the reference, and decides every case orjson might get wrong;
    the common case (STIX without floats) goes through orjson, about 100 times faster.
    `plain` is that check's answer when the caller has it: a variant of an object (fewer
    properties, strings for strings) answers as the object did.
    """
    if plain is None:
        plain = orjson_is_canonical(obj)
    if plain:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    return rfc8785.dumps(obj)


def extension_of(obj: Mapping[str, Any]) -> object | None:
    """The provenance extension as found on `obj` (any JSON value), or None."""
    extensions = obj.get("extensions")
    return extensions.get(EXTENSION_ID) if isinstance(extensions, Mapping) else None


def without_extension(obj: Mapping[str, Any]) -> dict[str, Any]:
    """`obj` as signed: without the provenance extension, and without an emptied `extensions`."""
    body = dict(obj)
    extensions = body.get("extensions")
    if isinstance(extensions, Mapping) and EXTENSION_ID in extensions:
        rest = {k: v for k, v in extensions.items() if k != EXTENSION_ID}
        if rest:
            body["extensions"] = rest
        else:
            del body["extensions"]
    return body


def digest(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return b64url(hashlib.sha256(data).digest())


@dataclass(frozen=True, slots=True)
class Provenance:
    """What the hub says about one delivered object, besides the signature itself."""

    received: str
    submitter: str
    policy_version: str
    redacted: bool = False
    member_signature: str | None = None
    chain: tuple[str, ...] = ()

    def claims(self) -> dict[str, Any]:
        """The protected-header claims that bind these fields to the hub's signature."""
        claims: dict[str, Any] = {
            "received": self.received,
            "submitter": self.submitter,
            "policy_version": self.policy_version,
            "redacted": self.redacted,
        }
        if self.member_signature is not None:
            claims["member_signature_sha256"] = digest(self.member_signature)
        if self.chain:
            claims["chain_sha256"] = digest(orjson.dumps(list(self.chain)))
        return claims

    @classmethod
    def from_extension(cls, ext: Mapping[str, Any]) -> Provenance:
        """The fields of a delivered extension; ValueError names the first one that is off."""
        unknown = sorted(set(ext) - EXTENSION_FIELDS)
        if unknown:
            raise ValueError(f"the extension holds {', '.join(unknown)}, never written by a hub")
        if ext.get("extension_type") != EXTENSION_TYPE:
            raise ValueError(f"extension_type is not {EXTENSION_TYPE!r}")
        for name in ("received", "submitter", "policy_version", "kid", "signature"):
            if not isinstance(ext.get(name), str):
                raise ValueError(f"{name} is missing or not a string")
        if not isinstance(ext.get("redacted"), bool):
            raise ValueError("redacted is missing or not true/false")
        member = ext.get("member_signature")
        if member is not None and not isinstance(member, str):
            raise ValueError("member_signature is not a string")
        chain = ext.get("chain", [])
        if not isinstance(chain, list) or not all(isinstance(j, str) for j in chain):
            raise ValueError("chain is not a list of signatures")
        return cls(
            ext["received"],
            ext["submitter"],
            ext["policy_version"],
            ext["redacted"],
            member,
            tuple(chain),
        )


def hub_header(kid: str, provenance: Provenance) -> dict[str, Any]:
    """The protected header of the hub's signature: its key, and the provenance it binds."""
    return {"alg": HUB_ALG, "kid": kid, HEADER_CLAIMS: provenance.claims()}


def attach(
    body: Mapping[str, Any],
    provenance: Provenance,
    key: Signs,
    kid: str,
    payload: bytes,
) -> dict[str, Any]:
    """`body` (the object without the extension, whose canonical form is `payload`) signed."""
    signature = sign_detached(key, hub_header(kid, provenance), payload)
    return with_extension(body, provenance, kid, signature)


def with_extension(
    body: Mapping[str, Any], provenance: Provenance, kid: str, signature: str
) -> dict[str, Any]:
    """`body` with the provenance extension carrying `signature` (the hub's, by `kid`)."""
    ext: dict[str, Any] = {
        "extension_type": EXTENSION_TYPE,
        "signature": signature,
        "kid": kid,
        "received": provenance.received,
        "submitter": provenance.submitter,
        "policy_version": provenance.policy_version,
        "redacted": provenance.redacted,
    }
    if provenance.member_signature is not None:
        ext["member_signature"] = provenance.member_signature
    if provenance.chain:
        ext["chain"] = list(provenance.chain)
    extensions = body.get("extensions")
    others = dict(extensions) if isinstance(extensions, Mapping) else {}
    return {**body, "extensions": {**others, EXTENSION_ID: ext}}


class Sealer:
    """Signs with one key, for one submission: each distinct provenance's protected header is
    built and encoded once, not per object. A rotation takes effect with the next Sealer."""

    __slots__ = ("_headers", "_key", "kid")

    def __init__(self, kid: str, key: Signs) -> None:
        self.kid = kid
        self._key = key
        # Bounded by the submission: one entry per distinct provenance among its objects.
        self._headers: dict[Provenance, str] = {}

    def seal(
        self, body: Mapping[str, Any], payload: bytes, provenance: Provenance
    ) -> dict[str, Any]:
        """`body` (whose canonical form is `payload`) signed, as attach() signs it."""
        header = self._headers.get(provenance)
        if header is None:
            header = protected_header(hub_header(self.kid, provenance))
            self._headers[provenance] = header
        signature = sign_encoded(self._key, header, payload)
        return with_extension(body, provenance, self.kid, signature)


class HubSigner:
    """Signs with the current key of the keys dir, following rotations made elsewhere.

    Holds the passphrase so that a key made by `cirt-hub keys rotate` on another node can
    be opened without a restart: the passphrase protects keys at rest, not in memory.
    """

    def __init__(self, store: KeyStore, passphrase: str | None) -> None:
        self.store = store
        self._passphrase = passphrase
        self._lock = threading.Lock()
        self._current: tuple[KeyRecord, Signs] | None = None

    def refresh(self) -> str:
        """Load the current key (making the first one if there is none); its kid.

        Once a key is loaded, a new one that cannot be opened (a wrong passphrase on the
        rotating node, a damaged file) is logged and signing goes on with the loaded key,
        whose signatures still verify, rather than refusing every submission.
        """
        with self._lock:
            try:
                record = self.store.current() or self.store.ensure_key(self._passphrase)
                if self._current is None or self._current[0].kid != record.kid:
                    private = self.store.private_key(record, self._passphrase)
                    self._current = (record, SodiumKey(private))
            except KeyringError:
                if self._current is None:
                    raise
                log.exception("cannot load the new signing key; still signing with the old one")
            return self._current[0].kid

    def sealer(self) -> Sealer:
        """A Sealer with the current key (a rotation made elsewhere picked up): one per
        submission, so that its objects share their protected headers."""
        self.refresh()
        assert self._current is not None
        record, key = self._current
        return Sealer(record.kid, key)

    def sign(self, obj: Mapping[str, Any], provenance: Provenance) -> dict[str, Any]:
        """`obj` as delivered, with the provenance extension and the hub's signature."""
        body = without_extension(obj)
        return self.sign_body(body, canonical(body), provenance)

    def sign_body(
        self, body: Mapping[str, Any], payload: bytes, provenance: Provenance
    ) -> dict[str, Any]:
        """Like sign(), for a caller that already holds the body and its canonical form."""
        if self._current is None:
            self.refresh()
        assert self._current is not None
        record, key = self._current
        return attach(body, provenance, key, record.kid, payload)
