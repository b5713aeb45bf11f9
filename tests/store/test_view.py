"""The materialized view: idempotent, resumable, and paging that never skips or repeats."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.bus import Record, TopicPartition
from hub.store.view import ObjectQuery, View, timestamp_key
from tests.store.feeds import FEED, STATUS, indicator

SAME_INSTANT = "2026-11-23T10:00:00.000Z"


def feed_record(offset: int, obj: dict, added: str = SAME_INSTANT, partition: int = 0) -> Record:
    return Record(
        FEED,
        partition,
        offset,
        obj["id"].encode(),
        orjson.dumps(obj),
        (("date-added", added.encode()),),
        0,
    )


async def open_view(path: Path) -> View:
    view = View(path, feeds={FEED: "region-west-africa"}, status_topic=STATUS)
    await view.open()
    return view


async def read_pages(view: View, limit: int, **filters) -> list[bytes]:
    seen: list[bytes] = []
    after = 0
    while True:
        page = await view.objects(
            ObjectQuery("region-west-africa", after_seq=after, limit=limit, **filters)
        )
        seen += page.objects
        if not page.more:
            return seen
        after = page.last_seq


async def test_paging_over_thousands_sharing_one_date_added(tmp_path: Path) -> None:
    view = await open_view(tmp_path / "view.sqlite3")
    try:
        objs = [
            indicator(f"indicator--{uuid.uuid4()}", "2026-01-01T00:00:00Z") for _ in range(2500)
        ]
        await view.apply([feed_record(i, o) for i, o in enumerate(objs)])
        pages = await read_pages(view, limit=100)
        ids = [orjson.loads(b)["id"] for b in pages]
        assert ids == [o["id"] for o in objs]  # all, once each, in ingest order
    finally:
        await view.close()


async def test_versions_last_first_all_and_precision_independent(tmp_path: Path) -> None:
    view = await open_view(tmp_path / "view.sqlite3")
    try:
        oid = f"indicator--{uuid.uuid4()}"
        versions = ["2026-01-01T00:00:00Z", "2026-03-01T00:00:00.5Z", "2026-02-01T00:00:00.000Z"]
        await view.apply([feed_record(i, indicator(oid, v)) for i, v in enumerate(versions)])

        def modified(objs: list[bytes]) -> list[str]:
            return [orjson.loads(b)["modified"] for b in objs]

        assert modified(await read_pages(view, 10)) == ["2026-03-01T00:00:00.5Z"]
        assert modified(await read_pages(view, 10, versions=("first",))) == [versions[0]]
        assert len(await read_pages(view, 10, versions=("all",))) == 3
        exact = await read_pages(view, 10, versions=("2026-02-01T00:00:00Z",))
        assert modified(exact) == ["2026-02-01T00:00:00.000Z"]
    finally:
        await view.close()


async def test_reapplying_records_changes_nothing_and_positions_persist(tmp_path: Path) -> None:
    path = tmp_path / "view.sqlite3"
    view = await open_view(path)
    objs = [indicator(f"indicator--{uuid.uuid4()}", "2026-01-01T00:00:00Z") for _ in range(5)]
    records = [feed_record(i, o) for i, o in enumerate(objs)]
    await view.apply(records)
    await view.apply(records[2:])  # redelivered after a crash
    await view.close()

    reopened = await open_view(path)
    try:
        assert await reopened.positions() == {TopicPartition(FEED, 0): 5}
        assert len(await read_pages(reopened, 100)) == 5
    finally:
        await reopened.close()


async def test_final_status_wins_over_pending_whatever_the_order(tmp_path: Path) -> None:
    view = await open_view(tmp_path / "view.sqlite3")
    try:

        def status(state: str, offset: int) -> Record:
            doc = {"id": "s-1", "status": state}
            return Record(
                STATUS, 0, offset, b"s-1", orjson.dumps(doc), (("member", b"ng-cert"),), 0
            )

        await view.apply([status("complete", 0), status("pending", 1)])
        member, doc = await view.status("s-1")
        assert member == "ng-cert" and orjson.loads(doc)["status"] == "complete"
    finally:
        await view.close()


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=6),
    limit=st.integers(min_value=1, max_value=25),
)
async def test_paging_while_objects_keep_arriving_misses_nothing(tmp_path_factory, sizes, limit):
    view = await open_view(tmp_path_factory.mktemp("v") / "view.sqlite3")
    try:
        offset, expected, seen, after = 0, [], [], 0
        for size in sizes:
            batch = [
                indicator(f"indicator--{uuid.uuid4()}", "2026-01-01T00:00:00Z") for _ in range(size)
            ]
            await view.apply([feed_record(offset + i, o) for i, o in enumerate(batch)])
            offset += size
            expected += [o["id"] for o in batch]
            page = await view.objects(
                ObjectQuery("region-west-africa", after_seq=after, limit=limit)
            )
            seen += [orjson.loads(b)["id"] for b in page.objects]
            after = page.last_seq
        while True:
            page = await view.objects(
                ObjectQuery("region-west-africa", after_seq=after, limit=limit)
            )
            seen += [orjson.loads(b)["id"] for b in page.objects]
            after = page.last_seq
            if not page.more:
                break
        assert seen == expected
    finally:
        await view.close()


def test_timestamp_key_orders_mixed_precision() -> None:
    assert timestamp_key("2026-01-01T00:00:00Z") < timestamp_key("2026-01-01T00:00:00.001Z")
    assert timestamp_key("2026-01-01T00:00:00.000Z") == timestamp_key("2026-01-01T00:00:00Z")
    # Digits past microseconds still count, and offsets are converted to UTC.
    assert timestamp_key("2026-01-01T00:00:00.0000001Z") > timestamp_key("2026-01-01T00:00:00Z")
    assert timestamp_key("2026-01-01T01:00:00+01:00") == timestamp_key("2026-01-01T00:00:00Z")


async def test_added_after_polling_never_misses_objects_routed_in_one_instant(
    tmp_path: Path,
) -> None:
    view = await open_view(tmp_path / "view.sqlite3")
    try:
        objs = [indicator(f"indicator--{uuid.uuid4()}", "2026-01-01T00:00:00Z") for _ in range(250)]
        await view.apply([feed_record(i, o) for i, o in enumerate(objs)])  # one routing stamp
        seen: list[str] = []
        added_after = None
        while True:  # a poller that only ever uses added_after = last date_added it saw
            page = await view.objects(
                ObjectQuery("region-west-africa", added_after=added_after, limit=100)
            )
            if not page.objects:
                break
            seen += [orjson.loads(b)["id"] for b in page.objects]
            added_after = page.last_added
        assert seen == [o["id"] for o in objs]
    finally:
        await view.close()


async def test_date_added_keeps_increasing_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "view.sqlite3"
    view = await open_view(path)
    first = indicator(f"indicator--{uuid.uuid4()}", "2026-01-01T00:00:00Z")
    await view.apply([feed_record(0, first, added="2030-01-01T00:00:00.000Z")])
    epoch = view.epoch
    await view.close()
    view = await open_view(path)
    try:
        assert view.epoch == epoch
        later = indicator(f"indicator--{uuid.uuid4()}", "2026-01-01T00:00:00Z")
        await view.apply([feed_record(1, later, added="2026-01-01T00:00:00.000Z")])  # older stamp
        page = await view.objects(
            ObjectQuery("region-west-africa", added_after="2030-01-01T00:00:00Z", limit=10)
        )
        assert [orjson.loads(b)["id"] for b in page.objects] == [later["id"]]
    finally:
        await view.close()


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=25),
    limit=st.integers(min_value=1, max_value=10),
    budget=st.integers(min_value=300, max_value=6000),
)
async def test_a_page_ends_at_its_byte_budget_or_its_limit_and_paging_reads_all(
    tmp_path_factory, sizes, limit, budget
) -> None:
    view = await open_view(tmp_path_factory.mktemp("v") / "view.sqlite3")
    try:
        objs = [
            {**indicator(f"indicator--{uuid.uuid4()}", "2026-01-01T00:00:00Z"), "name": "x" * n}
            for n in sizes
        ]
        stored = [len(orjson.dumps(o)) for o in objs]
        await view.apply([feed_record(i, o) for i, o in enumerate(objs)])
        seen: list[str] = []
        after = 0
        while True:
            page = await view.objects(
                ObjectQuery("region-west-africa", after_seq=after, limit=limit, max_bytes=budget)
            )
            held = sum(len(b) for b in page.objects)
            assert 1 <= len(page.entries) <= limit
            assert held <= budget or len(page.entries) == 1  # a larger object comes alone
            seen += [orjson.loads(b)["id"] for b in page.objects]
            after = page.last_seq
            if not page.more:
                break
            # Full as it may be: the next object would pass the limit or the budget.
            assert len(page.entries) == limit or held + stored[len(seen)] > budget
        assert seen == [o["id"] for o in objs]
        # Answers that show no object (manifest, versions) read none, and only `limit` ends them.
        listing = await view.objects(
            ObjectQuery("region-west-africa", limit=limit, max_bytes=budget, with_json=False)
        )
        assert len(listing.entries) == min(limit, len(objs))
        assert listing.objects == [b""] * len(listing.entries)
    finally:
        await view.close()
