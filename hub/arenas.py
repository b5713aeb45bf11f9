"""How many heaps (arenas) the C allocator keeps for the hub's threads, on glibc.

glibc gives a thread that allocates while another thread holds the current arena an arena
of its own, up to eight per core, and memory freed in one arena serves only that arena's
later allocations. A pipeline worker runs its units on eight threads beside its SQLite
threads; under load each thread grew an arena of its own with the objects it parsed and
the records it made, freed and kept: 28-58 MB each, most of a worker's 280-580 MB. The
threads take turns on the GIL, so they rarely allocate at the same moment: two arenas
serve them as fast. An operator's `MALLOC_ARENA_MAX` is left as given.
"""

from __future__ import annotations

import ctypes
import os

ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Keep glibc's malloc to `arenas` arenas; to be called before the process starts
    threads (an arena made before stays). Whether the limit was set."""
    try:
        glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):
        glibc = False  # not a glibc system: its allocator is not this one
    if not glibc or "MALLOC_ARENA_MAX" in os.environ:
        return False
    libc = ctypes.CDLL(None)  # the C library the interpreter itself runs on
    return bool(libc.mallopt(_M_ARENA_MAX, arenas))
