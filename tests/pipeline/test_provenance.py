"""The provenance stage on TLP marking-definitions as tools really write them: the standard
ones and OpenCTI's pass; any definition that gives a TLP id another level is refused."""

from __future__ import annotations

from typing import Any

import pytest

from hub.federation import load_federation
from hub.model import Item, Submission
from hub.pipeline.provenance import Provenance
from tests.conftest import ROOT
from tests.stixdata import TLP1_WHITE

provenance = Provenance(load_federation(ROOT / "examples" / "federation.yaml"))
TLP1_RED = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"


def refusal(obj: dict[str, Any]) -> str | None:
    (item,) = provenance(
        Submission(
            "s",
            "ng-cert",
            "ng-cert-submit",
            "2026-11-23T00:00:00Z",
            "r",
            (Item(0, obj),),
            sender=provenance.federation.member("ng-cert"),
        )
    ).items
    return item.refusal.message if item.refusal else None


def tlp1(marking_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": marking_id,
        "created": "2017-01-20T00:00:00.000Z",
        **fields,
    }


@pytest.mark.parametrize(
    "fields",
    [
        # As STIX 2.1 predefines it.
        {"definition_type": "tlp", "name": "TLP:WHITE", "definition": {"tlp": "white"}},
        # As OpenCTI exports its TLP:CLEAR (it reuses the TLP 1.0 WHITE id).
        {
            "definition_type": "TLP",
            "name": "TLP:CLEAR",
            "definition": {"TLP": "TLP:CLEAR"},
            "x_opencti_definition_type": "TLP",
            "x_opencti_definition": "TLP:CLEAR",
        },
    ],
    ids=["stix", "opencti"],
)
def test_tlp_definitions_as_tools_write_them_pass(fields: dict[str, Any]) -> None:
    assert refusal(tlp1(TLP1_WHITE, **fields)) is None


@pytest.mark.parametrize(
    ("marking_id", "fields", "words"),
    [
        (TLP1_WHITE, {"definition_type": "tlp", "definition": {"tlp": "red"}}, "tlp': 'white'"),
        (TLP1_RED, {"definition_type": "TLP", "definition": {"TLP": "TLP:CLEAR"}}, "'red'"),
        (
            TLP1_RED,
            {"definition_type": "tlp", "definition": {"tlp": "red"}, "name": "TLP:CLEAR"},
            "its name is 'TLP:CLEAR'",
        ),
        (TLP1_WHITE, {"definition_type": "statement", "definition": {"statement": "x"}}, "'tlp'"),
    ],
)
def test_a_tlp_id_given_another_level_is_refused(
    marking_id: str, fields: dict[str, Any], words: str
) -> None:
    message = refusal(tlp1(marking_id, **fields))
    assert message is not None and "redefines" in message and words in message, message
