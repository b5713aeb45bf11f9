"""Bus errors.

BusError
├── BusUnavailable   the log cannot be reached or written now (retriable)
└── CommitFailed     the atomic unit did not commit; its input will be redelivered
"""

from typing import ClassVar


class BusError(Exception):
    retriable: ClassVar[bool] = False


class BusUnavailable(BusError):
    retriable = True


class CommitFailed(BusError):
    """The consumer lost its partitions (rebalance) or was fenced before committing."""

    retriable = True
