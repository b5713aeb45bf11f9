"""The view's reads and its per-batch work cost the same whatever its size: a live stream's
next page, a TAXII poll and the held-status check must not grow with the objects and
statuses a hub has accumulated over weeks (they did: each scanned a whole collection or
every status ever received). Cost is counted in SQLite VM steps, not timed."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable

import orjson
import pytest

from hub.store.view import _SCHEMA, ObjectQuery, _release_held_statuses, _select_page

COLLECTIONS = ("public", "region-west-africa", "member-ke-cirt")


def _view(objects: int, statuses: int) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.executescript(_SCHEMA)
    conn.executemany(
        "INSERT INTO objects (collection, id, type, spec_version, version, version_key,"
        " date_added, date_added_key, json, accounts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (
                COLLECTIONS[n % len(COLLECTIONS)],
                f"indicator--{uuid.uuid4()}",
                "indicator",
                "2.1",
                "2026-11-30T00:00:00Z",
                "2026-11-30T00:00:00.000000000Z",
                f"2026-11-30T00:00:00.{n:06d}Z",
                f"2026-11-30T00:00:00.{n:06d}000Z",
                b"{}",
                None,
            )
            for n in range(objects)
        ),
    )
    conn.executemany(
        "INSERT INTO statuses (id, member, complete, doc) VALUES (?, 'ke-cirt', 1, ?)",
        ((f"status-{n}", orjson.dumps({"objects": ["x" * 64] * 60})) for n in range(statuses)),
    )
    return conn


def _steps(conn: sqlite3.Connection, work: Callable[[], object]) -> int:
    counted = [0]

    def tick() -> int:
        counted[0] += 1
        return 0

    conn.set_progress_handler(tick, 100)
    try:
        work()
    finally:
        conn.set_progress_handler(None, 0)
    return counted[0]


def _newest(objects: int) -> int:
    return objects - 3 * len(COLLECTIONS)  # a cursor a few objects before the end


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(
            lambda n: ObjectQuery("public", after_seq=_newest(n), versions=("all",)), id="stream"
        ),
        pytest.param(lambda n: ObjectQuery("public", after_seq=_newest(n)), id="page-last"),
        pytest.param(
            lambda n: ObjectQuery("public", added_after=f"2026-11-30T00:00:00.{_newest(n):06d}Z"),
            id="added-after",
        ),
    ],
)
def test_reading_the_newest_objects_costs_the_same_in_a_small_and_a_large_view(query) -> None:
    small, large = _view(3_000, 0), _view(60_000, 0)
    small_page = _select_page(small, query(3_000))
    large_page = _select_page(large, query(60_000))
    assert len(small_page.entries) == len(large_page.entries) > 0
    small_cost = _steps(small, lambda: _select_page(small, query(3_000)))
    large_cost = _steps(large, lambda: _select_page(large, query(60_000)))
    # Twenty times the objects: a scan of the collection would cost about twenty times more.
    assert large_cost <= 2 * small_cost + 20, (small_cost, large_cost)


def test_the_held_status_check_after_each_batch_ignores_completed_statuses() -> None:
    few, many = _view(0, 100), _view(0, 5_000)
    for conn in (few, many):
        conn.execute(
            "INSERT INTO statuses (id, member, complete, doc, final_doc, awaiting)"
            " VALUES ('held', 'ke-cirt', 0, '{}', '{}', ?)",
            (orjson.dumps([["public", "indicator--1", ""]]),),
        )
    few_cost = _steps(few, lambda: _release_held_statuses(few))
    many_cost = _steps(many, lambda: _release_held_statuses(many))
    assert many_cost <= 2 * few_cost + 20, (few_cost, many_cost)
    assert many.execute("SELECT complete FROM statuses WHERE id = 'held'").fetchone() == (0,)
