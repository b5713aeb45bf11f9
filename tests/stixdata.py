"""STIX content for tests: a CIRT's incident report built with OASIS's stix2 library,
and the third-party files under ../shared/testdata/stix."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import stix2

from hub.stix.markings import tlp2_ids
from tests.conftest import TESTDATA

TLP2 = tlp2_ids()  # level name -> OASIS TLP 2.0 marking-definition id
TLP1_WHITE = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"


def incident_report(identity_id: str, name: str, marking: str) -> list[dict[str, Any]]:
    """identity, incident, indicator and a sighting of it, all under `marking`."""
    marks = [marking]
    identity = stix2.Identity(
        id=identity_id, name=name, identity_class="organization", object_marking_refs=marks
    )
    incident = stix2.Incident(
        id=f"incident--{uuid.uuid4()}",
        name="Ransomware on the national tax portal",
        description="Files encrypted on two front-end servers; ransom note seen.",
        created_by_ref=identity_id,
        object_marking_refs=marks,
    )
    indicator = stix2.Indicator(
        id=f"indicator--{uuid.uuid4()}",
        name="C2 server of the ransomware",
        pattern="[ipv4-addr:value = '203.0.113.45']",
        pattern_type="stix",
        valid_from="2026-11-20T08:00:00Z",
        created_by_ref=identity_id,
        object_marking_refs=marks,
    )
    sighting = stix2.Sighting(
        id=f"sighting--{uuid.uuid4()}",
        sighting_of_ref=indicator.id,
        where_sighted_refs=[identity_id],
        count=3,
        created_by_ref=identity_id,
        object_marking_refs=marks,
    )
    return [json.loads(o.serialize()) for o in (identity, incident, indicator, sighting)]


def indicator(
    identity: str, pattern: str, marking: str = TLP2["green"], name: str = "indicator"
) -> dict[str, Any]:
    """A STIX indicator of `pattern` by `identity`, under `marking`, as plain JSON."""
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": "2026-11-29T08:00:00.000Z",
        "modified": "2026-11-29T08:00:00.000Z",
        "name": name,
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2026-11-29T08:00:00Z",
        "created_by_ref": identity,
        "object_marking_refs": [marking],
    }


def shared_objects(relative: str) -> list[dict[str, Any]]:
    """The objects of a bundle (or the one object) in a file under ../shared/testdata/stix."""
    data = json.loads(Path(TESTDATA, relative).read_text())
    return data["objects"] if data.get("type") == "bundle" else [data]


def oasis_errors(obj: dict[str, Any]) -> str:
    """OASIS stix2-validator's errors for one object ('' when it is valid)."""
    from stix2validator import ValidationOptions, validate_instance

    result = validate_instance(obj, ValidationOptions(version="2.1"))
    return "" if result.is_valid else " | ".join(str(e) for e in result.errors)


def oasis_errors_of_all(objects: list[dict[str, Any]]) -> list[str]:
    """The validator over many objects on both cores (it does ~100 objects/s).

    Spawned, not forked: a test process runs a hub whose threads may hold locks.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        return list(pool.map(oasis_errors, objects, chunksize=200))
