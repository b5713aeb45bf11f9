"""Disk and growth: bytes per topic of the embedded log (counted once, then only what is new,
less what retention deletes), bytes per file, growth per day and days until full; and the
hub's dashboard and /metrics showing them."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import aiohttp

from hub.bus import Message, TopicSpec
from hub.bus.embedded import EmbeddedBus
from hub.bus.kafka import KafkaBus
from hub.bus.url import open_bus
from hub.ops.usage import CHUNK, count_topics, kafka_usage, measure, uncount
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


async def test_on_kafka_topic_bytes_growth_and_free_space_come_from_the_brokers(
    kafka_bootstrap: str, tmp_path: Path, unique: str
) -> None:
    bus = open_bus(f"kafka://{kafka_bootstrap}", tmp_path)
    assert isinstance(bus, KafkaBus)
    prefix = f"u{unique}."
    await bus.start()
    try:
        await bus.ensure_topics([TopicSpec(f"{prefix}a", 2), TopicSpec(f"{prefix}b", 1)])
        await bus.publish(
            [Message(f"{prefix}a", b"x" * 1000, key=str(n).encode()) for n in range(200)]
        )
        await bus.publish([Message(f"{prefix}b", b"y" * 100)])
        first = await bus.log_dirs(prefix)
        start = 1_800_000_000.0
        before = kafka_usage(first, tmp_path, now=start)
        await bus.publish([Message(f"{prefix}b", b"z" * 1000) for _ in range(300)])
        later = kafka_usage(await bus.log_dirs(prefix), tmp_path, now=start + 6 * 3600)
    finally:
        await bus.stop()
    # 200 KB of values in record batches: the bytes on disk, a little more than what was sent.
    assert 200_000 < before.topics[f"{prefix}a"] < 300_000, before.topics
    assert 100 < before.topics[f"{prefix}b"] < 1_000
    assert set(before.topics) == {f"{prefix}a", f"{prefix}b"}  # nobody else's topics
    assert before.growth_per_day is None
    assert (
        later.topics[f"{prefix}b"] > 300_000
        and later.topics[f"{prefix}a"] == before.topics[f"{prefix}a"]
    )
    grown = sum(later.topics.values()) - sum(before.topics.values())
    assert later.growth_per_day == grown * 4  # in a quarter of a day
    # The broker's log dir tells its space (DescribeLogDirs v4, Kafka 3.3 and later).
    (log_dir,) = later.log_dirs  # the test broker has one
    assert (
        log_dir.total_bytes and log_dir.usable_bytes and log_dir.usable_bytes <= log_dir.total_bytes
    )
    assert later.days_until_full == log_dir.usable_bytes / later.growth_per_day


async def test_on_kafka_the_dashboard_and_metrics_show_the_topics_on_the_brokers(
    kafka_bootstrap: str, tmp_path: Path, demo_secrets: Path, unique: str
) -> None:
    prefix = f"t{unique}."
    async with running_hub(
        f"kafka://{kafka_bootstrap}", tmp_path / "data", demo_secrets, topic_prefix=prefix
    ) as hub:
        auth = aiohttp.encode_basic_auth("hub-operator", hub.password("hub-operator"))
        async with aiohttp.ClientSession(headers={"Authorization": auth}) as http:
            async with http.get(f"{hub.base_url}/api/v1/dashboard") as response:
                disk = (await response.json())["disk"]
            async with http.get(f"{hub.base_url}/metrics") as response:
                text = await response.text()
    kafka = disk["kafka"]
    assert kafka["topics"] == disk["topics"] and all(t.startswith(prefix) for t in disk["topics"])
    assert f"{prefix}audit" in disk["topics"] and f"{prefix}feed.public" in disk["topics"]
    assert kafka["growth_per_day"] is None
    (log_dir,) = kafka["log_dirs"]
    assert log_dir["usable_bytes"] > 0 and log_dir["bytes"] == sum(disk["topics"].values())
    for family in (
        f'cirt_hub_topic_bytes{{topic="{prefix}feed.public"}}',
        f'cirt_hub_kafka_log_dir_bytes{{broker="{log_dir["broker"]}",kind="usable",log_dir="{log_dir["path"]}"}}',
        "cirt_hub_kafka_topics_growth_bytes_per_day NaN",
        "cirt_hub_kafka_full_in_days NaN",
    ):
        assert family in text, family
