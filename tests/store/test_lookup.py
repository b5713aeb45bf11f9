"""The lookup index beside the view: built on first start for a view made before it, kept to
the current versions as the view applies records, and reading patterns as the OASIS grammar
does (the token reader's fast path gives the grammar's keys on every pattern of the shared
test data)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hub.stix.object_paths import comparisons
from hub.store.lookup import CANDIDATES
from hub.store.lookup_values import keys_of, lookup_query, pattern_keys
from hub.store.view import View
from tests.conftest import TESTDATA
from tests.store.feeds import FEED, STATUS, indicator
from tests.store.test_view import feed_record, open_view

READER = "gh-cert-read"
FEEDS = ["region-west-africa"]


async def ids_for(view: View, value: str) -> set[str]:
    answer = await view.lookup(lookup_query(value), FEEDS, READER, 100)
    return {found.arrival.id for found in answer.found}


def patterned(pattern: str, modified: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {**indicator(f"indicator--{uuid.uuid4()}", modified), "pattern": pattern}


async def test_a_view_made_before_the_index_gets_it_when_it_opens(tmp_path: Path) -> None:
    path = tmp_path / "view.sqlite3"
    view = await open_view(path)
    net = patterned("[ipv4-addr:value = '203.0.113.0/24']")
    old = patterned("[domain-name:value = 'old.example']")
    new = {**old, "modified": "2026-02-01T00:00:00Z", "pattern": "[domain-name:value = 'x.org']"}
    await view.apply([feed_record(n, o) for n, o in enumerate([net, old, new])])
    await view.close()
    # What a view of the release before the index holds: the view's tables alone.
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE lookup_values")
        conn.execute("DROP TABLE lookup_text")
        conn.execute("DELETE FROM meta WHERE name = 'lookup_layout'")
    view = await open_view(path)
    try:
        assert await ids_for(view, "203.0.113.45") == {net["id"]}
        assert await ids_for(view, "x.org") == {old["id"]}
        assert await ids_for(view, "old.example") == set()  # superseded
    finally:
        await view.close()


async def test_only_the_latest_version_keeps_its_values(tmp_path: Path) -> None:
    path = tmp_path / "view.sqlite3"
    view = await open_view(path)
    try:
        first = patterned("[ipv4-addr:value = '198.51.100.1']")
        second = {**first, "modified": "2026-02-01T00:00:00Z"}
        second["pattern"] = "[ipv4-addr:value = '198.51.100.2']"
        late = {**first, "modified": "2026-01-15T00:00:00Z"}
        late["pattern"] = "[ipv4-addr:value = '198.51.100.3']"
        revoked = patterned("[ipv4-addr:value = '198.51.100.4']")
        records = [first, second, late, revoked, {**revoked, "modified": "2026-03-01T00:00:00Z"}]
        records[-1]["revoked"] = True
        await view.apply([feed_record(n, o) for n, o in enumerate(records)])
        assert await ids_for(view, "198.51.100.2") == {first["id"]}
        for gone in ("198.51.100.1", "198.51.100.3", "198.51.100.4"):
            assert await ids_for(view, gone) == set(), gone
        with sqlite3.connect(path) as conn:
            kept = conn.execute("SELECT shown FROM lookup_values").fetchall()
        assert kept == [("198.51.100.2",)]  # superseded values left the index
    finally:
        await view.close()


def patterns() -> Iterator[str]:
    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if node.get("type") == "indicator" and node.get("pattern_type") == "stix":
                yield str(node.get("pattern"))
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    for path in sorted(Path(TESTDATA).rglob("*.json")):
        try:
            yield from walk(json.loads(path.read_text()))
        except (ValueError, UnicodeDecodeError):
            continue


# Comparisons the shared test data lacks: every operator indexed, negations, literals that
# hold what looks like a comparison, spacing and quoting the grammar allows.
TRICKY = [
    "[ipv4-addr:value ISSUBSET '203.0.113.0/24' OR ipv6-addr:value ISSUBSET '2001:db8::/32']",
    "[domain-name:value IN ('a.example', 'b.example') AND domain-name:value NOT IN ('c.x')]",
    "[domain-name:value LIKE '%.example.org'] FOLLOWEDBY [domain-name:value LIKE 'x%.org']",
    "[domain-name:value NOT LIKE '%.example.org' OR domain-name:value != 'n.example']",
    "[file:name = 'x domain-name:value = \\'fake.example\\'' AND file:hashes.MD5 = "
    "'001DD76872D80801692FF942308C64E6']",
    f"[file:hashes.'SHA-256'   IN   ('{'EF53' * 16}')]",
    "[url:value = 'http://a.example/?q=IN' AND email-addr:value LIKE 'x@y.org']",
    "[network-traffic:dst_ref.value = '198.51.100.1' AND ipv4-addr:value MATCHES '^10[.]']",
    "([ipv4-addr:value = '192.0.2.1'] AND [ipv4-addr:value = '192.0.2.2']) WITHIN 5 SECONDS",
]


def test_the_token_reading_of_patterns_gives_the_grammars_keys() -> None:
    found = sorted(set(patterns())) + TRICKY
    assert len(found) > 200
    for pattern in found:
        assert list(pattern_keys(pattern)) == list(pattern_keys(pattern, grammar=True)), pattern
    assert [k.shown for k in pattern_keys(TRICKY[4])] == ["001dd76872d80801692ff942308c64e6"]
    assert all(comparisons(pattern) for pattern in TRICKY)  # each one a valid STIX pattern


@pytest.mark.parametrize(
    ("pattern", "shown"),
    [
        ("[ipv4-addr:value ISSUBSET '203.0.113.0/24']", ["203.0.113.0/24"]),
        ("[domain-name:value IN ('a.example', 'B.example.')]", ["a.example", "b.example"]),
        ("[domain-name:value LIKE '%.example.org']", ["example.org"]),
        ("[domain-name:value LIKE 'exact.example']", ["exact.example"]),
        ("[domain-name:value LIKE 'ex%.example']", []),
        ("[domain-name:value NOT LIKE '%.example.org']", []),
        ("[ipv4-addr:value != '192.0.2.1']", []),
        (
            "[file:hashes.MD5 IN ('001DD76872D80801692FF942308C64E6')]",
            ["001dd76872d80801692ff942308c64e6"],
        ),
        ("[url:value = 'HTTPS://A.example:443/x']", ["https://a.example/x", "a.example"]),
        ("[email-addr:value = 'Someone@Example.org']", ["someone@example.org"]),
        ("[url:value = 'http://203.0.113.7:8080/x']", ["http://203.0.113.7:8080/x", "203.0.113.7"]),
        ("[url:value = 'http://[2001:db8::1]/x']", ["http://[2001:db8::1]/x", "2001:db8::1"]),
    ],
)
def test_the_keys_of_a_pattern(pattern: str, shown: list[str]) -> None:
    obj = {"type": "indicator", "pattern_type": "stix", "pattern": pattern}
    assert [k.shown for k in keys_of(obj)] == shown


async def test_what_a_reader_may_not_read_never_crowds_out_what_it_may(tmp_path: Path) -> None:
    """A member floods a feed the reader does not read with one value, past the number of
    index entries a probe looks at: the reader's one indicator of that value, and the
    sighting of it, are still found."""
    other = "cirt-hub.feed.member-hostile"
    view = View(
        tmp_path / "view.sqlite3",
        feeds={FEED: "region-west-africa", other: "member-hostile"},
        status_topic=STATUS,
    )
    await view.open()
    try:
        value = "[ipv4-addr:value = '198.51.100.66']"
        flood = [patterned(value) for _ in range(CANDIDATES + 1)]
        for start in range(0, len(flood), 1000):
            await view.apply(
                [
                    replace(feed_record(start + n, o), topic=other)
                    for n, o in enumerate(flood[start : start + 1000])
                ]
            )
        mine = patterned(value)
        sighting = {
            "type": "sighting",
            "spec_version": "2.1",
            "id": f"sighting--{uuid.uuid4()}",
            "created": "2026-01-02T00:00:00Z",
            "modified": "2026-01-02T00:00:00Z",
            "sighting_of_ref": mine["id"],
        }
        sightings = [{**sighting, "id": f"sighting--{uuid.uuid4()}"} for _ in flood]
        await view.apply(
            [replace(feed_record(len(flood) + n, s), topic=other) for n, s in enumerate(sightings)]
        )
        await view.apply([feed_record(0, mine), feed_record(1, sighting)])
        answer = await view.lookup(lookup_query("198.51.100.66"), FEEDS, READER, 100)
        assert [f.arrival.id for f in answer.found] == [mine["id"], sighting["id"]]
        assert not answer.more
    finally:
        await view.close()
