"""Bus errors.

BusError
├── BusUnavailable   the log cannot be reached or written now (retriable)
├── CommitFailed     the atomic unit did not commit; its input will be redelivered
└── MessageTooLarge  a record is over the bus's size limit (retrying will not help)
"""

from typing import ClassVar


class BusError(Exception):
    retriable: ClassVar[bool] = False


class BusUnavailable(BusError):
    retriable = True


class CommitFailed(BusError):
    """The consumer lost its partitions (rebalance) or was fenced before committing."""

    retriable = True


class MessageTooLarge(BusError):
    retriable = False
