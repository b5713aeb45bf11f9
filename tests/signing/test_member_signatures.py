"""Member signatures, made with joserfc as a CIRT's own tooling would: a valid one passes
and reaches readers; forged, wrong-key, wrong-member, malformed and (where required)
missing ones are refused, each with its own reason. On both buses."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from joserfc.jwk import KeySet

from hub.federation import Federation
from tests.hubs import RunningHub, running_hub
from tests.integration.test_taxii_flow import read_all, submit
from tests.signing.support import (
    EXTENSION_ID,
    basic_auth,
    canonical_without_extension,
    get_json,
    joserfc_verify,
    member_sign,
    new_member_key,
    public_jwk,
    run_verify,
    verdicts,
)
from tests.stixdata import TLP2, incident_report

NG_KEY = new_member_key("ng-cert-2026")
GH_KEY = new_member_key("gh-cert-2026")
UNLISTED_KEY = new_member_key("ng-cert-2027")


def with_member_keys(federation: Federation) -> Federation:
    """ngCERT lists a key and requires signatures; CERT-GH lists a key, signs when it likes."""

    def adjust(member):
        if member.id == "ng-cert":
            return replace(
                member,
                public_keys=(public_jwk(NG_KEY),),
                sharing={"require_signature": True},
            )
        if member.id == "gh-cert":
            return replace(member, public_keys=(public_jwk(GH_KEY),))
        return member

    return replace(federation, members=tuple(map(adjust, federation.members)))


@pytest.fixture
async def signing_hub(bus_url: str, tmp_path: Path, demo_secrets: Path, unique: str):
    async with running_hub(
        bus_url,
        tmp_path / "data",
        demo_secrets,
        topic_prefix=f"m{unique}.",
        adjust=with_member_keys,
    ) as running:
        yield running


def identity(hub: RunningHub, member: str) -> str:
    return hub.settings.federation.member(member).identity


async def test_member_signatures_are_checked_carried_or_refused(signing_hub: RunningHub) -> None:
    hub = signing_hub
    first = incident_report(identity(hub, "ng-cert"), "ngCERT", TLP2["green"])
    second = incident_report(identity(hub, "ng-cert"), "ngCERT", TLP2["green"])
    valid = member_sign(first[1], NG_KEY)
    valid_rfc9864 = member_sign(first[2], NG_KEY, alg="Ed25519")
    forged = member_sign(first[3], NG_KEY)
    forged["count"] = 300  # changed after signing
    wrong_key = member_sign(second[1], UNLISTED_KEY)
    wrong_member = member_sign(second[2], GH_KEY)
    missing = second[3]
    malformed = member_sign(first[0], NG_KEY)
    malformed["extensions"][EXTENSION_ID]["member_signature"] = "not-a-jws"
    sent = [valid, valid_rfc9864, forged, wrong_key, wrong_member, missing, malformed]
    status = await submit(hub, "ng-cert-submit", sent)

    assert {s["id"] for s in status.successes} == {valid["id"], valid_rfc9864["id"]}
    failures = {f["id"]: f["message"] for f in status.failures}
    expected = {
        forged["id"]: "does not match the object: it was changed after signing, or the "
        "signature is forged",
        wrong_key["id"]: "signed with key 'ng-cert-2027', which is not listed for 'ng-cert'",
        wrong_member["id"]: "signed with key 'gh-cert-2026' of gh-cert, not of the submitting "
        "member 'ng-cert'",
        missing["id"]: "'ng-cert' requires a signature on every object it sends",
        malformed["id"]: "the member signature is not usable: a compact JWS has three parts",
    }
    assert set(failures) == set(expected)
    for oid, words in expected.items():
        assert words in failures[oid], failures[oid]

    # CERT-GH does not require signatures: unsigned passes, a good one is carried, a bad one
    # is refused all the same (a signature that does not hold is never passed on).
    gh = incident_report(identity(hub, "gh-cert"), "CERT-GH", TLP2["green"])
    gh_forged = member_sign(gh[2], GH_KEY)
    gh_forged["name"] = "something else"
    status = await submit(hub, "gh-cert-submit", [gh[0], member_sign(gh[1], GH_KEY), gh_forged])
    assert status.success_count == 2
    assert [f["id"] for f in status.failures] == [gh_forged["id"]]

    # Readers get the member's signature and check it with the member keys the hub trusts.
    url = hub.base_url + "/api/v1/member-keys"
    unauthenticated, _, _ = await get_json(url)
    assert unauthenticated == 401
    headers = basic_auth("sn-cert-read", hub.password("sn-cert-read"))
    code, content_type, member_jwks = await get_json(url, headers)
    assert (code, content_type) == (200, "application/jwk-set+json")
    assert {(k["kid"], k["member"]) for k in member_jwks["keys"]} == {
        ("ng-cert-2026", "ng-cert"),
        ("gh-cert-2026", "gh-cert"),
    }
    keyset = KeySet.import_key_set(
        {"keys": [{n: k[n] for n in ("kty", "crv", "x", "kid")} for k in member_jwks["keys"]]}
    )
    received = {o["id"]: o for o in await read_all(hub, "region-west-africa", "sn-cert-read")}
    assert set(received) == {valid["id"], valid_rfc9864["id"], gh[0]["id"], gh[1]["id"]}
    for oid, member in (
        (valid["id"], "ng-cert"),
        (valid_rfc9864["id"], "ng-cert"),
        (gh[1]["id"], "gh-cert"),
    ):
        ext = received[oid]["extensions"][EXTENSION_ID]
        assert ext["submitter"] == member and ext["redacted"] is False
        payload = canonical_without_extension(received[oid])
        assert joserfc_verify(ext["member_signature"], payload, keyset)["kid"].startswith(member)
    assert "member_signature" not in received[gh[0]["id"]]["extensions"][EXTENSION_ID]

    env = {**os.environ, "CIRT_HUB_PASSWORD": hub.password("sn-cert-read")}
    result = await run_verify(
        hub.collection_url("region-west-africa"),
        "--jwks", hub.base_url + "/.well-known/jwks.json",
        "--member-keys", url,
        "--user", "sn-cert-read",
        "--json",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    messages = {v["id"]: v["message"] for v in verdicts(result)}
    assert messages[valid["id"]] == "hub signature and member signature of ng-cert valid"
    assert messages[gh[1]["id"]] == "hub signature and member signature of gh-cert valid"
