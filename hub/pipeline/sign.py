"""sign: the hub's signature and provenance on every delivered variant of every object.

Runs after routing: each collection may receive its own variant (redacted, pseudonymised,
anonymised), and each is signed exactly as delivered."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

from hub.federation import Federation
from hub.model import Item, RefusalCode, Submission
from hub.records import ANONYMOUS
from hub.signing.provenance import (
    CanonicalizationError,
    HubSigner,
    Provenance,
    canonical,
    orjson_is_canonical,
    without_extension,
)
from hub.stix.markings import tlp_by_marking_id
from hub.stix.predefined import tlp_definitions


@dataclass(frozen=True)
class Sign:
    signer: HubSigner
    federation: Federation

    def __call__(self, submission: Submission) -> Submission:
        # One per submission, with the current key: a rotation made on another node takes
        # effect here; the submission's objects share their protected headers.
        sealer = self.signer.sealer()
        sender = submission.sender
        # An anonymous sender's own signature would name it: it is checked, then not carried.
        anonymous = sender is not None and sender.sharing.get("anonymous") is True
        policy_version = submission.policy_version or self.federation.policy_version

        def seal(item: Item) -> Item:
            if item.obj.get("type") == "marking-definition" and item.id in tlp_by_marking_id():
                return _as_published(item)
            try:
                original = without_extension(item.obj)
                # Variants only drop properties or put strings for strings: what decides
                # how to canonicalize the object decides it for all of them.
                plain = orjson_is_canonical(original)
                accepted = canonical(original, plain=plain)
                # Routing hands recipients that get the same variant one and the same
                # mapping: each is canonicalized once, by identity (the item holds them all
                # while this runs, so no id is reused), and the object as accepted is one.
                forms: dict[int, tuple[dict[str, Any], bytes]] = {
                    id(item.obj): (original, accepted)
                }
                sealed: dict[tuple[bytes, bool], dict[str, Any]] = {}
                deliveries = []
                for delivery in item.deliveries:
                    form = forms.get(id(delivery.obj))
                    if form is None:
                        # Only what authenticate verified is carried; the rest of the
                        # extension goes.
                        body = without_extension(delivery.obj)
                        form = forms[id(delivery.obj)] = (body, canonical(body, plain=plain))
                    body, payload = form
                    hidden = anonymous or delivery.anonymous
                    # Equal bytes reached by different routes are signed once too.
                    key = (payload, hidden)
                    if key not in sealed:
                        sealed[key] = sealer.seal(
                            body,
                            payload,
                            self._provenance(
                                item, payload, accepted, hidden, submission, policy_version
                            ),
                        )
                    deliveries.append(replace(delivery, obj=sealed[key]))
            except CanonicalizationError as exc:
                where = f"objects[{item.index}] ({item.id or 'no id'})"
                return item.refuse(
                    RefusalCode.INVALID_STIX, f"{where}: has no canonical JSON form: {exc}"
                )
            return replace(item, deliveries=tuple(deliveries))

        return submission.map_accepted(seal)

    @staticmethod
    def _provenance(
        item: Item,
        payload: bytes,
        accepted: bytes,
        hidden: bool,
        submission: Submission,
        policy_version: str,
    ) -> Provenance:
        """What the hub says about one delivered variant of an object."""
        shaped = payload != accepted  # redacted, pseudonymised or pruned for this recipient
        # A member's signature over what was withheld would let a recipient test guesses of
        # it (a confidence, a victim's address): it travels only with the object as accepted.
        member = None if hidden or shaped else item.member_signature
        # Changed after authenticate (a default marking, the sender set as creator): the
        # member's signature covers what it sent, no longer what is delivered.
        changed = member is not None and hashlib.sha256(payload).digest() != member.payload_sha256
        return Provenance(
            received=submission.received,
            submitter=ANONYMOUS if hidden else submission.member,
            policy_version=policy_version,
            redacted=item.redacted or changed or shaped,
            member_signature=member.jws if member else None,
            # Earlier signatures cover the same object as the member's: they go together.
            chain=item.chain if member else (),
        )


def _as_published(item: Item) -> Item:
    """A TLP definition travels as its specification writes it, unsigned (see
    hub/stix/predefined.py); another tool's own id for a TLP level travels nowhere: mark
    rewrote every reference to it to the standard id, whose definition is in `public`."""
    spec = tlp_definitions().get(item.id)
    if spec is None:
        return replace(item, deliveries=())
    return replace(item, deliveries=tuple(replace(d, obj=spec) for d in item.deliveries))
