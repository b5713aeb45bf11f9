"""Bus errors.

BusError
├── BusUnavailable   the log cannot be reached or written now (retriable)
│   └── StorageFull  the disk under the log is full: retriable once space returns
├── CommitFailed     the atomic unit did not commit; its input will be redelivered
└── MessageTooLarge  a record is over the bus's size limit (retrying will not help)
"""

from typing import ClassVar


class BusError(Exception):
    retriable: ClassVar[bool] = False


class BusUnavailable(BusError):
    retriable = True


class StorageFull(BusUnavailable):
    """Nothing was written: the file system under the log has no room left."""


class CommitFailed(BusError):
    """The consumer lost its partitions (rebalance) or was fenced before committing."""

    retriable = True


class MessageTooLarge(BusError):
    retriable = False
