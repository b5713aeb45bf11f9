"""How a blocklist writes each value once within bounded memory.

An export remembers the values it wrote most recently, up to a budget of bytes, and writes
a value it remembers only once; a value it has forgotten is written again (a value seen
again stays remembered: only values absent for half the budget are forgotten). A repeated
line is harmless to a firewall or a DNS blocklist, while a set of every value would let a reader
make the hub hold a collection's worth of memory per export. The forgotten values go into a
fixed-size Bloom filter, so the closing line can say how many lines repeat an earlier one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# What a txt export may hold to recognise repeats: with the values' own length, about 60,000
# typical values (an address or a domain), at least 3,500 of the longest URLs.
WINDOW_BYTES = 8 * 2**20
# Python's cost of remembering one value beyond its characters (the str object and its
# slot in a set), measured with tracemalloc: about 100 bytes.
ENTRY_BYTES = 100
FORGOTTEN_BYTES = 2**20  # under 1 in 10,000 wrong at 100,000 forgotten values
_PROBES = 4
_MASK = 2**64 - 1


class Bloom:
    """A fixed-size Bloom filter of 64-bit keys: no false negatives, rare false positives."""

    def __init__(self, size_bytes: int) -> None:
        self.bits = bytearray(size_bytes)
        self._count = size_bytes * 8

    def _positions(self, key: int) -> list[int]:
        # Double hashing (Kirsch-Mitzenmacher) over the halves of one splitmix64 mix.
        mixed = _mix(key)
        first, second = mixed & 0xFFFFFFFF, mixed >> 32 | 1
        return [(first + i * second) % self._count for i in range(_PROBES)]

    def add(self, key: int) -> bool:
        """Add `key`; whether it was (probably) there already."""
        bits, count, present = self.bits, self._count, True
        mixed = _mix(key)
        first, second = mixed & 0xFFFFFFFF, mixed >> 32 | 1
        for i in range(_PROBES):
            at = (first + i * second) % count
            byte, bit = at >> 3, 1 << (at & 7)
            if not bits[byte] & bit:
                present = False
                bits[byte] |= bit
        return present

    def __contains__(self, key: int) -> bool:
        return all(self.bits[at >> 3] & (1 << (at & 7)) for at in self._positions(key))


def _mix(key: int) -> int:
    key = (key ^ (key >> 30)) * 0xBF58476D1CE4E5B9 & _MASK
    key = (key ^ (key >> 27)) * 0x94D049BB133111EB & _MASK
    return key ^ (key >> 31)


def value_key(value: str) -> int:
    """A 64-bit key of `value` for a Bloom filter: Python's own (keyed) string hash, which
    the set lookup before it has already computed and cached. Only the count of values
    written again depends on it, never which values are written."""
    return hash(value) & _MASK


@dataclass
class Seen:
    """The values a blocklist wrote recently, within `budget` bytes: two generations, each
    of half the budget; a value seen again moves to the newer one, and when the newer one
    is full the older one is forgotten."""

    budget: int = WINDOW_BYTES
    newer: set[str] = field(default_factory=set)
    older: set[str] = field(default_factory=set)
    held: int = 0  # bytes of the newer generation
    forgotten: Bloom | None = None  # made when the first generation is forgotten

    def check(self, value: str) -> str:
        """Remember `value`; "recent" when it was written within the window, "forgotten"
        when (probably) before it, "new" otherwise."""
        if value in self.newer:
            return "recent"
        seen = "recent" if value in self.older else "new"
        if seen == "new" and self.forgotten is not None and value_key(value) in self.forgotten:
            seen = "forgotten"
        self.newer.add(value)
        self.held += len(value) + ENTRY_BYTES
        if self.held > self.budget // 2:
            if self.forgotten is None:
                self.forgotten = Bloom(FORGOTTEN_BYTES)
            for old in self.older:
                if old not in self.newer:
                    self.forgotten.add(value_key(old))
            self.older, self.newer, self.held = self.newer, set(), 0
        return seen
