"""authenticate: check each object's member signature, if it has one, and take it off.

What follows sees the object as the member signed it (without the provenance extension);
the verified signature travels beside it, on the item, until sign carries it to readers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from hub.federation import Federation
from hub.model import Item, RefusalCode, Submission
from hub.signing.jws import MalformedJws, parse_detached
from hub.signing.members import MemberKeys, MemberSignatureError
from hub.signing.provenance import (
    MAX_CHAIN,
    CanonicalizationError,
    canonical,
    extension_of,
    without_extension,
)


def chain_problem(chain: object) -> str:
    """What is wrong with a submitted `chain` (a relayed object's earlier signatures), or ""."""
    if not isinstance(chain, list):
        return "the provenance extension's chain must be a list of signatures"
    if len(chain) > MAX_CHAIN:
        return f"the chain holds {len(chain)} signatures; at most {MAX_CHAIN} hops are kept"
    for n, entry in enumerate(chain):
        try:
            parse_detached(entry)
        except MalformedJws as exc:
            return f"chain[{n}] is not a detached JWS: {exc}"
    return ""


@dataclass(frozen=True)
class Authenticate:
    federation: Federation
    keys: MemberKeys = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", MemberKeys.from_federation(self.federation))

    def __call__(self, submission: Submission) -> Submission:
        member = submission.member
        sender = submission.sender
        required = sender is not None and sender.sharing.get("require_signature") is True

        def check(item: Item) -> Item:
            if not isinstance(item.obj, Mapping):
                return item  # validate refuses it, saying why
            where = f"objects[{item.index}] ({item.id or 'no id'})"
            ext = extension_of(item.obj)
            body = without_extension(item.obj) if ext is not None else item.obj
            if ext is not None and not isinstance(ext, Mapping):
                return item.refuse(
                    RefusalCode.MEMBER_SIGNATURE_MALFORMED,
                    f"{where}: the provenance extension must be a JSON object",
                )
            jws = ext.get("member_signature") if ext is not None else None
            chain = ext.get("chain", []) if ext is not None else []
            if chain and jws is None:
                return item.refuse(
                    RefusalCode.MEMBER_SIGNATURE_MALFORMED,
                    f"{where}: a chain of earlier signatures comes only with the relaying "
                    "peer's own member_signature",
                )
            problem = chain_problem(chain)
            if problem:
                return item.refuse(RefusalCode.MEMBER_SIGNATURE_MALFORMED, f"{where}: {problem}")
            if jws is None:
                if required:
                    return item.refuse(
                        RefusalCode.MEMBER_SIGNATURE_MISSING,
                        f"{where}: {member!r} requires a signature on every object it sends "
                        "(sharing.require_signature) and this one is not signed",
                    )
                return replace(item, obj=body)
            try:
                payload = canonical(body)
            except CanonicalizationError as exc:
                return item.refuse(
                    RefusalCode.INVALID_STIX, f"{where}: has no canonical JSON form: {exc}"
                )
            try:
                signature = self.keys.check(jws, payload, member)
            except MemberSignatureError as exc:
                return item.refuse(exc.reason, f"{where}: {exc.message}")
            return replace(item, obj=body, member_signature=signature, chain=tuple(chain))

        return submission.map_accepted(check)
