"""Embedded bus at rest: a reader with nothing new to read does not read the log again, a
heartbeat wakes no reader, and one heartbeat keeps every waiting member of a process. An
idle hub's CPU is made of such wake-ups (issue 21: idle CPU under 1 % of a core); what is
counted here are the statements SQLite runs, not time."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

from hub.bus import Message, TopicSpec
from hub.bus.embedded import EmbeddedBus


async def statements_of_reads(bus: EmbeddedBus) -> list[str]:
    """Every statement the bus's read connection runs from now on."""
    seen: list[str] = []
    await bus.read(lambda conn: conn.set_trace_callback(seen.append))
    return seen


async def statements_of_writes(bus: EmbeddedBus) -> list[str]:
    """Every statement the bus's write connection runs from now on."""
    seen: list[str] = []
    await bus.write(lambda conn: conn.set_trace_callback(seen.append))
    return seen


def record_reads(statements: list[str]) -> int:
    """Reads of the log's records (a statement per partition; partition 0 counts them)."""
    return sum(
        1 for s in statements if s.startswith("SELECT offset, key, value") and "partition = 0" in s
    )


async def test_an_idle_reader_reads_the_log_again_only_when_something_was_committed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bus.sqlite"
    # The file is looked at for missed wake-ups only every 10 minutes: not in this test.
    bus = EmbeddedBus(path, poll_interval=600.0)
    # Another process's group member beating every 0.1 s on the same file.
    other = EmbeddedBus(path, poll_interval=600.0, session_timeout=0.3)
    await bus.start()
    await other.start()
    try:
        await bus.ensure_topics([TopicSpec("events", partitions=2)])
        beating = other.group_consumer("elsewhere", ["events"])
        await beating.start()
        reads = await statements_of_reads(bus)
        reader = bus.reader(["events"], {})
        consumer = bus.group_consumer("here", ["events"])
        await consumer.start()

        async def idle(fetch_timeout: float, rounds: int) -> None:
            for _ in range(rounds):
                assert await reader.fetch(timeout=fetch_timeout) == []
                assert await consumer.fetch(timeout=fetch_timeout) == []

        elsewhere = asyncio.ensure_future(beating.fetch(timeout=3.0))
        await idle(0.05, 20)
        await elsewhere
        # The first fetch of each read the log; nothing was committed since, and the other
        # member's heartbeats (30 of them) show nothing new. Every fetch used to read.
        assert record_reads(reads) == 2

        # A record committed (by the other process) is read at once by both.
        fetching = asyncio.gather(reader.fetch(timeout=30.0), consumer.fetch(timeout=30.0))
        await asyncio.sleep(0.1)
        await other.publish([Message("events", b"new", key=b"k")])
        got = await asyncio.wait_for(fetching, 10)
        assert [[r.value for r in records] for records in got] == [[b"new"], [b"new"]]
        await consumer.stop()
        await beating.stop()
    finally:
        await other.stop()
        await bus.stop()


async def test_one_heartbeat_keeps_every_member_of_a_process_waiting_in_a_fetch(
    tmp_path: Path,
) -> None:
    # A heartbeat is due every 0.25 s.
    bus = EmbeddedBus(tmp_path / "bus.sqlite", poll_interval=600.0, session_timeout=0.75)
    await bus.start()
    try:
        await bus.ensure_topics([TopicSpec("events")])
        consumers = [bus.group_consumer(f"group-{n}", ["events"]) for n in range(3)]
        for consumer in consumers:
            await consumer.start()
        writes = await statements_of_writes(bus)
        await asyncio.gather(*(c.fetch(timeout=2.1) for c in consumers))
        units = " ".join(writes).split("BEGIN IMMEDIATE")[1:]
        beats = [unit.count("UPDATE group_members SET heartbeat") for unit in units]
        assert len(beats) >= 3, beats
        # Each heartbeat wrote for the three members (they used to write one each); the
        # last may have come as the first of them left its fetch.
        assert all(n == 3 for n in beats[:-1]), beats
        for consumer in consumers:
            await consumer.stop()
    finally:
        await bus.stop()


async def test_a_commit_that_wakes_nobody_is_read_within_the_poll_interval(
    tmp_path: Path,
) -> None:
    """A commit whose wake-up cannot arrive (a writer in another network namespace; here a
    plain SQLite connection) is seen by the look at the file every `poll_interval`."""
    path = tmp_path / "bus.sqlite"
    bus = EmbeddedBus(path, poll_interval=0.2)
    await bus.start()
    try:
        await bus.ensure_topics([TopicSpec("events")])
        reader = bus.reader(["events"], {})
        assert await reader.fetch(timeout=0.3) == []
        fetching = asyncio.ensure_future(reader.fetch(timeout=120.0))
        await asyncio.sleep(0.3)

        def write() -> None:
            with closing(sqlite3.connect(path, isolation_level=None)) as conn:
                conn.execute(
                    "INSERT INTO records (topic, partition, offset, value, ts)"
                    " VALUES ('events', 0, 0, x'01', 0)"
                )

        await asyncio.to_thread(write)
        # Well before the fetch's own 120 s: the look at the file woke it.
        records = await asyncio.wait_for(fetching, 30)
        assert [r.value for r in records] == [b"\x01"]
    finally:
        await bus.stop()
