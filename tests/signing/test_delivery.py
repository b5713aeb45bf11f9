"""Every object a reader gets through TAXII carries a valid hub signature, on both buses,
checked by `cirt-hub verify` (collection URL, objects page, saved file) and by joserfc; the
TLP definitions and the hub's extension-definitions are in `public` exactly as published."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import jsonschema
import stix2
from joserfc.jwk import KeySet

from hub.correlate.responses import RESPONSE_EXTENSION
from hub.signing.jws import jwk_thumbprint
from hub.stix.predefined import predefined
from tests.hubs import RunningHub
from tests.integration.test_taxii_flow import member_identity, read_all, submit
from tests.signing.support import (
    EXTENSION_ID,
    canonical_without_extension,
    get_json,
    joserfc_verify,
    run_verify,
    verdicts,
)
from tests.stixdata import TLP2, incident_report, shared_objects

READERS = ("ng-cert-read", "gh-cert-read", "sn-cert-read", "ke-cirt-read", "rw-csirt-read")


def extension_schema() -> dict:
    text = resources.files("hub").joinpath("schemas/provenance.extension.schema.json")
    return json.loads(text.read_text())


async def test_every_object_read_carries_a_valid_hub_signature(
    hub: RunningHub, tmp_path: Path
) -> None:
    green = incident_report(member_identity(hub, "ng-cert"), "ngCERT", TLP2["green"])
    oasis = shared_objects("oasis-cti-documentation-examples/sighting-of-an-indicator.json")
    status = await submit(hub, "ng-cert-submit", green + oasis)
    assert status.failure_count == 0, status.failures
    amber = incident_report(member_identity(hub, "ke-cirt"), "KE-CIRT/CC", TLP2["amber"])
    assert (await submit(hub, "ke-cirt-submit", amber)).failure_count == 0

    status_code, content_type, jwks = await get_json(hub.base_url + "/.well-known/jwks.json")
    assert (status_code, content_type) == (200, "application/jwk-set+json")
    [key] = jwks["keys"]
    assert key["status"] == "current" and key["use"] == "sig" and key["alg"] == "EdDSA"
    assert key["kid"] == jwk_thumbprint(key)
    keyset = KeySet.import_key_set({"keys": [{k: key[k] for k in ("kty", "crv", "x", "kid")}]})

    policy = hub.settings.federation.policy_version
    schema = extension_schema()
    seen: dict[str, dict] = {}
    as_published: dict[str, dict] = {}
    for reader in READERS:
        member = reader.removesuffix("-read")
        region = hub.settings.federation.member(member).regions[0]
        for alias in ("public", f"region-{region}", f"member-{member}"):
            for obj in await read_all(hub, alias, reader):
                if obj["id"] in predefined():
                    as_published[obj["id"]] = obj
                    continue
                ext = obj["extensions"][EXTENSION_ID]
                jsonschema.validate(ext, schema)
                assert ext["kid"] == key["kid"] and ext["policy_version"] == policy
                # Independent of the hub's code: joserfc over the rfc8785 canonical form.
                header = joserfc_verify(ext["signature"], canonical_without_extension(obj), keyset)
                assert header["provenance"]["submitter"] == ext["submitter"]
                seen[obj["id"]] = obj
    submitted = {o["id"] for o in green + oasis + amber}
    assert submitted <= set(seen)
    for obj in green + oasis:
        assert seen[obj["id"]]["extensions"][EXTENSION_ID]["submitter"] == "ng-cert"

    # The nine TLP definitions and the two extension-definitions (provenance, responses to
    # alerts), as published: nothing added, and a strict STIX library resolves both.
    assert as_published == predefined()
    for definition in (EXTENSION_ID, RESPONSE_EXTENSION):
        assert "extensions" not in as_published[definition]
        parsed = stix2.parse(as_published[definition], allow_custom=False)
        assert parsed.type == "extension-definition"
        assert parsed.extension_types == ["property-extension"]

    # cirt-hub verify: a whole collection (paged), one objects page, and a saved file offline.
    env = {**os.environ, "CIRT_HUB_PASSWORD": hub.password("ng-cert-read")}
    jwks_url = hub.base_url + "/.well-known/jwks.json"
    collection = hub.collection_url("region-west-africa")
    whole = await run_verify(
        collection,
        "--jwks", jwks_url,
        "--user", "ng-cert-read",
        "--json",
        "--page-size", "3",
        "--progress-every", "0",
        env=env,
    )  # fmt: skip
    assert whole.returncode == 0, whole.stderr
    results = verdicts(whole)
    assert {r["id"] for r in results} == {o["id"] for o in green}
    assert all(r["valid"] and r["reason"] == "valid" for r in results)
    assert "objects checked (2 pages" in whole.stderr  # progress while it runs
    assert f"{len(results)} objects: {len(results)} valid, 0 invalid" in whole.stderr

    page = await run_verify(
        collection + "objects/?limit=2", "--jwks", jwks_url, "--user", "ng-cert-read", env=env
    )
    assert page.returncode == 0, page.stderr
    assert page.stdout.count("valid    ") == 2

    bundle = tmp_path / "bundle.json"
    bundle.write_text(
        json.dumps({"type": "bundle", "id": "bundle--x", "objects": list(seen.values())})
    )
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    offline = await run_verify(
        str(bundle), "--jwks", str(jwks_file), env={"PATH": os.environ["PATH"]}
    )
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout.count("valid    ") == len(seen)
    published = tmp_path / "published.json"
    published.write_text(json.dumps({"objects": list(as_published.values())}))
    plain = await run_verify(str(published), "--jwks", str(jwks_file))
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.count("predefined: published as its specification writes it") == 11
    altered = {**as_published[EXTENSION_ID], "schema": "anything else"}
    published.write_text(json.dumps({"objects": [altered]}))
    changed = await run_verify(str(published), "--jwks", str(jwks_file))
    assert changed.returncode == 1
    assert "missing-extension" in changed.stdout

    unsigned = tmp_path / "unsigned.json"
    unsigned.write_text(json.dumps({"objects": green}))
    refused = await run_verify(str(unsigned), "--jwks", str(jwks_file))
    assert refused.returncode == 1
    assert refused.stdout.count("missing-extension: carries no hub provenance extension") == 4
    missing = await run_verify(str(tmp_path / "nothing.json"), "--jwks", str(jwks_file))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
