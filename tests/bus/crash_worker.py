"""A bus client run as a separate process so a test can SIGKILL it at a chosen moment.

usage: crash_worker.py unit BUS_URL DATA_DIR IN_TOPIC OUT_TOPIC GROUP TXN_ID COUNT
       crash_worker.py publish BUS_URL DATA_DIR TOPIC
`unit` consumes COUNT records, sends one output per record inside the atomic unit, prints
SENT once they reached the bus, and waits to be killed before committing. `publish`
appends records forever and prints `ACK partition offset value` for each durable one.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from hub.bus import Message
from hub.bus.url import open_bus


async def unit(bus_url: str, data_dir: str, src: str, dst: str, group: str, txn_id: str, n: str):
    bus = open_bus(bus_url, Path(data_dir))
    await bus.start()
    consumer = bus.group_consumer(group, [src], transactional_id=txn_id)
    await consumer.start()
    records = []
    while len(records) < int(n):
        records += await consumer.fetch(max_records=int(n) - len(records), timeout=1.0)
    async with consumer.transaction(records) as txn:
        for record in records:
            await txn.send(Message(dst, b"out:" + record.value, key=record.key))
        await txn.flush()
        print("SENT", flush=True)
        await asyncio.sleep(3600)


async def publish(bus_url: str, data_dir: str, topic: str) -> None:
    bus = open_bus(bus_url, Path(data_dir))
    await bus.start()
    i = 0

    async def one(value: bytes) -> None:
        (pos,) = await bus.publish([Message(topic, value, key=value)])
        print("ACK", pos.partition, pos.offset, value.decode(), flush=True)

    while True:
        # Several in flight at once, so the kill also lands inside grouped commits.
        await asyncio.gather(*(one(f"v{i + j}".encode()) for j in range(8)))
        i += 8


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    asyncio.run({"unit": unit, "publish": publish}[mode](*args))
