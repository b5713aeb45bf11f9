"""The facts exports read (hub.store.export_facts): kept as the view applies records, for the
current versions only, built on first start for a view made before them, and holding the
values the correlator reads from a pattern though they come from the lookup index's reading
of it (one reading at apply for both)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from hypothesis import given, settings

from hub.export.selection import ExportOptions, Facts, choose, choose_stored, facts_of
from hub.export.values import values_of
from hub.stix import timestamps
from hub.stix.markings import Tlp
from hub.store.lookup_values import comparisons_of
from hub.store.view import ObjectQuery, View
from tests.conftest import TESTDATA
from tests.correlate.test_pattern_comparisons import pattern
from tests.stixdata import TLP2
from tests.store.test_lookup import TRICKY, patterns
from tests.store.test_view import feed_record, open_view


def patterned(text: str, modified: str = "2026-01-01T00:00:00Z", **more: Any) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": "2026-01-01T00:00:00Z",
        "modified": modified,
        "pattern": text,
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
        **more,
    }


def same_values(text: str) -> None:
    obj = patterned(text)
    assert values_of(obj, comparisons_of(text)) == values_of(obj), text


def test_the_lookup_reading_gives_the_correlators_values_on_the_shared_data() -> None:
    found = sorted(set(patterns())) + TRICKY
    assert len(found) > 200
    for text in found:
        same_values(text)


@settings(max_examples=400, deadline=None)
@given(pattern())
def test_the_lookup_reading_gives_the_correlators_values_on_random_patterns(text: str) -> None:
    same_values(text)


async def stored(view: View) -> dict[str, Facts]:
    """id → the facts an export reads, for the latest version of each object."""
    page = await view.objects(
        ObjectQuery("region-west-africa", limit=1000, with_json=False, with_facts=True)
    )
    assert all(entry.json == b"" for entry in page.entries)  # the facts spared the JSON
    return {entry.id: Facts.from_bytes(entry.facts) for entry in page.entries}


async def test_only_the_latest_version_keeps_facts_and_a_view_made_before_them_gets_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "view.sqlite3"
    view = await open_view(path)
    net = patterned(
        "[ipv4-addr:value = '203.0.113.0/24']",
        confidence=60,
        object_marking_refs=["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],
    )
    old = patterned("[domain-name:value = 'old.example']")
    new = {**old, "modified": "2026-02-01T00:00:00Z", "pattern": "[domain-name:value = 'x.org']"}
    gone = {**patterned("[url:value = 'http://a.example/x']"), "revoked": True}
    objects = [net, old, new, gone]
    await view.apply([feed_record(n, o) for n, o in enumerate(objects)])
    kept = await stored(view)
    await view.close()
    wanted = {o["id"]: facts_of(o) for o in (net, new, gone)}
    assert kept == wanted
    assert kept[net["id"]].values.found == (("ipv4", "203.0.113.0/24"),)
    assert kept[new["id"]].values.found == (("domain", "x.org"),)  # not the superseded one
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM export_facts").fetchone() == (3,)
        # What a view of the release before the facts holds: the view's tables alone.
        conn.execute("DROP TABLE export_facts")
        conn.execute("DELETE FROM meta WHERE name = 'export_facts_layout'")
    view = await open_view(path)
    try:
        assert await stored(view) == wanted
    finally:
        await view.close()


OPTIONS = [
    ExportOptions("csv"),
    ExportOptions("csv", tlp=Tlp.CLEAR),
    ExportOptions("csv", tlp=Tlp.AMBER, min_confidence=50),
    ExportOptions("txt", kinds=frozenset({"ipv4"}), min_confidence=0),
]


def test_an_export_of_stored_facts_chooses_as_one_of_the_objects() -> None:
    now = timestamps.sort_key("2026-12-08T00:00:00Z")
    objects = [
        {**o, "object_marking_refs": [TLP2[level]], "confidence": confidence}
        for source in ("poisonivy.json", "apt1.json", "indicator-for-malicious-url.json")
        for o in json.loads((TESTDATA / "oasis-cti-documentation-examples" / source).read_text())[
            "objects"
        ]
        for level, confidence in (("clear", None), ("amber", 60), ("red", 40))
        if o["type"] != "marking-definition"
    ]
    objects += [{**objects[0], "revoked": True}, {**objects[1], "valid_until": "2026-01-01T00:00Z"}]
    for obj in objects:
        facts = facts_of(obj)
        stored = facts.to_bytes()
        assert Facts.from_bytes(stored) == facts, obj["id"]
        for options in OPTIONS:
            args = (obj["id"], b"{}", "2026-12-07T10:00:00Z", options, now)
            assert choose_stored(stored, *args) == choose(facts, *args), (obj["id"], options)
