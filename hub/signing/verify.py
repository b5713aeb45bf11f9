"""Offline verification of delivered objects against the hub's JWKS (and members' keys).

Needs nothing but the object and the keys: no hub, no network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub.model import RefusalCode
from hub.signing.jws import MalformedJws, load_jwk, parse_detached
from hub.signing.members import MemberKeys, MemberSignatureError
from hub.signing.provenance import (
    HEADER_CLAIMS,
    CanonicalizationError,
    Provenance,
    canonical,
    digest,
    extension_of,
    without_extension,
)
from hub.stix.predefined import is_predefined


@dataclass(frozen=True, slots=True)
class Verdict:
    """One object's outcome: `reason` is "valid" or a short code, `message` says why."""

    id: str
    valid: bool
    reason: str
    message: str
    kid: str | None = None
    submitter: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "valid": self.valid,
            "reason": self.reason,
            "message": self.message,
            "kid": self.kid,
            "submitter": self.submitter,
        }


def hub_keys(jwks: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """kid → key for every Ed25519 key in a JWKS (current and retired alike)."""
    keys = {}
    for jwk in jwks.get("keys", []):
        if isinstance(jwk, Mapping) and jwk.get("kty") == "OKP" and "kid" in jwk:
            keys[str(jwk["kid"])] = load_jwk(jwk)
    return keys


def chain_note(provenance: Provenance) -> str | MemberSignatureError:
    """What the verdict says of a relayed object's chain of earlier signatures.

    When the relaying member was a hub, its signature's protected header bound the member
    signature and chain it carried: the chain here must be exactly those."""
    chain = provenance.chain
    if not chain:
        return ""
    try:
        relayer = parse_detached(provenance.member_signature)
    except MalformedJws:
        return MemberSignatureError(
            RefusalCode.CHAIN_BROKEN, "a chain without a relaying signature"
        )
    claims = relayer.header.get(HEADER_CLAIMS)
    if isinstance(claims, Mapping):
        rest = digest(orjson.dumps(list(chain[:-1]))) if len(chain) > 1 else None
        if (
            claims.get("member_signature_sha256") != digest(chain[-1])
            or claims.get("chain_sha256") != rest
        ):
            return MemberSignatureError(
                RefusalCode.CHAIN_BROKEN,
                "the chain of earlier signatures is not the one the relaying hub signed",
            )
    return f"; relayed, {len(chain)} earlier signature(s) in its chain"


class Verifier:
    """Checks the hub signature of objects, and member signatures when member keys are known."""

    def __init__(
        self, hub: Mapping[str, Ed25519PublicKey], members: MemberKeys | None = None
    ) -> None:
        self._hub = dict(hub)
        self._members = members

    def verify(self, obj: object) -> Verdict:
        oid = str(obj.get("id", "")) if isinstance(obj, Mapping) else ""

        def invalid(reason: str, message: str, **kw: Any) -> Verdict:
            return Verdict(oid, False, reason, message, **kw)

        if not isinstance(obj, Mapping):
            return invalid("not-an-object", "not a JSON object")
        ext = extension_of(obj)
        if ext is None and is_predefined(obj):
            return Verdict(
                oid,
                True,
                "predefined",
                "published as its specification writes it, unsigned: identical to the hub's copy",
            )
        if ext is None:
            return invalid("missing-extension", "carries no hub provenance extension")
        if not isinstance(ext, Mapping):
            return invalid("tampered", "the provenance extension is not a JSON object")
        try:
            jws = parse_detached(ext.get("signature"))
        except MalformedJws as exc:
            return invalid("bad-signature", f"the hub signature is not usable: {exc}")
        key = self._hub.get(jws.kid)
        if key is None:
            return invalid(
                "unknown-kid", f"signed with key {jws.kid!r}, which the JWKS lacks", kid=jws.kid
            )
        try:
            provenance = Provenance.from_extension(ext)
        except ValueError as exc:
            return invalid("tampered", f"the provenance extension was changed: {exc}", kid=jws.kid)
        if ext["kid"] != jws.kid or jws.header.get(HEADER_CLAIMS) != provenance.claims():
            return invalid(
                "tampered",
                "the provenance fields differ from what the hub signed",
                kid=jws.kid,
            )
        try:
            payload = canonical(without_extension(obj))
        except CanonicalizationError as exc:
            return invalid("tampered", f"the object has no canonical form: {exc}", kid=jws.kid)
        fields = {"kid": jws.kid, "submitter": provenance.submitter}
        if not jws.verifies(key, payload):
            return invalid(
                "tampered",
                "the hub signature does not match the object: it was changed after the hub "
                "signed it",
                **fields,
            )
        note = self._member_note(provenance, payload)
        if isinstance(note, MemberSignatureError):
            return invalid(note.reason, note.message, **fields)
        chain = chain_note(provenance)
        if isinstance(chain, MemberSignatureError):
            return invalid(chain.reason, chain.message, **fields)
        return Verdict(oid, True, "valid", note + chain, **fields)

    def _member_note(self, provenance: Provenance, payload: bytes) -> str | MemberSignatureError:
        if provenance.member_signature is None:
            return f"hub signature valid; submitter {provenance.submitter}, no member signature"
        if provenance.redacted:
            return (
                "hub signature valid; the member signature covers the object as submitted, "
                "before the hub redacted it, so it cannot be checked here"
            )
        if self._members is None:
            return "hub signature valid; member signature present (no member keys to check it)"
        try:
            self._members.check(provenance.member_signature, payload, provenance.submitter)
        except MemberSignatureError as exc:
            return exc
        return f"hub signature and member signature of {provenance.submitter} valid"
