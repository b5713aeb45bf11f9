"""Member signatures: a CIRT's own detached JWS over each object it sends, and its check.

A member signs an object by putting, in the provenance extension of the object it submits,

    {"extension_type": "property-extension", "member_signature": "<detached JWS>"}

where the JWS (alg EdDSA, kid = a key listed for the member in the federation file) covers
the RFC 8785 canonical JSON of the object without that extension: the same rule the hub
follows for its own signature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub.federation import Federation
from hub.model import MemberSignature, RefusalCode
from hub.signing.jws import MalformedJws, load_jwk, parse_detached


class MemberSignatureError(Exception):
    """Why a member signature was not accepted; `reason` is a stable short code."""

    def __init__(self, reason: RefusalCode, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class MemberKeys:
    """Every member's listed public keys, by kid (two members may pick the same kid)."""

    def __init__(self, keys: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        self._by_kid: dict[str, list[tuple[str, Ed25519PublicKey]]] = {}
        for member, jwk in keys:
            self._by_kid.setdefault(str(jwk["kid"]), []).append((member, load_jwk(jwk)))

    @classmethod
    def from_federation(cls, federation: Federation) -> MemberKeys:
        return cls((m.id, jwk) for m in federation.members for jwk in m.public_keys)

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any]) -> MemberKeys:
        """From the hub's member-keys JWKS, where every key names its `member`."""
        return cls((str(k["member"]), k) for k in jwks.get("keys", []) if "member" in k)

    def check(self, jws: object, payload: bytes, member: str) -> MemberSignature:
        """The verified signature of `member` over `payload`; MemberSignatureError otherwise."""
        try:
            parsed = parse_detached(jws)
        except MalformedJws as exc:
            raise MemberSignatureError(
                RefusalCode.MEMBER_SIGNATURE_MALFORMED, f"the member signature is not usable: {exc}"
            ) from exc
        holders = self._by_kid.get(parsed.kid, [])
        own = [key for owner, key in holders if owner == member]
        if not own:
            others = sorted({owner for owner, _ in holders})
            if others:
                raise MemberSignatureError(
                    RefusalCode.MEMBER_SIGNATURE_WRONG_MEMBER,
                    f"signed with key {parsed.kid!r} of {', '.join(others)}, not of the "
                    f"submitting member {member!r}",
                )
            raise MemberSignatureError(
                RefusalCode.MEMBER_SIGNATURE_UNKNOWN_KEY,
                f"signed with key {parsed.kid!r}, which is not listed for {member!r} in the "
                "federation file (public_keys)",
            )
        if not any(parsed.verifies(key, payload) for key in own):
            raise MemberSignatureError(
                RefusalCode.MEMBER_SIGNATURE_INVALID,
                f"the member signature (key {parsed.kid!r}) does not match the object: "
                "it was changed after signing, or the signature is forged",
            )
        return MemberSignature(str(jws), parsed.kid, member, hashlib.sha256(payload).digest())
