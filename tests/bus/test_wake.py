"""Embedded bus: a commit in one process wakes the readers of the others on the same file
(hub.bus.wake), so a reader need not poll to see what another process wrote."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from hub.bus import Message, TopicSpec
from hub.bus.embedded import EmbeddedBus
from tests.conftest import ROOT

WRITER = """
import asyncio, sys
from hub.bus import Message
from hub.bus.embedded import EmbeddedBus

async def main():
    bus = EmbeddedBus(sys.argv[1])
    await bus.start()
    await bus.publish([Message("events", b"from another process")])
    await bus.stop()

asyncio.run(main())
"""


async def test_a_record_another_process_writes_wakes_a_reader_that_does_not_poll(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bus.sqlite"
    # Looking again only every 10 minutes: within the fetch below, only a wake-up can tell
    # this reader that the other process wrote.
    bus = EmbeddedBus(path, poll_interval=600.0)
    await bus.start()
    try:
        await bus.ensure_topics([TopicSpec("events")])
        reader = bus.reader(["events"], {})
        assert await reader.fetch(timeout=0.1) == []
        fetching = asyncio.ensure_future(reader.fetch(timeout=120.0))
        await asyncio.sleep(0.2)  # the reader is waiting now
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", WRITER, str(path)], cwd=ROOT, timeout=60
        )
        assert done.returncode == 0
        records = await asyncio.wait_for(fetching, 60)
        assert [r.value for r in records] == [b"from another process"]
    finally:
        await bus.stop()


async def test_a_killed_process_registration_is_removed_and_a_stopped_one_leaves_none(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bus.sqlite"
    folder = Path(f"{path}.wake")
    bus = EmbeddedBus(path)
    await bus.start()
    try:
        # What a process killed with SIGKILL leaves: its registration, nobody on its socket.
        (folder / "999999-deadbeef0000").touch()
        await bus.ensure_topics([TopicSpec("events")])
        await bus.publish([Message("events", b"x")])
        assert sorted(p.name for p in folder.iterdir()) == [bus._wakes.name]
    finally:
        await bus.stop()
    assert list(folder.iterdir()) == []


async def test_a_process_registered_in_the_same_clock_tick_as_the_last_listing_is_woken(
    tmp_path: Path,
) -> None:
    """A folder's stamp is coarse: a reader that registers in the tick of the writer's last
    listing leaves the stamp as it was, and must be found all the same."""
    path = tmp_path / "bus.sqlite"
    folder = Path(f"{path}.wake")
    writer = EmbeddedBus(path)
    await writer.start()
    reader_bus = EmbeddedBus(path, poll_interval=600.0)
    try:
        await writer.ensure_topics([TopicSpec("events")])  # its ring lists the folder: itself
        stamp = folder.stat()
        await reader_bus.start()
        # The reader's registration, in the same tick: the folder's stamp unchanged.
        os.utime(folder, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        reader = reader_bus.reader(["events"], {})
        # Without a wake-up this fetch would wait its whole 120 s: wait_for gives up at 60.
        fetching = asyncio.ensure_future(reader.fetch(timeout=120.0))
        await asyncio.sleep(0.2)
        await writer.publish([Message("events", b"same tick")])
        records = await asyncio.wait_for(fetching, 60)
        assert [r.value for r in records] == [b"same tick"]
    finally:
        await reader_bus.stop()
        await writer.stop()
