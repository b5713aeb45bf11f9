"""sign: the hub's signature and provenance on every object, as it will be delivered."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from hub.federation import Federation
from hub.pipeline.submission import Item, Submission
from hub.signing.provenance import (
    ANONYMOUS,
    CanonicalizationError,
    HubSigner,
    Provenance,
    canonical,
    without_extension,
)


@dataclass(frozen=True)
class Sign:
    signer: HubSigner
    federation: Federation

    def __call__(self, submission: Submission) -> Submission:
        self.signer.refresh()  # a rotation made on another node takes effect here
        sender = next((m for m in self.federation.members if m.id == submission.member), None)
        # An anonymous sender's own signature would name it: it is checked, then not carried.
        anonymous = sender is not None and sender.sharing.get("anonymous") is True
        policy_version = self.federation.policy_version

        def seal(item: Item) -> Item:
            # Only what authenticate verified is carried; anything else in the extension goes.
            body = without_extension(item.obj)
            try:
                payload = canonical(body)
            except CanonicalizationError as exc:
                where = f"objects[{item.index}] ({item.id or 'no id'})"
                return item.refuse("invalid-stix", f"{where}: has no canonical JSON form: {exc}")
            member = None if anonymous else item.member_signature
            # A stage after authenticate changed the object (a default marking, redaction):
            # the member's signature covers what it sent, no longer what is delivered.
            changed = member is not None and hashlib.sha256(payload).digest() != (
                member.payload_sha256
            )
            provenance = Provenance(
                received=submission.received,
                submitter=ANONYMOUS if anonymous else submission.member,
                policy_version=policy_version,
                redacted=item.redacted or changed,
                member_signature=member.jws if member else None,
            )
            return replace(item, obj=self.signer.sign_body(body, payload, provenance))

        return submission.map_accepted(seal)
