"""What the console says of an object's signatures: the hub's and the member's, checked
here with the same code as `cirt-hub verify` (hub.signing.verify), naming each key id."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from hub.api.keys import SETTINGS, SIGNING_KEYS
from hub.signing.jws import MalformedJws, parse_detached
from hub.signing.members import MemberKeys
from hub.signing.provenance import extension_of
from hub.signing.verify import Verifier, hub_keys


@dataclass(frozen=True)
class Checked:
    """One signature's outcome: `state` is valid, invalid, none, predefined, unchecked
    (the hub's failed first) or redacted (it covers the object before the hub changed it)."""

    state: str
    kid: str | None = None
    reason: str | None = None  # the verifier's short code when invalid


@dataclass(frozen=True)
class Signatures:
    hub: Checked
    member: Checked


def _member_kid(ext: object) -> tuple[str | None, bool, bool]:
    """(the member signature's kid, whether there is one, whether the object was redacted)."""
    if not isinstance(ext, Mapping):
        return None, False, False
    signature = ext.get("member_signature")
    if not isinstance(signature, str):
        return None, False, ext.get("redacted") is True
    try:
        kid: str | None = parse_detached(signature).kid
    except MalformedJws:
        kid = None
    return kid, True, ext.get("redacted") is True


def check(obj: Mapping[str, Any], jwks: Mapping[str, Any], members: MemberKeys) -> Signatures:
    """Both signatures of `obj`, against the hub's published keys and the members' keys."""
    verdict = Verifier(hub_keys(jwks), members).verify(obj)
    member_kid, signed, redacted = _member_kid(extension_of(obj))
    if verdict.reason == "predefined":
        return Signatures(Checked("predefined"), Checked("none"))
    reason = verdict.reason
    member_failed = reason.startswith("member-signature") or reason == "chain-broken"
    if verdict.valid or member_failed:
        hub = Checked("valid", verdict.kid)
        if member_failed:
            member = Checked("invalid", member_kid, verdict.reason)
        elif not signed:
            member = Checked("none")
        else:
            member = Checked("redacted" if redacted else "valid", member_kid)
        return Signatures(hub, member)
    return Signatures(
        Checked("invalid", verdict.kid, verdict.reason),
        Checked("unchecked", member_kid) if signed else Checked("none"),
    )


async def signatures_of(request: web.Request, obj: Mapping[str, Any]) -> Signatures:
    jwks = await asyncio.to_thread(request.app[SIGNING_KEYS].jwks)
    members = MemberKeys.from_federation(request.app[SETTINGS].federation)
    return check(obj, jwks, members)


def reason_text(code: str | None, gettext: Callable[[str], str]) -> str:
    """A verifier's reason code in the reader's words (the code itself when unknown)."""
    texts = {
        "missing-extension": gettext("it carries no hub signature"),
        "bad-signature": gettext("the hub signature is not usable"),
        "unknown-kid": gettext("it was signed with a key the hub does not publish"),
        "tampered": gettext("the object was changed after it was signed"),
        "chain-broken": gettext("the chain of earlier signatures was changed"),
        "member-signature-malformed": gettext("the member signature is not usable"),
        "member-signature-unknown-key": gettext("the member's key is not listed for it"),
        "member-signature-wrong-member": gettext("the key belongs to another member"),
        "member-signature-invalid": gettext("the object was changed after the member signed it"),
    }
    return texts.get(code or "", code or "")
