"""Disk and growth: bytes per topic of the embedded log (counted once, then only what is new,
less what retention deletes), bytes per file, growth per day and days until full; and the
hub's dashboard and /metrics showing them."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import aiohttp

from hub.bus import Message
from hub.bus.embedded import EmbeddedBus
from hub.ops.usage import CHUNK, count_topics, measure, uncount
from tests.hubs import running_hub


def true_sizes(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as conn:
        return dict(
            conn.execute(
                "SELECT topic, SUM(length(value) + ifnull(length(key), 0)"
                " + ifnull(length(headers), 0)) FROM records GROUP BY topic"
            ).fetchall()
        )


async def test_bytes_per_topic_are_counted_once_and_kept_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "bus.sqlite3"
    bus = EmbeddedBus(path)
    await bus.start()
    try:
        await bus.publish([Message("t.a", b"x" * 100, key=b"k") for _ in range(CHUNK + 10)])
        await bus.publish([Message("t.b", b"y" * 7, headers=(("h", b"v"),))])
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            first = count_topics(conn, chunks=1)  # a large log is counted over several calls
            assert first["t.a"] < true_sizes(path)["t.a"]
            assert count_topics(conn) == true_sizes(path)
        await bus.publish([Message("t.b", b"z" * 50)])
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            assert count_topics(conn) == true_sizes(path)  # the new record, once
            rowids = [r[0] for r in conn.execute("SELECT rowid FROM records LIMIT 5")]
            conn.execute("BEGIN IMMEDIATE")
            uncount(conn, rowids)
            conn.execute(f"DELETE FROM records WHERE rowid IN ({','.join(map(str, rowids))})")
            conn.execute("COMMIT")
            assert count_topics(conn) == true_sizes(path)
    finally:
        await bus.stop()


def test_growth_per_day_and_days_until_full(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "bus.sqlite3").write_bytes(b"\0" * 1000)
    start = 1_800_000_000.0
    assert measure(data, 10**6, embedded=False, now=start).growth_per_day is None
    (data / "bus.sqlite3").write_bytes(b"\0" * 5000)  # 4,000 bytes more
    early = measure(data, 10**6, embedded=False, now=start + 1800)
    assert early.growth_per_day is None  # less than an hour of samples says nothing yet
    later = measure(data, 10**6, embedded=False, now=start + 6 * 3600)
    assert later.files["bus.sqlite3"] == 5000
    # From the first sample's 1,000 bytes (the history file counts too) in a quarter of a day.
    assert later.growth_per_day == (later.total - 1000) * 4
    assert later.days_until_full == 10**6 / later.growth_per_day


async def test_the_dashboard_and_metrics_show_what_is_stored_and_its_growth(
    tmp_path: Path, demo_secrets: Path
) -> None:
    async with running_hub("embedded", tmp_path / "data", demo_secrets) as hub:
        auth = aiohttp.encode_basic_auth("hub-operator", hub.password("hub-operator"))
        async with aiohttp.ClientSession(headers={"Authorization": auth}) as http:
            async with http.get(f"{hub.base_url}/api/v1/dashboard") as response:
                disk = (await response.json())["disk"]
            async with http.get(f"{hub.base_url}/metrics") as response:
                text = await response.text()
    assert disk["files"]["bus.sqlite3"] > 0 and disk["bytes"] >= disk["files"]["bus.sqlite3"]
    assert disk["topics"]["cirt-hub.feed.public"] > 0  # the hub's published definitions
    assert disk["growth_per_day"] is None and disk["free_bytes"] > 0
    for family in (
        'cirt_hub_topic_bytes{topic="cirt-hub.feed.public"}',
        'cirt_hub_data_dir_bytes{file="bus.sqlite3"}',
        "cirt_hub_data_dir_growth_bytes_per_day NaN",
        "cirt_hub_disk_full_in_days NaN",
        'cirt_hub_disk_bytes{kind="free"}',
    ):
        assert family in text, family
