"""The authenticate and sign stages on real keys: redaction noted, anonymity respected,
content without a canonical form refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hub.federation import Federation, load_federation
from hub.model import Delivery, Item, Stage, Submission
from hub.pipeline.authenticate import Authenticate
from hub.pipeline.compose import compose
from hub.pipeline.sign import Sign
from hub.signing.keyring import KeyStore
from hub.signing.members import MemberKeys
from hub.signing.provenance import EXTENSION_ID, HubSigner
from hub.signing.verify import Verifier, hub_keys
from tests.conftest import ROOT
from tests.signing.support import member_sign, new_member_key, public_jwk
from tests.stixdata import TLP2, incident_report

KEY = new_member_key("ng-cert-1")


def federation(**sharing: Any) -> Federation:
    base = load_federation(ROOT / "examples" / "federation.yaml")
    members = tuple(
        replace(m, public_keys=(public_jwk(KEY),), sharing=sharing) if m.id == "ng-cert" else m
        for m in base.members
    )
    return replace(base, members=members)


def submission(fed: Federation, objects: list[dict[str, Any]]) -> Submission:
    return Submission(
        status_id="s-1",
        member="ng-cert",
        account="ng-cert-submit",
        received="2026-11-23T08:00:00.000Z",
        request_id="r-1",
        items=tuple(Item(i, o) for i, o in enumerate(objects)),
        sender=fed.member("ng-cert"),
    )


@pytest.fixture
def signer(tmp_path: Path) -> HubSigner:
    return HubSigner(KeyStore(tmp_path / "keys"), "pipeline test passphrase")


def deliver(sub: Submission) -> Submission:
    """What routing does, reduced to one delivery of each object as it stands."""
    return sub.map_accepted(lambda i: replace(i, deliveries=(Delivery("member-ng-cert", i.obj),)))


def run(
    fed: Federation,
    signer: HubSigner,
    objects: list[dict],
    *middle: Stage,
    after: Stage | None = None,
) -> list[Item]:
    """authenticate, the `middle` stages, one delivery each, `after` (a per-recipient change)."""
    stages = [Authenticate(fed), *middle, deliver, *([after] if after else []), Sign(signer, fed)]
    return list(compose(*stages)(submission(fed, objects)).items)


def delivered(item: Item) -> dict[str, Any]:
    (delivery,) = item.deliveries
    return dict(delivery.obj)


def verifier(fed: Federation, signer: HubSigner) -> Verifier:
    return Verifier(hub_keys(signer.store.jwks()), MemberKeys.from_federation(fed))


def report() -> list[dict[str, Any]]:
    return incident_report(
        "identity--c4801c91-a321-4d5c-9a4f-aee9b0f362a2", "ngCERT", TLP2["green"]
    )


def test_an_object_redacted_for_a_recipient_is_signed_as_delivered_without_the_member_jws(
    signer,
) -> None:
    fed = federation()

    def redact(sub: Submission) -> Submission:
        # What a sharing rule does for a recipient not entitled to a property: its variant.
        def without_description(i: Item) -> Item:
            (d,) = i.deliveries
            obj = {k: v for k, v in d.obj.items() if k != "description"}
            return replace(i, deliveries=(replace(d, obj=obj),))

        return sub.map_accepted(without_description)

    signed = member_sign(report()[1], KEY)
    [item] = run(fed, signer, [signed], after=redact)
    obj = delivered(item)
    ext = obj["extensions"][EXTENSION_ID]
    assert "description" not in obj and ext["redacted"] is True
    # The member's signature is not carried: it would let the recipient test guesses of
    # the description it was not given.
    assert "member_signature" not in ext
    verdict = verifier(fed, signer).verify(obj)
    assert verdict.valid, verdict
    # The same object delivered whole to another recipient keeps the member's signature.
    [whole] = run(fed, signer, [signed])
    assert (
        delivered(whole)["extensions"][EXTENSION_ID]["member_signature"]
        == (signed["extensions"][EXTENSION_ID]["member_signature"])
    )


def test_a_change_after_authenticate_is_noted_even_if_the_stage_does_not_say(signer) -> None:
    fed = federation()

    def default_marking(sub: Submission) -> Submission:
        marks = [TLP2["amber"]]
        return sub.map_accepted(lambda i: replace(i, obj={**i.obj, "object_marking_refs": marks}))

    [item] = run(fed, signer, [member_sign(report()[2], KEY)], default_marking)
    assert delivered(item)["extensions"][EXTENSION_ID]["redacted"] is True
    assert verifier(fed, signer).verify(delivered(item)).valid
    [untouched] = run(fed, signer, [member_sign(report()[2], KEY)])
    assert delivered(untouched)["extensions"][EXTENSION_ID]["redacted"] is False
    verdict = verifier(fed, signer).verify(delivered(untouched))
    assert verdict.message == "hub signature and member signature of ng-cert valid"


def test_an_anonymous_sender_is_neither_named_nor_given_away_by_its_signature(signer) -> None:
    fed = federation(anonymous=True)
    items = run(fed, signer, [member_sign(report()[1], KEY), report()[2]])
    for item in items:
        ext = delivered(item)["extensions"][EXTENSION_ID]
        assert ext["submitter"] == "anonymous" and "member_signature" not in ext
        assert "ng-cert" not in str(ext)
        assert verifier(fed, signer).verify(delivered(item)).valid


def test_content_without_a_canonical_form_is_refused_not_signed(signer) -> None:
    obj = dict(report()[3], count=2**60)  # beyond the integers I-JSON (and STIX) allow
    [item] = run(federation(), signer, [obj])
    assert item.refusal is not None and item.refusal.reason == "invalid-stix"
    assert "has no canonical JSON form" in item.refusal.message
