"""The audit chain: each routing decision linked to the one before by a SHA-256 hash.

A record is the decision plus `seq` (its place in the chain, from 1) and `prev` (the hash
of the record before, 64 zeros for the first); its `hash` is SHA-256 over the RFC 8785
canonical JSON of everything else. Editing a record breaks its own hash; removing one
leaves a gap in `seq`; moving one puts a `seq` out of order; and since every record names
its predecessor's hash, none can be replaced without rewriting all that follow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.signing.provenance import canonical

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class Link:
    """The end of the chain so far: what the next record continues from."""

    seq: int = 0
    hash: str = GENESIS


def record_hash(record: Mapping[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


def chained(decision: Mapping[str, Any], after: Link) -> dict[str, Any]:
    """`decision` as the next record of the chain that ends at `after`."""
    record = {**decision, "seq": after.seq + 1, "prev": after.hash}
    record["hash"] = record_hash(record)
    return record


@dataclass(frozen=True, slots=True)
class Break:
    """The first place the chain does not hold, and how."""

    position: int  # 0-based index of the record in the order read
    seq: Any
    kind: str  # "edited", "removed", "reordered", "unreadable"
    message: str


def verify(records: Iterable[Any]) -> tuple[int, Break | None]:
    """(records checked, the first break or None) over records in log order."""
    listed = list(records)
    expected = Link()
    later_seqs = {r.get("seq") for r in listed if isinstance(r, Mapping)}
    for i, record in enumerate(listed):
        if not isinstance(record, Mapping) or not isinstance(record.get("seq"), int):
            return i, Break(i, None, "unreadable", f"record {i + 1} is not an audit record")
        seq = record["seq"]
        if record.get("hash") != record_hash(record):
            return i, Break(
                i,
                seq,
                "edited",
                f"record seq {seq} was edited: its hash no longer matches its content",
            )
        want = expected.seq + 1
        if seq != want:
            if seq > want and want not in later_seqs:
                return i, Break(
                    i,
                    seq,
                    "removed",
                    f"record seq {want} was removed (found seq {seq} after seq {expected.seq})",
                )
            return i, Break(
                i, seq, "reordered", f"record seq {seq} is out of order (seq {want} expected here)"
            )
        if record.get("prev") != expected.hash:
            return i, Break(
                i,
                seq,
                "edited",
                f"record seq {seq} does not follow seq {expected.seq}: the one before was replaced",
            )
        expected = Link(seq, record["hash"])
    return len(listed), None
