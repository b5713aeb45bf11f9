"""A txt export remembers its values within a fixed budget: a blocklist longer than the
budget still completes, with its closing line counting the values it wrote again, and its
memory stays the same whatever the collection holds; so do a Suricata export's sids."""

from __future__ import annotations

import re
import tracemalloc

from hub.export.dedup import WINDOW_BYTES
from hub.export.formats import COMPLETE, Blocklist, Rules
from hub.export.selection import Exported, ExportOptions
from hub.export.suricata import SIDS_BYTES
from hub.export.values import Values

OPTIONS = ExportOptions(format="txt", kinds=frozenset({"ipv4"}))


def item(n: int, value: str) -> Exported:
    return Exported(
        id=f"indicator--{n}",
        tlp=None,
        confidence=None,
        source="",
        first_seen="2026-12-01T08:00:00Z",
        last_seen="2026-12-01T08:00:00Z",
        values=Values((("ipv4", value),), 0, ""),
        json=b"{}",
    )


def address(n: int) -> str:
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def export(writer: Blocklist, values: list[str]) -> list[str]:
    text = writer.head()
    for at in range(0, len(values), 500):
        text += writer.page([item(at + i, v) for i, v in enumerate(values[at : at + 500])])
    text += writer.tail()
    return text.decode().splitlines()


def test_a_blocklist_beyond_its_memory_completes_and_counts_what_it_wrote_again() -> None:
    # 600 distinct values (about 160 bytes each remembered) in a window of about 100: the
    # second round finds each forgotten, a value repeated at once is still written once.
    values = [address(n) for n in range(600)] * 2 + [address(5000)] * 3
    writer = Blocklist(OPTIONS, "region-east-africa", "now", window=16_000)
    lines = export(writer, values)
    written = [line for line in lines if not line.startswith("#")]
    assert written == [address(n) for n in range(600)] * 2 + [address(5000)]
    assert lines[-1].startswith(COMPLETE)
    assert "1201 values from 1201 objects" in lines[-1]
    assert "2 repeated values written once" in lines[-1]
    assert "600 repeated values written again (beyond the export's memory)" in lines[-1]


def test_values_repeated_within_memory_are_written_once() -> None:
    values = [address(n % 50) for n in range(1000)]
    lines = export(Blocklist(OPTIONS, "feed", "now"), values)
    assert [line for line in lines if not line.startswith("#")] == values[:50]
    assert "950 repeated values written once" in lines[-1]
    assert "written again" not in lines[-1]


def test_the_memory_of_a_blocklist_does_not_grow_with_the_collection() -> None:
    # 250,000 distinct values take some 21 MiB in a set of them all (as before the window).
    writer = Blocklist(OPTIONS, "feed", "now")
    tracemalloc.start()
    try:
        for at in range(0, 250_000, 500):
            writer.page([item(n, address(n)) for n in range(at, at + 500)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < WINDOW_BYTES + 4 * 2**20, f"{peak / 2**20:.1f} MiB"
    assert writer.tail().decode().startswith(f"{COMPLETE} 250000 values")


def test_the_memory_of_suricata_sids_does_not_grow_with_the_rules() -> None:
    # 100,000 sids took some 7 MiB in a set of them all; every one stays distinct.
    writer = Rules(ExportOptions(format="suricata"), "feed", "now")
    sids: set[int] = set()
    tracemalloc.start()
    try:
        for at in range(0, 100_000, 500):
            page = writer.page([item(n, address(n)) for n in range(at, at + 500)])
            sids.update(int(s) for s in re.findall(rb" sid:(\d+);", page))
        # What the export's own code holds after all its rules (the test's set aside).
        held = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(True, "*/hub/export/*")]
        )
    finally:
        tracemalloc.stop()
    size = sum(stat.size for stat in held.statistics("filename"))
    assert len(sids) == 100_000
    assert size < SIDS_BYTES + 2**20, f"{size / 2**20:.1f} MiB"
    assert writer.tail().decode().startswith(f"{COMPLETE} 100000 rules")
