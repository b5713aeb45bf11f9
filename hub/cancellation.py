"""Telling a task's own cancellation from a CancelledError that merely passed through it.

Libraries can let a CancelledError of their inner tasks escape (aiokafka's consumer stop()
does after a broker dies); only a cancellation someone asked of this task should end it.
"""

from __future__ import annotations

import asyncio


def being_cancelled() -> bool:
    """Whether someone asked to cancel the current task (not merely a CancelledError seen)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
