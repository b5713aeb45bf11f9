"""Kafka intake records whose value is itself a JWS (RFC 7515, compact or flattened JSON),
and single STIX objects where a bundle was asked for, on both buses: signed with joserfc
(a CIRT's own JOSE tooling), accepted and readable over TAXII; a bad JWS refused whole to
`rejected`, its reason saying what is wrong, and its signature checked before its payload
is read."""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
import orjson
from joserfc import jws
from joserfc.jwk import OKPKey

from hub.api.keys import BUS
from hub.bus import Message
from hub.records import MemberJwsRecord, member_status_id
from tests.hubs import RunningHub, visible_to
from tests.intake.conftest import credentials, member_key, member_record, wait_complete
from tests.intake.corpus import TAXII, deep, envelope, indicator
from tests.intake.test_corpus import read_rejected
from tests.signing.support import eddsa_allowed, registry

MEMBER = "ng-cert"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(payload: bytes, key: OKPKey, **header: Any) -> bytes:
    """`payload` signed into a compact JWS by joserfc."""
    with eddsa_allowed():
        token = jws.serialize_compact(
            {"alg": "EdDSA", "kid": key.kid, **header}, payload, key, registry=registry()
        )
    return token.encode()


def flattened(payload: bytes, key: OKPKey) -> dict[str, Any]:
    """`payload` signed into a flattened JSON JWS by joserfc."""
    with eddsa_allowed():
        doc = jws.serialize_json(
            {"protected": {"alg": "EdDSA", "kid": key.kid}}, payload, key, registry=registry()
        )
    return dict(doc)


def jws_record(hub: RunningHub, value: bytes, name: str, **headers: bytes) -> Message:
    """`value` on the member's intake topic as its own producer writes it (no signature
    header: the value is the JWS), keyed by `name` to find its `rejected` entry."""
    topic = hub.settings.topics.member_intake(MEMBER)
    return Message(topic, value, key=name.encode(), headers=tuple(headers.items()))


def bundle(*objects: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "type": "bundle",
            "id": "bundle--6c1bd2a6-4c43-4e2b-9e43-6c3ef5d5a6b1",
            "objects": objects,
        },
        indent=2,
    ).encode()


async def test_jws_records_and_single_objects_are_accepted(corpus_hub: RunningHub) -> None:
    hub, key = corpus_hub, member_key(MEMBER)
    in_bundle, in_flattened, alone = [indicator(), indicator()], indicator(), indicator()
    topics = hub.settings.topics
    records = [
        # A compact JWS of a bundle, naming the account as a header may.
        MemberJwsRecord(
            MEMBER, compact(bundle(*in_bundle), key), account="ng-cert-submit"
        ).to_message(topics),
        # A flattened JSON JWS of one object.
        MemberJwsRecord(
            MEMBER, orjson.dumps(flattened(json.dumps(in_flattened).encode(), key))
        ).to_message(topics),
        # Today's detached header, over a single object instead of a bundle.
        member_record(hub, MEMBER, json.dumps(alone, indent=2).encode()),
    ]
    positions = await hub.app[BUS].publish(records)
    async with aiohttp.ClientSession() as session:
        for position, count in zip(positions, (2, 1, 1), strict=True):
            status_id = member_status_id(*position)
            status = await wait_complete(session, hub, status_id, "ng-cert-submit")
            assert status["success_count"] == count and status["failure_count"] == 0, status
    sent = {o["id"] for o in (*in_bundle, in_flattened, alone)}
    view = await visible_to(hub, "ng-cert-read")
    assert sent <= {o["id"] for objects in view.values() for o in objects}


async def test_a_bad_jws_is_refused_whole_saying_what_is_wrong(corpus_hub: RunningHub) -> None:
    hub, key, other = corpus_hub, member_key(MEMBER), member_key("gh-cert")
    good = envelope(indicator())
    header = b64url(orjson.dumps({"alg": "EdDSA", "kid": key.kid}))
    signed = compact(good, key).decode().split(".")
    no_signature = b64url(bytes(64))
    hub_record = orjson.dumps({"v": 1, "status_id": "s", "member": MEMBER, "objects": []})
    as_json = flattened(good, key)
    # name → (value, reason, the beginning of its message)
    cases: dict[str, tuple[bytes, str, str]] = {
        "other member's key": (
            compact(good, other),
            "member-signature-wrong-member",
            "record JWS refused: signed with key 'gh-cert-kafka' of gh-cert, not of",
        ),
        "payload changed after signing": (
            ".".join([signed[0], b64url(envelope(indicator())), signed[2]]).encode(),
            "member-signature-invalid",
            "record JWS refused: the member signature (key 'ng-cert-kafka') does not match "
            "the payload",
        ),
        # Not JSON, and deeper than allowed: but forged, and that is what it is refused for.
        "forged, payload unreadable": (
            f"{header}.{b64url(b'{' * 5000)}.{no_signature}".encode(),
            "member-signature-invalid",
            "record JWS refused: the member signature (key 'ng-cert-kafka') does not match",
        ),
        "signed, payload not JSON": (
            compact(b"not json", key),
            "undecodable",
            "the record's JWS payload is not JSON",
        ),
        "signed, payload too deep": (
            compact(envelope(indicator(x_tree=deep(40))), key),
            "too-deep",
            "the record's JWS payload is refused: objects[0]",
        ),
        "signed, a hub record": (
            compact(hub_record, key),
            "wrong-topic",
            f"'{hub.settings.topics.member_intake(MEMBER)}' is the intake topic of 'ng-cert'",
        ),
        "signed, an object without id": (
            compact(orjson.dumps(indicator(id=None)), key),
            "undecodable",
            "intake record refused: the 'indicator' object has no 'id' string",
        ),
        "alg HS256": (
            ".".join(
                [b64url(orjson.dumps({"alg": "HS256", "kid": key.kid})), *signed[1:]]
            ).encode(),
            "member-signature-malformed",
            "record JWS refused: the member signature is not usable: alg is 'HS256'",
        ),
        "payload not base64url": (
            f"{signed[0]}.{signed[1]}=.{signed[2]}".encode(),
            "member-signature-malformed",
            "record JWS refused: the member signature is not usable: the payload is not",
        ),
        "general JSON serialization": (
            orjson.dumps(
                {
                    "payload": as_json["payload"],
                    "signatures": [
                        {"protected": as_json["protected"], "signature": as_json["signature"]}
                    ],
                }
            ),
            "member-signature-malformed",
            "record JWS refused: the member signature is not usable: the general JSON",
        ),
        "unprotected kid": (
            orjson.dumps(as_json | {"header": {"kid": "gh-cert-kafka"}}),
            "member-signature-malformed",
            "record JWS refused: the member signature is not usable: unprotected header",
        ),
    }
    await hub.app[BUS].publish([jws_record(hub, v, name) for name, (v, _, _) in cases.items()])
    entries = {e["_key"]: e for e in await read_rejected(hub, expect=len(cases))}
    assert set(entries) == set(cases)
    wrong = [
        f"{name}: {entries[name]['reason']}: {entries[name]['message']}"
        for name, (_, reason, beginning) in cases.items()
        if entries[name]["reason"] != reason or not entries[name]["message"].startswith(beginning)
    ]
    assert not wrong, "\n".join(wrong)
    # The record as sent, to inspect and replay: a compact JWS as base64, JSON as JSON.
    assert base64.b64decode(entries["alg HS256"]["record_base64"]) == cases["alg HS256"][0]
    assert entries["unprotected kid"]["record"]["header"] == {"kid": "gh-cert-kafka"}


async def test_taxii_keeps_to_envelopes(corpus_hub: RunningHub) -> None:
    """TAXII 2.1 Add Objects takes an envelope: a single object POSTed is refused, saying so."""
    hub = corpus_hub
    headers = {"Accept": TAXII, "Content-Type": TAXII, **credentials(hub, "ng-cert-submit")}
    url = hub.collection_url("inbox") + "objects/"
    body = orjson.dumps(indicator())
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as answer,
    ):
        status, doc = answer.status, orjson.loads(await answer.read())
    assert status == 400 and doc["http_status"] == "400", doc
    assert "'objects' array" in doc["description"], doc
