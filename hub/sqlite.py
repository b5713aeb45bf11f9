"""A SQLite connection owned by one thread, driven from asyncio.

sqlite3 objects must stay on the thread that made them, and SQLite calls block; so each
connection lives on its own single-thread executor and coroutines hand it functions.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class SqliteThread:
    def __init__(
        self,
        path: Path,
        *,
        name: str,
        pragmas: tuple[str, ...] = (),
        schema: str = "",
    ) -> None:
        self.path = path
        self._pragmas = pragmas
        self._schema = schema
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        for pragma in self._pragmas:
            conn.execute(f"PRAGMA {pragma}")
        if self._schema:
            conn.executescript(self._schema)
        self._conn = conn

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._open)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` on the connection's thread."""

        def call() -> T:
            if self._conn is None:
                raise sqlite3.OperationalError("database is closed")
            return fn(self._conn)

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def stop(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._pool, close)
        self._pool.shutdown(wait=True)


def in_transaction(conn: sqlite3.Connection, body: Callable[[], T]) -> T:
    """Run `body` inside BEGIN IMMEDIATE … COMMIT; roll back if it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = body()
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result
