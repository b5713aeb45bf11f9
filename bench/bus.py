"""How fast is a durable publish? The embedded log against raw SQLite, and optionally Kafka.

    python -m bench.bus [--records 2000] [--kafka HOST:PORT]

Baseline: one INSERT + COMMIT per record straight into SQLite with the same durability
settings (WAL, synchronous=FULL), i.e. the floor cost of an fsynced write on this disk.
Then the embedded bus with 1 publish in flight (per-record overhead of the bus) and with
64 in flight (group commit), and the same on Kafka when a broker is given.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from hub.bus import Bus, Message, TopicSpec
from hub.bus.embedded import EmbeddedBus
from hub.bus.kafka import KafkaBus, KafkaSettings

VALUE = b'{"type":"indicator","spec_version":"2.1","pattern":"[ipv4-addr:value = \'1.2.3.4\']"}' * 4


def raw_sqlite(path: Path, n: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE r (k INTEGER PRIMARY KEY, v BLOB)")
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO r VALUES (?, ?)", (i, VALUE))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


async def bus_rate(bus: Bus, topic: str, n: int, in_flight: int) -> float:
    await bus.ensure_topics([TopicSpec(topic, 1)])
    await bus.publish([Message(topic, VALUE)])  # warm up connections and metadata
    sem = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        async with sem:
            await bus.publish([Message(topic, VALUE, key=str(i).encode())])

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - start)


async def main(records: int, kafka: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(f"baseline: raw SQLite, {records} fsynced single-record commits ...", flush=True)
        baseline = raw_sqlite(Path(tmp, "raw.sqlite3"), records)
        rows = [("raw SQLite insert+commit (baseline)", baseline)]
        embedded = EmbeddedBus(Path(tmp, "bus.sqlite3"))
        await embedded.start()
        try:
            for in_flight in (1, 64):
                print(f"embedded bus, {in_flight} in flight ...", flush=True)
                rate = await bus_rate(embedded, f"bench-{in_flight}", records, in_flight)
                rows.append((f"embedded publish, {in_flight} in flight", rate))
        finally:
            await embedded.stop()
    if kafka:
        bus = KafkaBus(KafkaSettings(kafka))
        await bus.start()
        try:
            for in_flight in (1, 64):
                print(f"kafka bus, {in_flight} in flight ...", flush=True)
                topic = f"bench-{uuid.uuid4().hex[:8]}"
                rows.append(
                    (
                        f"kafka publish (acks=all), {in_flight} in flight",
                        await bus_rate(bus, topic, records, in_flight),
                    )
                )
        finally:
            await bus.stop()
    print()
    print(f"{'what':<45} {'records/s':>12} {'x baseline':>11}")
    for name, rate in rows:
        print(f"{name:<45} {rate:>12,.0f} {rate / baseline:>11.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--kafka", help="HOST:PORT of a broker to measure too")
    args = parser.parse_args()
    asyncio.run(main(args.records, args.kafka))
