"""Each distinct variant signed once, each protected header encoded once per submission, the
keys dir read once per change, Ed25519 through libsodium (issue 21): the signatures stay byte
for byte what main's Sign stage wrote with cryptography's Ed25519, a variant in several
collections carries one signature, and a rotation between two submissions is picked up."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from bench.sign_path import MainSign, bench_federation, private_key, routed, signer_in
from bench.workload import Generator
from hub.federation import Federation
from hub.model import Submission
from hub.pipeline.sign import Sign
from hub.signing.keyring import KeyStore
from hub.signing.members import MemberKeys
from hub.signing.verify import Verifier, hub_keys
from tests.hubs import KEY_PASSPHRASE, RunningHub
from tests.integration.test_taxii_flow import member_identity, read_all, submit
from tests.signing.support import EXTENSION_ID, get_json, member_sign, new_member_key, public_jwk
from tests.stixdata import TLP2, incident_report, shared_objects

KEY = new_member_key("ng-cert-1")


def federation(data_dir: Path) -> Federation:
    """The benchmark's federation (every TLP level reaches someone; gh-cert pseudonymises
    mailboxes), with rw-csirt anonymous and ng-cert signing its objects."""
    base = bench_federation(data_dir)

    def adjust(member: Any) -> Any:
        if member.id == "ng-cert":
            return replace(member, public_keys=(public_jwk(KEY),))
        if member.id == "rw-csirt":
            return replace(member, sharing={**member.sharing, "anonymous": True})
        return member

    return replace(base, members=tuple(adjust(m) for m in base.members))


def real_reports(fed: Federation) -> list[tuple[str, list[dict[str, Any]]]]:
    """Real content as members send it: ATT&CK for ICS relayed by KE-CIRT, the OASIS
    examples by CERT-GH (pseudonymising), MISP conversions by an anonymous member, and
    incident reports from the benchmark's workload, signed by their sender."""
    reports = [("ke-cirt", shared_objects("mitre-attack/ics-attack-18.1.json")[:600])]
    for name in ("poisonivy.json", "apt1.json", "sighting-of-observed-data.json"):
        reports.append(("gh-cert", shared_objects(f"oasis-cti-documentation-examples/{name}")))
    misp = "misp-stix-converted/test_objects_collection_1_misp2stix21.json"
    reports.append(("rw-csirt", shared_objects(misp)))
    generator = Generator(21)
    identity = fed.member("ng-cert").identity
    for n in range(12):
        _, objects = generator.incident_bundle(size=3 + 9 * n)
        own = [{**o, "created_by_ref": identity} if "created_by_ref" in o else o for o in objects]
        reports.append(
            ("ng-cert", [member_sign(o, KEY) if k % 2 else o for k, o in enumerate(own)])
        )
    return reports


def delivered(subs: list[Submission]) -> list[tuple[str, bytes]]:
    return [
        (d.collection, orjson.dumps(d.obj))
        for s in subs
        for i in s.items
        if i.accepted
        for d in i.deliveries
    ]


def test_the_stage_signs_real_objects_byte_for_byte_as_main_did(tmp_path: Path) -> None:
    fed = federation(tmp_path)
    subs = routed(fed, real_reports(fed), tmp_path)
    with signer_in(tmp_path) as signer:
        before = [MainSign(signer, fed, private_key(signer.store))(s) for s in subs]
        after = [Sign(signer, fed)(s) for s in subs]
        jwks = signer.store.jwks()
    assert delivered(after) == delivered(before)
    assert [i.refusal for s in after for i in s.items] == [
        i.refusal for s in before for i in s.items
    ]

    verifier = Verifier(hub_keys(jwks), MemberKeys.from_federation(fed))
    items = [i for s in after for i in s.items if i.accepted and i.deliveries]
    extensions = []
    for item in items:
        for d in item.deliveries:
            verdict = verifier.verify(d.obj)
            assert verdict.valid, verdict
            extensions.append(d.obj.get("extensions", {}).get(EXTENSION_ID))
    # What the comparison covered: objects in several collections under one signature,
    # variants that differ, member signatures carried, anonymous and redacted deliveries.
    signed = [e for e in extensions if e is not None]
    signatures = [
        (len(i.deliveries), {d.obj["extensions"][EXTENSION_ID]["signature"] for d in i.deliveries})
        for i in items
        if EXTENSION_ID in i.deliveries[0].obj.get("extensions", {})
    ]
    assert sum(n > 1 and len(s) == 1 for n, s in signatures) > 500
    assert sum(len(s) > 1 for _, s in signatures) > 100
    assert sum("member_signature" in e for e in signed) > 100
    assert sum(e["submitter"] == "anonymous" for e in signed) > 10
    assert sum(e["redacted"] for e in signed) > 100
    assert len(items) > 1000


async def test_a_variant_in_several_collections_carries_one_signature_and_rotation_is_seen(
    hub: RunningHub,
) -> None:
    keys_dir = hub.settings.signing_keys_dir
    jwks_url = hub.base_url + "/.well-known/jwks.json"
    # The keys dir is read once per change to it: let the first key's writing settle, so that
    # what follows goes through the read-once path, not a listing every time.
    await asyncio.sleep(2.2)
    first = incident_report(member_identity(hub, "sn-cert"), "CERT-SN", TLP2["green"])
    assert (await submit(hub, "sn-cert-submit", first)).failure_count == 0
    _, _, jwks = await get_json(jwks_url)
    [old] = jwks["keys"]

    # The sender's own feed and the region's hold the same variant: one signature, which
    # the hub's JWKS verifies wherever it is read.
    own = {o["id"]: o for o in await read_all(hub, "member-sn-cert", "sn-cert-read")}
    region = {o["id"]: o for o in await read_all(hub, "region-west-africa", "gh-cert-read")}
    verifier = Verifier(hub_keys(jwks))
    for obj in first:
        mine, theirs = own[obj["id"]], region[obj["id"]]
        assert mine == theirs
        assert mine["extensions"][EXTENSION_ID]["kid"] == old["kid"]
        assert verifier.verify(mine).valid and verifier.verify(theirs).valid

    # A rotation made beside the running hub (as `cirt-hub keys rotate` on another node
    # does), right before the next submission: that submission is signed with the new key.
    new = await asyncio.to_thread(KeyStore(keys_dir).rotate, KEY_PASSPHRASE)
    second = incident_report(member_identity(hub, "sn-cert"), "CERT-SN", TLP2["green"])
    assert (await submit(hub, "sn-cert-submit", second)).failure_count == 0
    _, _, jwks = await get_json(jwks_url)
    assert [(k["kid"], k["status"]) for k in jwks["keys"]] == [
        (new.kid, "current"),
        (old["kid"], "retired"),
    ]
    verifier = Verifier(hub_keys(jwks))
    region = {o["id"]: o for o in await read_all(hub, "region-west-africa", "gh-cert-read")}
    own = {o["id"]: o for o in await read_all(hub, "member-sn-cert", "sn-cert-read")}
    for obj in second:
        for got in (own[obj["id"]], region[obj["id"]]):
            assert got["extensions"][EXTENSION_ID]["kid"] == new.kid
            assert verifier.verify(got).valid
    for obj in first[1:]:  # [1:]: the identity's newer version is in the second report
        assert verifier.verify(region[obj["id"]]).valid
