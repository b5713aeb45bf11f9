"""A hub process keeps glibc's malloc to two arenas (hub.arenas): each thread that allocated
grew an arena of its own, up to eight per core, and kept what it freed there (a pipeline
worker under load held most of its memory that way: issue 21, RSS at max load)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import ROOT

CHILD = """
import ctypes, sys, threading
from hub.arenas import limit_arenas
print(limit_arenas(), flush=True)
start = threading.Barrier(8)
held = []
def allocate():
    start.wait()
    for _ in range(2000):
        held.append(bytearray(2000))  # past Python's small-object allocator: malloc's
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" paragraph per arena, on stderr
"""


def arenas_after_eight_threads(env: dict[str, str]) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip(), len(re.findall(r"^Arena \d+:", done.stderr, re.MULTILINE))


def test_eight_threads_share_two_arenas() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert arenas_after_eight_threads(env) == ("True", 2)


def test_an_operators_malloc_arena_max_is_left_as_given() -> None:
    env = {**os.environ, "MALLOC_ARENA_MAX": "4"}
    assert arenas_after_eight_threads(env) == ("False", 4)
