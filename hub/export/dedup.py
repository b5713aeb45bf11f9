"""How a blocklist writes each value once within bounded memory.

An export remembers the values it wrote most recently, up to a budget of bytes, and writes
a value it remembers only once; a value it has forgotten is written again (a value seen
again stays remembered: only values absent for half the budget are forgotten). A repeated
line is harmless to a firewall or a DNS blocklist, while a set of every value would let a reader
make the hub hold a collection's worth of memory per export. The forgotten values go into a
fixed-size Bloom filter, so the closing line can say how many lines repeat an earlier one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

# What a txt export may hold to recognise repeats: with the values' own length, about 60,000
# typical values (an address or a domain), at least 3,500 of the longest URLs.
WINDOW_BYTES = 8 * 2**20
# Python's cost of remembering one value beyond its characters (the str object and its
# slot in a set), measured with tracemalloc: about 100 bytes.
ENTRY_BYTES = 100
_FILTER_BITS = 2**23  # 1 MiB: under 1 in 10,000 wrong at 100,000 forgotten values
_PROBES = 4


@dataclass
class Forgotten:
    """A Bloom filter of values that left the window: no false negatives, rare false
    positives, fixed size."""

    bits: bytearray = field(default_factory=lambda: bytearray(_FILTER_BITS // 8))

    def _positions(self, value: str) -> list[int]:
        digest = hashlib.blake2b(value.encode(), digest_size=4 * _PROBES).digest()
        return [
            int.from_bytes(digest[i : i + 4], "little") % _FILTER_BITS
            for i in range(0, 4 * _PROBES, 4)
        ]

    def add(self, value: str) -> None:
        for at in self._positions(value):
            self.bits[at >> 3] |= 1 << (at & 7)

    def __contains__(self, value: str) -> bool:
        return all(self.bits[at >> 3] & (1 << (at & 7)) for at in self._positions(value))


@dataclass
class Seen:
    """The values a blocklist wrote recently, within `budget` bytes: two generations, each
    of half the budget; a value seen again moves to the newer one, and when the newer one
    is full the older one is forgotten."""

    budget: int = WINDOW_BYTES
    newer: set[str] = field(default_factory=set)
    older: set[str] = field(default_factory=set)
    held: int = 0  # bytes of the newer generation
    forgotten: Forgotten | None = None  # made when the first generation is forgotten

    def check(self, value: str) -> str:
        """Remember `value`; "recent" when it was written within the window, "forgotten"
        when (probably) before it, "new" otherwise."""
        if value in self.newer:
            return "recent"
        seen = "recent" if value in self.older else "new"
        if seen == "new" and self.forgotten is not None and value in self.forgotten:
            seen = "forgotten"
        self.newer.add(value)
        self.held += len(value) + ENTRY_BYTES
        if self.held > self.budget // 2:
            if self.forgotten is None:
                self.forgotten = Forgotten()
            for old in self.older:
                if old not in self.newer:
                    self.forgotten.add(old)
            self.older, self.newer, self.held = self.newer, set(), 0
        return seen
