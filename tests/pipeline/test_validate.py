"""The validate stage over real third-party STIX: what CIRTs actually send."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from stix2.v21 import OBJ_MAP_OBSERVABLE

from hub.federation import Limits, load_federation
from hub.model import Item, Submission
from hub.pipeline.validate import Validate
from hub.stix.validation import Refuse, check_object
from tests.conftest import ROOT, TESTDATA
from tests.stixdata import shared_objects

SCO_TYPES = tuple(OBJ_MAP_OBSERVABLE)
OASIS_EXAMPLES = sorted((TESTDATA / "oasis-cti-documentation-examples").glob("*.json"))
assert len(OASIS_EXAMPLES) >= 10, f"OASIS examples missing from {TESTDATA}"


FEDERATION = load_federation(ROOT / "examples" / "federation.yaml")
validate = Validate(FEDERATION)


def submission_of(objects: list, member: str = "ng-cert") -> Submission:
    items = tuple(Item(i, o) for i, o in enumerate(objects))
    sender = next((m for m in FEDERATION.members if m.id == member), None)
    return Submission(
        "s-1", member, f"{member}-submit", "2026-11-23T00:00:00.000Z", "r", items, sender=sender
    )


def problem_with(obj: dict) -> str | None:
    try:
        check_object(obj, Limits())
    except Refuse as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("path", OASIS_EXAMPLES, ids=lambda p: p.stem)
def test_oasis_documentation_examples_are_accepted(path: Path) -> None:
    objects = json.loads(path.read_text())["objects"]
    done = validate(submission_of(objects))
    refused = {i.id: i.refusal.message for i in done.items if i.refusal}
    assert not refused


def test_mitre_attack_for_ics_with_its_custom_objects_is_accepted() -> None:
    objects = shared_objects("mitre-attack/ics-attack-18.1.json")
    custom = [o for o in objects if o["type"].startswith("x-mitre-")]
    assert custom, "the ATT&CK file should carry x-mitre-* objects"
    done = validate(submission_of(objects))
    refused = [(i.id, i.refusal.message) for i in done.items if i.refusal]
    assert refused == []


def test_modified_before_created_is_refused_with_both_times() -> None:
    (obj,) = shared_objects("oasis-stix-validator-tests/test_examples/invalid_timestamp.json")[:1]
    assert problem_with(obj) is not None
    assert "earlier than created" in problem_with(obj)


def test_stix_20_objects_are_refused_and_told_why() -> None:
    store = TESTDATA / "oasis-python-stix2-testdata"
    stix20 = []
    for path in store.rglob("*.json"):
        for obj in shared_objects(str(path.relative_to(TESTDATA))):
            # SCOs may omit spec_version in 2.1; SDOs without it are STIX 2.0.
            if obj["type"] not in SCO_TYPES and "spec_version" not in obj:
                stix20.append(obj)
    assert stix20, "the stix2 test data holds STIX 2.0 objects"
    for obj in stix20:
        assert "only STIX 2.1 is accepted" in (problem_with(obj) or "")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"type": "weird-thing", "id": "weird-thing--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"},
            "not a STIX 2.1 type",
        ),
        ({"id": "indicator--123"}, "RFC 4122 UUID"),
        ({"pattern": "[ipv4-addr:value = ]"}, "pattern"),
        ({"spec_version": "2.0"}, "spec_version is '2.0'"),
        ({"type": "bundle"}, "is a bundle"),
        ({"extensions": 5}, "objects[1]"),
    ],
)
def test_broken_objects_are_refused_saying_what_is_wrong(change: dict, expected: str) -> None:
    base = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2026-11-20T10:00:00.000Z",
        "modified": "2026-11-20T10:00:00.000Z",
        "pattern": "[ipv4-addr:value = '198.51.100.7']",
        "pattern_type": "stix",
        "valid_from": "2026-11-20T10:00:00Z",
    }
    good = validate(submission_of([base, {**base, **change}]))
    assert good.items[0].accepted
    refusal = good.items[1].refusal
    assert refusal is not None and refusal.reason == "invalid-stix"
    assert expected in refusal.message
    assert refusal.message.startswith("objects[1]")


def _granular(selectors: list[str], **extra: object) -> dict:
    obj = {
        **shared_objects("oasis-cti-documentation-examples/indicator-for-malicious-url.json")[0],
        "labels": ["phishing", "phishing"],
        "confidence": 0,
        "external_references": [{"source_name": "x", "url": "https://x.example"}],
        **extra,
    }
    obj["granular_markings"] = [
        {
            "marking_ref": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
            "selectors": selectors,
        }
    ]
    return obj


def test_granular_selectors_stix_allows_are_accepted() -> None:
    # The stix2 library refuses all three: a property inside a list item, the second of
    # two equal labels, a property whose value is 0.
    assert (
        problem_with(_granular(["external_references.[0].url", "labels.[1]", "confidence"])) is None
    )


@pytest.mark.parametrize(
    ("selectors", "where"),
    [
        (["labels.[2]"], "granular_markings[0].selectors[0]"),
        (["name", "description.x"], "granular_markings[0].selectors[1]"),
        (["labels.[99999999999999999999]"], "granular_markings[0].selectors[0]"),
        (["external_references.url"], "granular_markings[0].selectors[0]"),
    ],
)
def test_a_selector_outside_the_object_is_refused_saying_which(
    selectors: list[str], where: str
) -> None:
    verdict = validate(submission_of([_granular(selectors)]))
    refusal = verdict.items[0].refusal
    assert refusal is not None and f"property '{where}'" in refusal.message
    assert "does not name a property or list item" in refusal.message
