"""A corpus of bad input: what a member's system might send, and what the hub must answer.

`HTTP_CASES` are refused as whole requests (4xx with a TAXII error body);
`OBJECT_CASES` are single bad objects sent beside a good one: the request is accepted
(202), the good sibling succeeds, and the bad object fails with a reason on the status
resource and on the `rejected` topic. Each case names a substring of the expected message.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import TESTDATA
from tests.stixdata import TLP1_WHITE, TLP2

TAXII = "application/taxii+json;version=2.1"


def new_id(kind: str) -> str:
    return f"{kind}--{uuid.uuid4()}"


def indicator(**changes: Any) -> dict[str, Any]:
    """A valid TLP:GREEN indicator; `changes` override or (value None) remove properties."""
    obj: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": new_id("indicator"),
        "created": "2026-11-20T08:00:00.000Z",
        "modified": "2026-11-20T08:00:00.000Z",
        "name": "Ransomware C2",
        "pattern": "[ipv4-addr:value = '203.0.113.45']",
        "pattern_type": "stix",
        "valid_from": "2026-11-20T08:00:00Z",
        "object_marking_refs": [TLP2["green"]],
    }
    for key, value in changes.items():
        if value is None:
            obj.pop(key, None)
        else:
            obj[key] = value
    return obj


def deep(levels: int) -> dict[str, Any]:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"down": value}
    return value


@dataclass(frozen=True)
class HttpCase:
    name: str
    body: bytes
    status: int
    words: str
    account: str = "ng-cert-submit"
    headers: dict[str, str] = field(default_factory=dict)
    collection: str = "inbox"


@dataclass(frozen=True)
class ObjectCase:
    name: str
    make: Callable[[], list[dict[str, Any]]]  # the objects to send
    bad: int  # index of the object that must fail
    words: str
    account: str = "ng-cert-submit"


def envelope(*objects: Any) -> bytes:
    return json.dumps({"objects": list(objects)}).encode()


GOOD = envelope(indicator())

HTTP_CASES: list[HttpCase] = [
    HttpCase("malformed JSON", b"{not json", 400, "not JSON"),
    HttpCase("truncated JSON", GOOD[: len(GOOD) // 2], 400, "not JSON"),
    HttpCase("invalid UTF-8", b'{"objects": ["\xff\xfe"]}', 400, "not JSON"),
    HttpCase("NaN", b'{"objects": [{"id": "x--1", "n": NaN}]}', 400, "not JSON"),
    HttpCase("Infinity", b'{"objects": [{"id": "x--1", "n": Infinity}]}', 400, "not JSON"),
    HttpCase("empty body", b"", 400, "not JSON"),
    HttpCase("JSON null", b"null", 400, "a JSON object"),
    HttpCase("JSON string", b'"objects"', 400, "a JSON object"),
    HttpCase("top-level array", b"[]", 400, "a JSON object"),
    HttpCase("no objects", b'{"type": "bundle"}', 400, "'objects' array"),
    HttpCase("empty envelope", b'{"objects": []}', 400, "at least one object"),
    HttpCase("objects not a list", b'{"objects": {"a": 1}}', 400, "'objects' array"),
    HttpCase("object not a JSON object", b'{"objects": [42]}', 422, "objects[0] is not a JSON"),
    HttpCase("object without id", b'{"objects": [{"type": "indicator"}]}', 422, "has no 'id'"),
    HttpCase("id not a string", b'{"objects": [{"id": 7}]}', 422, "has no 'id'"),
    HttpCase(
        "deeper than JSON parsers go",
        b'{"objects": [' + b"[" * 2000 + b"]" * 2000 + b"]}",
        400,
        "levels per object (hub.limits.max_depth)",
    ),
    HttpCase(
        "nested too deep",
        envelope(indicator(), indicator(x_acme_tree=deep(20))),
        400,
        "is nested more than 16 levels deep, at objects[1].x_acme_tree.down.down",
    ),
    HttpCase(
        "nested too deep outside the objects",
        b'{"objects": ['
        + json.dumps(indicator()).encode()
        + b'], "x": '
        + b"[" * 30
        + b"]" * 30
        + b"}",
        400,
        "the body is nested more than 18 levels deep, at x[0][0]",
    ),
    HttpCase(
        "integer beyond STIX",
        b'{"objects": [{"id": "x--1", "n": 99999999999999999999}]}',
        422,
        "outside the range STIX allows",
    ),
    HttpCase(
        "wrong content type",
        GOOD,
        415,
        "Content-Type was 'application/json'",
        headers={"Content-Type": "application/json"},
    ),
    HttpCase("no content type", GOOD, 415, "send the envelope as", headers={"Content-Type": ""}),
    HttpCase(
        "TAXII 2.0 content type",
        GOOD,
        415,
        "version=2.0",
        headers={"Content-Type": "application/vnd.oasis.taxii+json; version=2.0"},
    ),
    HttpCase(
        "STIX media type",
        GOOD,
        415,
        "stix+json",
        headers={"Content-Type": "application/stix+json;version=2.1"},
    ),
    HttpCase("wrong Accept", GOOD, 406, "application/xml", headers={"Accept": "application/xml"}),
    HttpCase("no credentials", GOOD, 401, "needs HTTP Basic or Bearer", account=""),
    HttpCase("wrong password", GOOD, 401, "wrong secret", account="ng-cert-submit:wrong"),
    HttpCase("unknown account", GOOD, 401, "unknown account", account="nobody:secret"),
    HttpCase(
        "bearer without a dot",
        GOOD,
        401,
        "name an account",
        headers={"Authorization": "Bearer justatoken"},
    ),
    HttpCase(
        "unsupported scheme",
        GOOD,
        401,
        "'Digest' is not supported",
        headers={"Authorization": "Digest abc"},
    ),
    HttpCase("reader posting", GOOD, 403, "needs the 'submit' role", account="ng-cert-read"),
    HttpCase(
        "operator posting", GOOD, 404, "visible to account 'hub-operator'", account="hub-operator"
    ),
    HttpCase("posting to a feed", GOOD, 404, "no collection", collection="region-west-africa"),
    HttpCase("posting to nowhere", GOOD, 404, "no collection 'nowhere'", collection="nowhere"),
    HttpCase(
        "too many objects",
        envelope(*[indicator() for _ in range(60)]),
        413,
        "60 objects; this hub accepts 50",
    ),
    HttpCase(
        "too many bytes",
        b'{"objects": [{"id": "x--1", "pad": "' + b"a" * 300_000 + b'"}]}',
        413,
        "max_content_length",
    ),
]


def _with(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out.update(changes)
    return out


def _single(make_bad: Callable[[], dict[str, Any]]) -> Callable[[], list[dict[str, Any]]]:
    return lambda: [indicator(), make_bad()]


def _duplicate() -> list[dict[str, Any]]:
    first = indicator()
    return [first, _with(first, name="same id, same version")]


TLP2_GREEN_AS_CLEAR = {
    "type": "marking-definition",
    "spec_version": "2.1",
    "id": TLP2["green"],
    "created": "2022-10-01T00:00:00.000Z",
    "name": "TLP:GREEN",
    "extensions": {
        "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
            "extension_type": "property-extension",
            "tlp_2_0": "clear",
        }
    },
}

OBJECT_CASES: list[ObjectCase] = [
    ObjectCase(
        "STIX 2.0 object",
        _single(lambda: indicator(spec_version=None)),
        1,
        "only STIX 2.1 is accepted",
    ),
    ObjectCase(
        "spec_version 2.0",
        _single(lambda: indicator(spec_version="2.0")),
        1,
        "spec_version is '2.0'",
    ),
    ObjectCase(
        "id not a UUID",
        _single(lambda: indicator(id="indicator--123")),
        1,
        "RFC 4122 UUID",
    ),
    ObjectCase("id of another type", _single(lambda: indicator(id=new_id("malware"))), 1, "id"),
    ObjectCase(
        "id with a non-RFC-4122 UUID",
        _single(lambda: indicator(id="indicator--99999999-9999-9999-9999-999999999999")),
        1,
        "RFC 4122 UUID",
    ),
    ObjectCase(
        "impossible date", _single(lambda: indicator(created="2026-13-45T00:00:00Z")), 1, "created"
    ),
    ObjectCase(
        "timestamp without zone",
        _single(lambda: indicator(valid_from="2026-11-20T08:00:00")),
        1,
        "valid_from",
    ),
    ObjectCase(
        "timestamp not a string", _single(lambda: indicator(modified=20261120)), 1, "modified"
    ),
    ObjectCase(
        "modified before created",
        _single(lambda: indicator(modified="2001-01-01T00:00:00.000Z")),
        1,
        "earlier than created",
    ),
    ObjectCase(
        "missing modified",
        _single(lambda: indicator(modified=None)),
        1,
        "missing required property 'modified'",
    ),
    ObjectCase("missing pattern", _single(lambda: indicator(pattern=None)), 1, "pattern"),
    ObjectCase("missing type", _single(lambda: indicator(type=None)), 1, "has no 'type'"),
    ObjectCase(
        "invalid pattern", _single(lambda: indicator(pattern="[ipv4-addr:value = ]")), 1, "pattern"
    ),
    ObjectCase(
        "pattern not STIX syntax", _single(lambda: indicator(pattern="ip == 1.2.3.4")), 1, "pattern"
    ),
    ObjectCase(
        "valid_until before valid_from",
        _single(lambda: indicator(valid_until="2020-01-01T00:00:00Z")),
        1,
        "valid_until",
    ),
    ObjectCase("confidence over 100", _single(lambda: indicator(confidence=150)), 1, "0 to 100"),
    ObjectCase("labels not a list", _single(lambda: indicator(labels="ransomware")), 1, "labels"),
    ObjectCase(
        "external reference without source",
        _single(lambda: indicator(external_references=[{"url": "https://example.org"}])),
        1,
        "source_name",
    ),
    ObjectCase(
        "unknown type",
        _single(lambda: {**indicator(), "type": "weird-thing", "id": new_id("weird-thing")}),
        1,
        "not a STIX 2.1 type",
    ),
    ObjectCase(
        "bundle inside the envelope",
        _single(lambda: {"type": "bundle", "id": new_id("bundle"), "objects": []}),
        1,
        "is a bundle",
    ),
    ObjectCase(
        "extensions not an object", _single(lambda: indicator(extensions=5)), 1, "objects[1]"
    ),
    ObjectCase(
        "custom property with capitals",
        _single(lambda: indicator(x_Foo_Bar=1)),
        1,
        "custom property names",
    ),
    ObjectCase(
        "custom type with a bad id",
        _single(
            lambda: {
                "type": "x-acme-thing",
                "spec_version": "2.1",
                "id": new_id("indicator"),
                "created": "2026-11-20T08:00:00Z",
                "modified": "2026-11-20T08:00:00Z",
                "object_marking_refs": [TLP2["green"]],
            }
        ),
        1,
        "must be 'x-acme-thing--'",
    ),
    ObjectCase(
        "custom type without created",
        _single(
            lambda: {
                "type": "x-acme-thing",
                "spec_version": "2.1",
                "id": new_id("x-acme-thing"),
                "object_marking_refs": [TLP2["green"]],
            }
        ),
        1,
        "missing required property 'created'",
    ),
    ObjectCase(
        "extension-defined type with bad refs",
        _single(
            lambda: {
                "type": "impact",
                "spec_version": "2.1",
                "id": new_id("impact"),
                "created": "2026-11-20T08:00:00Z",
                "modified": "2026-11-20T08:00:00Z",
                "impacted_refs": "identity--x",
                "object_marking_refs": [TLP2["green"]],
                "extensions": {
                    "extension-definition--7cc33dd6-f6a1-489b-98ea-522d351d71b9": {
                        "extension_type": "new-sdo"
                    }
                },
            }
        ),
        1,
        "impacted_refs",
    ),
    ObjectCase(
        "relationship with a bad source",
        _single(
            lambda: {
                "type": "relationship",
                "spec_version": "2.1",
                "id": new_id("relationship"),
                "created": "2026-11-20T08:00:00Z",
                "modified": "2026-11-20T08:00:00Z",
                "relationship_type": "indicates",
                "source_ref": "indicator--nope",
                "target_ref": new_id("malware"),
                "object_marking_refs": [TLP2["green"]],
            }
        ),
        1,
        "source_ref",
    ),
    ObjectCase(
        "sighting of an observable",
        _single(
            lambda: {
                "type": "sighting",
                "spec_version": "2.1",
                "id": new_id("sighting"),
                "created": "2026-11-20T08:00:00Z",
                "modified": "2026-11-20T08:00:00Z",
                "sighting_of_ref": new_id("ipv4-addr"),
                "object_marking_refs": [TLP2["green"]],
            }
        ),
        1,
        "sighting_of_ref",
    ),
    ObjectCase(
        "opinion outside its vocabulary",
        _single(
            lambda: {
                "type": "opinion",
                "spec_version": "2.1",
                "id": new_id("opinion"),
                "created": "2026-11-20T08:00:00Z",
                "modified": "2026-11-20T08:00:00Z",
                "opinion": "maybe",
                "object_refs": [new_id("indicator")],
                "object_marking_refs": [TLP2["green"]],
            }
        ),
        1,
        "opinion",
    ),
    ObjectCase(
        "report without object_refs",
        _single(
            lambda: {
                "type": "report",
                "spec_version": "2.1",
                "id": new_id("report"),
                "created": "2026-11-20T08:00:00Z",
                "modified": "2026-11-20T08:00:00Z",
                "name": "r",
                "published": "2026-11-20T08:00:00Z",
                "object_marking_refs": [TLP2["green"]],
            }
        ),
        1,
        "object_refs",
    ),
    ObjectCase(
        "observed-data seen zero times",
        _single(
            lambda: {
                "type": "observed-data",
                "spec_version": "2.1",
                "id": new_id("observed-data"),
                "created": "2026-11-20T08:00:00Z",
                "modified": "2026-11-20T08:00:00Z",
                "first_observed": "2026-11-20T08:00:00Z",
                "last_observed": "2026-11-20T08:00:00Z",
                "number_observed": 0,
                "object_refs": [new_id("ipv4-addr")],
                "object_marking_refs": [TLP2["green"]],
            }
        ),
        1,
        "number_observed",
    ),
    ObjectCase(
        "process with a UUIDv5 id",
        _single(
            lambda: {
                "type": "process",
                "spec_version": "2.1",
                "id": f"process--{uuid.uuid5(uuid.NAMESPACE_URL, 'x')}",
                "pid": 4,
                "object_marking_refs": [TLP2["green"]],
            }
        ),
        1,
        "MUST be UUIDv4",
    ),
    ObjectCase(
        "artifact with neither payload nor url",
        _single(
            lambda: {
                "type": "artifact",
                "spec_version": "2.1",
                "id": new_id("artifact"),
                "mime_type": "application/zip",
                "object_marking_refs": [TLP2["green"]],
            }
        ),
        1,
        "payload_bin",
    ),
    ObjectCase(
        "artifact payload not base64",
        _single(
            lambda: {
                "type": "artifact",
                "spec_version": "2.1",
                "id": new_id("artifact"),
                "payload_bin": "not base64!",
                "object_marking_refs": [TLP2["green"]],
            }
        ),
        1,
        "base64",
    ),
    ObjectCase(
        "registry hive abbreviated",
        _single(
            lambda: {
                "type": "windows-registry-key",
                "spec_version": "2.1",
                "id": new_id("windows-registry-key"),
                "key": "HKLM\\Software\\Evil",
                "object_marking_refs": [TLP2["green"]],
            }
        ),
        1,
        "HKEY_LOCAL_MACHINE",
    ),
    ObjectCase(
        "software language not ISO 639-2",
        _single(
            lambda: {
                "type": "software",
                "spec_version": "2.1",
                "id": new_id("software"),
                "name": "tool",
                "languages": ["Python"],
                "object_marking_refs": [TLP2["green"]],
            }
        ),
        1,
        "ISO 639-2",
    ),
    ObjectCase(
        "file hash of the wrong length",
        _single(
            lambda: {
                "type": "file",
                "spec_version": "2.1",
                "id": new_id("file"),
                "hashes": {"SHA-256": "abc"},
                "object_marking_refs": [TLP2["green"]],
            }
        ),
        1,
        "hashes",
    ),
    ObjectCase(
        "pattern nested past its grammar",
        _single(
            lambda: indicator(pattern="(" * 300 + "[ipv4-addr:value = '203.0.113.45']" + ")" * 300)
        ),
        1,
        "nested too deeply to be parsed: a STIX pattern's parentheses",
    ),
    ObjectCase(
        "larger than max_object_bytes",
        _single(lambda: indicator(description="x" * 4000, x_acme_notes=["y" * 4000] * 2)),
        1,
        "bytes as JSON; this hub accepts 8,192 bytes per object (hub.limits.max_object_bytes)",
    ),
    ObjectCase(
        "string too long",
        _single(lambda: indicator(description="x" * 5000)),
        1,
        "a string of 5000 characters",
    ),
    ObjectCase("duplicate id and version", _duplicate, 1, "duplicate of objects[0]"),
    ObjectCase(
        "created_by_ref of another member",
        _single(lambda: indicator(created_by_ref="@gh-cert")),
        1,
        "names member 'gh-cert'",
    ),
    ObjectCase(
        "created_by_ref of the hub",
        _single(lambda: indicator(created_by_ref="@hub")),
        1,
        "names the hub",
    ),
    ObjectCase(
        "another member's identity object",
        _single(
            lambda: {
                "type": "identity",
                "spec_version": "2.1",
                "id": "@gh-cert",
                "created": "2026-11-20T08:00:00Z",
                "modified": "2026-11-20T08:00:00Z",
                "name": "Not really CERT-GH",
                "identity_class": "organization",
                "object_marking_refs": [TLP2["green"]],
            }
        ),
        1,
        "only member 'gh-cert' may publish",
    ),
    ObjectCase(
        "TLP 2.0 id redefined",
        _single(lambda: copy.deepcopy(TLP2_GREEN_AS_CLEAR)),
        1,
        "redefines TLP:GREEN",
    ),
    ObjectCase(
        "TLP 1.0 id redefined",
        _single(
            lambda: {
                "type": "marking-definition",
                "spec_version": "2.1",
                "id": TLP1_WHITE,
                "created": "2017-01-20T00:00:00.000Z",
                "definition_type": "statement",
                "definition": {"statement": "anything goes"},
            }
        ),
        1,
        "redefines TLP:WHITE",
    ),
    ObjectCase(
        "statement marking claiming another member",
        _single(
            lambda: {
                "type": "marking-definition",
                "spec_version": "2.1",
                "id": new_id("marking-definition"),
                "created": "2026-11-20T08:00:00Z",
                "definition_type": "statement",
                "definition": {"statement": "Copyright CERT-GH"},
                "created_by_ref": "@gh-cert",
                "object_marking_refs": [TLP2["clear"]],
            }
        ),
        1,
        "names member 'gh-cert'",
    ),
    ObjectCase(
        "unmarked, and the sender has no default",
        lambda: [indicator(), indicator(object_marking_refs=None)],
        1,
        "has no TLP marking",
        account="sn-cert-submit",
    ),
    ObjectCase(
        "only a statement marking, no default",
        lambda: [indicator(), indicator(object_marking_refs=[new_id("marking-definition")])],
        1,
        "has no TLP marking",
        account="sn-cert-submit",
    ),
    ObjectCase(
        "custom type from a member that refuses custom content",
        lambda: [
            indicator(),
            {
                "type": "x-acme-thing",
                "spec_version": "2.1",
                "id": new_id("x-acme-thing"),
                "created": "2026-11-20T08:00:00Z",
                "modified": "2026-11-20T08:00:00Z",
                "object_marking_refs": [TLP2["green"]],
            },
        ],
        1,
        "not accepted from this member",
        account="tz-cert-submit",
    ),
    ObjectCase(
        "TLP:RED from a member that names no account for RED",
        lambda: [indicator(), indicator(object_marking_refs=[TLP2["red"]])],
        1,
        "sharing.recipients.red names no account, so it could reach no one",
    ),
    ObjectCase(
        "custom property from a member that refuses custom content",
        lambda: [indicator(), indicator(x_acme_score=3)],
        1,
        "custom content is not accepted from this member",
        account="tz-cert-submit",
    ),
]


def resolve(objects: list[dict[str, Any]], identities: dict[str, str]) -> list[dict[str, Any]]:
    """Replace "@member" placeholders with that member's identity id (from the federation)."""
    text = json.dumps(objects)
    for name, identity in identities.items():
        text = text.replace(f'"@{name}"', f'"{identity}"')
    return json.loads(text)


def _oasis_negative(name: str) -> HttpCase:
    path = TESTDATA / "oasis-stix-validator-tests" / "test_examples" / name
    return HttpCase(f"OASIS validator negative {name}", path.read_bytes(), 400, "not JSON")


# The OASIS validator's own not-JSON negatives, sent as they are.
HTTP_CASES += [_oasis_negative("invalid_braces.json"), _oasis_negative("invalid_comma.json")]
