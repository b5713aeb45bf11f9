"""The bus contract, run against both buses: the embedded SQLite log and real Apache Kafka."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner

from hub.bus import Bus, GroupConsumer, Message, Record, TopicPartition, TopicSpec, read_to
from hub.bus.interrupt import fetch_until
from hub.bus.url import EMBEDDED_FILE, open_bus

WORKER = Path(__file__).with_name("crash_worker.py")


@pytest.fixture
async def bus(bus_url: str, tmp_path: Path) -> AsyncIterator[Bus]:
    bus = open_bus(bus_url, tmp_path)
    await bus.start()
    yield bus
    await bus.stop()


async def make_topics(bus: Bus, *specs: tuple[str, int]) -> None:
    await bus.ensure_topics([TopicSpec(name, partitions) for name, partitions in specs])


async def fetch_n(consumer: GroupConsumer, n: int, deadline: float = 40.0) -> list[Record]:
    """Fetch until `n` records arrived (fails by name if they do not)."""
    records: list[Record] = []
    end = time.monotonic() + deadline
    while len(records) < n:
        assert time.monotonic() < end, f"only {len(records)} of {n} records arrived"
        records += await consumer.fetch(max_records=n - len(records), timeout=0.5)
    return records


async def read_topic(bus: Bus, topic: str, expect: int, settle: float = 1.5) -> list[Record]:
    """Everything a read-committed reader sees on `topic`: `expect` records, then nothing more."""
    reader = bus.reader([topic], {})
    await reader.start()
    try:
        records: list[Record] = []
        end = time.monotonic() + 40
        while len(records) < expect and time.monotonic() < end:
            records += await reader.fetch(timeout=0.5)
        quiet_until = time.monotonic() + settle
        while time.monotonic() < quiet_until:
            records += await reader.fetch(timeout=0.3)
        return records
    finally:
        await reader.stop()


async def committed_total(bus: Bus, group: str, topic: str, expect: int) -> int:
    """The group's committed offsets summed; Kafka shows a transaction's offsets a few ms late."""
    end = time.monotonic() + 10
    while True:
        total = sum((await bus.committed(group, [topic])).values())
        if total == expect or time.monotonic() > end:
            return total
        await asyncio.sleep(0.1)


def values(records: list[Record]) -> list[bytes]:
    return [r.value for r in records]


async def test_records_with_one_key_keep_their_order(bus: Bus, unique: str) -> None:
    topic = f"order-{unique}"
    await make_topics(bus, (topic, 3))
    sent = [
        Message(topic, f"{key}:{i}".encode(), key=key.encode())
        for i in range(30)
        for key in "abcde"
    ]
    await bus.publish(sent)
    consumer = bus.group_consumer(f"g-{unique}", [topic])
    await consumer.start()
    try:
        got = await fetch_n(consumer, len(sent))
    finally:
        await consumer.stop()
    for key in "abcde":
        mine = [r.value for r in got if r.key == key.encode()]
        assert mine == [f"{key}:{i}".encode() for i in range(30)]
        assert len({r.partition for r in got if r.key == key.encode()}) == 1


async def test_uncommitted_records_come_again_committed_ones_do_not(bus: Bus, unique: str) -> None:
    topic, group = f"redeliver-{unique}", f"g-{unique}"
    await make_topics(bus, (topic, 2))
    await bus.publish([Message(topic, f"m{i}".encode(), key=f"k{i}".encode()) for i in range(10)])

    first = bus.group_consumer(group, [topic])
    await first.start()
    seen = await fetch_n(first, 10)
    await first.stop()  # dies without committing

    second = bus.group_consumer(group, [topic])
    await second.start()
    again = await fetch_n(second, 10)
    assert sorted(values(again)) == sorted(values(seen))
    await second.commit(again)
    await second.stop()

    await bus.publish([Message(topic, b"later", key=b"k0")])
    third = bus.group_consumer(group, [topic])
    await third.start()
    try:
        after = await fetch_n(third, 1)
        after += await third.fetch(timeout=1.0)
    finally:
        await third.stop()
    assert values(after) == [b"later"]
    assert await committed_total(bus, group, topic, 10) == 10


async def test_a_fetch_interrupted_by_stop_consumes_nothing(bus: Bus, unique: str) -> None:
    """How runners stop at once: the stop event ends a fetch that would wait 60 s, the
    consumer keeps working after it, and nothing is consumed by a fetch cut short."""
    topic, group = f"interrupt-{unique}", f"g-{unique}"
    await make_topics(bus, (topic, 1))
    first = bus.group_consumer(group, [topic])
    await first.start()
    try:
        stopping = asyncio.Event()
        waiting = asyncio.create_task(fetch_until(stopping, first.fetch(timeout=60)))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        stopping.set()
        async with asyncio.timeout(10):  # far below the fetch's own 60 s
            assert await waiting == []
        await bus.publish([Message(topic, f"m{i}".encode(), key=b"k") for i in range(5)])
        assert await fetch_until(stopping, first.fetch(timeout=60)) == []  # already stopping
        seen = await fetch_n(first, 5)  # the same consumer still reads
    finally:
        await first.stop()  # without committing
    second = bus.group_consumer(group, [topic])
    await second.start()
    try:
        assert values(await fetch_n(second, 5)) == values(seen)
    finally:
        await second.stop()


async def test_atomic_unit_commits_output_and_offsets_together(bus: Bus, unique: str) -> None:
    src, dst, group = f"in-{unique}", f"out-{unique}", f"g-{unique}"
    await make_topics(bus, (src, 2), (dst, 2))
    await bus.publish([Message(src, f"r{i}".encode(), key=f"k{i}".encode()) for i in range(6)])
    consumer = bus.group_consumer(group, [src], transactional_id=f"tx-{unique}")
    await consumer.start()
    try:
        batch = await fetch_n(consumer, 6)
        async with consumer.transaction(batch) as txn:
            for record in batch:
                await txn.send(Message(dst, b"out:" + record.value, key=record.key))
    finally:
        await consumer.stop()
    out = await read_topic(bus, dst, expect=6)
    assert sorted(values(out)) == sorted(b"out:" + v for v in values(batch))
    assert await committed_total(bus, group, src, 6) == 6


async def test_failed_unit_leaves_no_output_and_no_offsets(bus: Bus, unique: str) -> None:
    src, dst, group = f"in-{unique}", f"out-{unique}", f"g-{unique}"
    await make_topics(bus, (src, 1), (dst, 1))
    await bus.publish([Message(src, f"r{i}".encode()) for i in range(4)])
    consumer = bus.group_consumer(group, [src], transactional_id=f"tx-{unique}")
    await consumer.start()
    try:
        batch = await fetch_n(consumer, 4)
        with pytest.raises(RuntimeError, match="stage blew up"):
            async with consumer.transaction(batch) as txn:
                await txn.send(Message(dst, b"half-done"))
                await txn.flush()
                raise RuntimeError("stage blew up")
        # The consumer rewound: the same records come again and can be processed whole.
        again = await fetch_n(consumer, 4)
        assert values(again) == values(batch)
        async with consumer.transaction(again) as txn:
            await txn.send(Message(dst, b"whole"))
    finally:
        await consumer.stop()
    assert values(await read_topic(bus, dst, expect=1)) == [b"whole"]
    assert await committed_total(bus, group, src, 4) == 4


async def test_crash_between_produce_and_commit_is_invisible(
    bus: Bus, bus_url: str, tmp_path: Path, unique: str
) -> None:
    src, dst, group, txn_id = f"in-{unique}", f"out-{unique}", f"g-{unique}", f"tx-{unique}"
    await make_topics(bus, (src, 1), (dst, 1))
    await bus.publish([Message(src, f"r{i}".encode(), key=f"k{i}".encode()) for i in range(5)])

    worker = await asyncio.create_subprocess_exec(
        *(sys.executable, WORKER, "unit", bus_url, tmp_path, src, dst, group, txn_id, "5"),
        stdout=subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(worker.stdout.readline(), 60)
        assert line.strip() == b"SENT", f"worker did not reach the unit: {line!r}"
    finally:
        worker.send_signal(signal.SIGKILL)
        await worker.wait()

    assert await committed_total(bus, group, src, 0) == 0

    # A successor with the same transactional id fences the dead one and does the work once.
    successor = bus.group_consumer(group, [src], transactional_id=txn_id)
    await successor.start()
    try:
        batch = await fetch_n(successor, 5)
        async with successor.transaction(batch) as txn:
            for record in batch:
                await txn.send(Message(dst, b"out:" + record.value, key=record.key))
    finally:
        await successor.stop()
    out = await read_topic(bus, dst, expect=5)
    assert sorted(values(out)) == [f"out:r{i}".encode() for i in range(5)]
    assert await committed_total(bus, group, src, 5) == 5


async def settle_split(a: GroupConsumer, b: GroupConsumer, partitions: int) -> None:
    """Poll both members until the group has split the partitions between them."""
    end = time.monotonic() + 40
    while True:
        await asyncio.gather(a.fetch(timeout=0.3), b.fetch(timeout=0.3))
        ours_a, ours_b = a.assignment(), b.assignment()
        if ours_a and ours_b and len(ours_a | ours_b) == partitions and not ours_a & ours_b:
            return
        assert time.monotonic() < end, f"no split: a={ours_a} b={ours_b}"


async def test_two_consumers_in_one_group_split_the_partitions(bus: Bus, unique: str) -> None:
    topic, group = f"split-{unique}", f"g-{unique}"
    await make_topics(bus, (topic, 4))
    await bus.publish([Message(topic, f"m{i}".encode(), key=f"k{i}".encode()) for i in range(40)])
    a = bus.group_consumer(group, [topic])
    b = bus.group_consumer(group, [topic])
    await a.start()
    await b.start()
    try:
        await settle_split(a, b, partitions=4)
        assert a.assignment() | b.assignment() == {TopicPartition(topic, p) for p in range(4)}
    finally:
        await a.stop()
        await b.stop()


async def test_fetching_again_before_a_commit_moves_on(bus: Bus, unique: str) -> None:
    topic, group = f"again-{unique}", f"g-{unique}"
    await make_topics(bus, (topic, 2))
    a, b = bus.group_consumer(group, [topic]), bus.group_consumer(group, [topic])
    await a.start()
    await b.start()
    try:
        await settle_split(a, b, partitions=2)
        await bus.publish(
            [Message(topic, f"m{i}".encode(), key=f"k{i}".encode()) for i in range(20)]
        )
        got: list[Record] = []
        end = time.monotonic() + 40
        while len(got) < 20 and time.monotonic() < end:
            for records in await asyncio.gather(
                a.fetch(max_records=1, timeout=0.3), b.fetch(max_records=1, timeout=0.3)
            ):
                got += records
        # One record at a time, never committed: still each record once, in a stable group.
        assert sorted(values(got)) == sorted(f"m{i}".encode() for i in range(20))
    finally:
        await a.stop()
        await b.stop()


async def test_publish_returns_distinct_positions(bus: Bus, unique: str) -> None:
    topic = f"pos-{unique}"
    await make_topics(bus, (topic, 1))
    positions = await asyncio.gather(
        *(bus.publish([Message(topic, f"{i}".encode())]) for i in range(20))
    )
    offsets = [p.offset for (p,) in positions]
    assert len(set(offsets)) == 20
    # Kafka's transaction markers take offsets too: positions need not be contiguous.
    ends = await bus.end_offsets([topic])
    assert ends[TopicPartition(topic, 0)] > max(offsets)
    reader = bus.reader([topic], {TopicPartition(topic, 0): 0})
    await reader.start()
    try:
        records = await read_to(reader, ends)
    finally:
        await reader.stop()
    assert {r.offset: r.value for r in records} == {
        p.offset: f"{i}".encode() for i, (p,) in enumerate(positions)
    }


# A Kafka broker closes the connection on a produce request over its socket.request.max.bytes
# (100 MiB by default); a request holds the next batch of every partition with records
# waiting. Twelve 9 MiB records, one per partition, are 108 MiB.
LARGE_RECORD, WIDE = 9 * 1024 * 1024, 12


def spread_keys(partitions: int) -> list[bytes]:
    """Keys that Kafka's default partitioner sends to partitions 0, 1, ... in turn."""
    choose = DefaultPartitioner()
    found: dict[int, bytes] = {}
    for n in range(10_000):
        key = f"k{n}".encode()
        found.setdefault(choose(key, list(range(partitions)), list(range(partitions))), key)
        if len(found) == partitions:
            return [found[p] for p in range(partitions)]
    raise AssertionError("no key found for some partition")


def wide(topic: str) -> list[Message]:
    return [
        Message(topic, bytes([65 + n]) * LARGE_RECORD, key=key)
        for n, key in enumerate(spread_keys(WIDE))
    ]


@pytest.mark.timeout(180)
async def test_a_unit_of_large_records_over_many_partitions_commits(bus: Bus, unique: str) -> None:
    src, dst, group = f"in-{unique}", f"out-{unique}", f"g-{unique}"
    await make_topics(bus, (src, 1), (dst, WIDE))
    await bus.publish([Message(src, b"go")])
    consumer = bus.group_consumer(group, [src], transactional_id=f"tx-{unique}")
    await consumer.start()
    try:
        batch = await fetch_n(consumer, 1)
        async with asyncio.timeout(60), consumer.transaction(batch) as txn:
            for message in wide(dst):
                await txn.send(message)
    finally:
        await consumer.stop()
    out = await read_topic(bus, dst, expect=WIDE, settle=0.5)
    assert sorted(r.value[:1] for r in out) == [bytes([65 + n]) for n in range(WIDE)]
    assert all(len(r.value) == LARGE_RECORD for r in out)


@pytest.mark.timeout(180)
async def test_a_publish_of_large_records_over_many_partitions_is_stored(
    bus: Bus, unique: str
) -> None:
    topic = f"wide-{unique}"
    await make_topics(bus, (topic, WIDE))
    positions = await bus.publish(wide(topic))
    assert len({(p.partition, p.offset) for p in positions}) == WIDE
    out = await read_topic(bus, topic, expect=WIDE, settle=0.5)
    assert sorted(len(r.value) for r in out) == [LARGE_RECORD] * WIDE


@pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)
async def test_embedded_log_survives_kill_during_writes(bus_url: str, tmp_path: Path) -> None:
    worker = await asyncio.create_subprocess_exec(
        *(sys.executable, WORKER, "publish", bus_url, tmp_path, "burst"),
        stdout=subprocess.PIPE,
    )
    acked: list[tuple[int, int, str]] = []
    try:
        while len(acked) < 400:
            line = await asyncio.wait_for(worker.stdout.readline(), 30)
            _, partition, offset, value = line.decode().split()
            acked.append((int(partition), int(offset), value))
    finally:
        worker.send_signal(signal.SIGKILL)
        await worker.wait()

    db = sqlite3.connect(tmp_path / EMBEDDED_FILE)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        db.close()
    bus = open_bus(bus_url, tmp_path)
    await bus.start()
    try:
        ends = await bus.end_offsets(["burst"])
        stored = await read_topic(bus, "burst", expect=ends[TopicPartition("burst", 0)], settle=0.2)
    finally:
        await bus.stop()
    by_offset = {r.offset: r.value.decode() for r in stored}
    # Every acknowledged record is there, where it was acknowledged; the log has no gaps.
    assert all(by_offset.get(offset) == value for _, offset, value in acked)
    assert sorted(by_offset) == list(range(len(by_offset)))
