"""What a relayed object looks like, and how a hub recognises its own objects coming back.

A peer's object arrives with the peer's provenance extension. Submitted here, the peer's
signature becomes the member signature (the peer hub is a member here, its JWKS keys listed
as its `public_keys`), and what signed it before (the original member, earlier hubs) goes
into `chain`, oldest first. All of them cover the same canonical object.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from hub.signing.jws import MalformedJws, parse_detached
from hub.signing.provenance import EXTENSION_ID, EXTENSION_TYPE, extension_of, without_extension


def signatures(obj: Mapping[str, Any]) -> list[str]:
    """Every signature on `obj`: its chain, the member's, the delivering hub's (oldest first)."""
    ext = extension_of(obj)
    if not isinstance(ext, Mapping):
        return []
    found = [j for j in ext.get("chain", []) if isinstance(j, str)]
    found += [
        ext[name] for name in ("member_signature", "signature") if isinstance(ext.get(name), str)
    ]
    return found


def signed_by(obj: Mapping[str, Any], kids: Collection[str]) -> bool:
    """True when any signature on `obj` names one of `kids` (say, this hub's own keys)."""
    for jws in signatures(obj):
        try:
            if parse_detached(jws).kid in kids:
                return True
        except MalformedJws:
            continue
    return False


def relayed(obj: Mapping[str, Any]) -> dict[str, Any]:
    """`obj` as the peer delivered it (its hub signature checked), ready to submit here."""
    ext = extension_of(obj)
    assert isinstance(ext, Mapping)
    earlier = [*ext.get("chain", [])]
    if isinstance(ext.get("member_signature"), str):
        earlier.append(ext["member_signature"])
    carried: dict[str, Any] = {
        "extension_type": EXTENSION_TYPE,
        "member_signature": ext["signature"],
    }
    if earlier:
        carried["chain"] = earlier
    body = without_extension(obj)
    return {**body, "extensions": {**body.get("extensions", {}), EXTENSION_ID: carried}}
