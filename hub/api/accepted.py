"""The submissions this node answered 202 whose pending status its view does not hold yet.

The 202 answers once the intake record and its pending status are durable on the bus, not
once this node's view has read the status back; until the view holds it, the status
endpoint answers from here, so a client's GET right after its 202 still finds its status.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hub.bus import Position

# A bound on what a stopped or far-behind view makes this node keep: past it the oldest of
# the member holding the most go first (their GET then waits for the view, as on any other
# node), so one member posting fast cannot push the others' statuses out.
MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Accepted:
    """A submission's pending status, kept until the view holds the record at `position`."""

    member: str
    doc: bytes  # the pending status document, as the 202 answered it
    position: Position  # of the pending status record on the status topic


class AcceptedSubmissions:
    """Pending statuses by status id, forgotten once the view has applied them."""

    def __init__(
        self, view_has_seen: Callable[[Sequence[Position]], bool], max_bytes: int = MAX_BYTES
    ) -> None:
        self._has_seen = view_has_seen
        self._max_bytes = max_bytes
        # In the order accepted; OrderedDict: taking from the front stays O(1) (a dict's
        # iteration would step over every slot already taken from it).
        self._held: OrderedDict[str, Accepted] = OrderedDict()
        self._bytes = 0
        # Each member's, in the order accepted, and what they weigh.
        self._by_member: dict[str, OrderedDict[str, None]] = {}
        self._member_bytes: dict[str, int] = {}

    def add(self, status_id: str, accepted: Accepted) -> None:
        self._forget_seen()
        self._held[status_id] = accepted
        self._by_member.setdefault(accepted.member, OrderedDict())[status_id] = None
        size = len(accepted.doc)
        self._bytes += size
        self._member_bytes[accepted.member] = self._member_bytes.get(accepted.member, 0) + size
        while self._bytes > self._max_bytes and len(self._held) > 1:
            # The heaviest member's oldest (a look over the members: the federation's size).
            heaviest = max(self._member_bytes, key=self._member_bytes.__getitem__)
            self._drop(next(iter(self._by_member[heaviest])))

    def get(self, status_id: str) -> Accepted | None:
        """The pending status, if this node accepted it and may not hold it in its view yet.

        Ask before reading the view and use it if the view misses: one is forgotten only
        once the view holds it, so between the two, one of them has it."""
        return self._held.get(status_id)

    def __len__(self) -> int:
        return len(self._held)

    def _forget_seen(self) -> None:
        # Oldest first, and statuses are applied in order on their partition: stop at the
        # first the view lacks, so adding costs O(1) amortised.
        while self._held:
            status_id = next(iter(self._held))
            if not self._has_seen((self._held[status_id].position,)):
                break
            self._drop(status_id)

    def _drop(self, status_id: str) -> None:
        accepted = self._held.pop(status_id)
        size, member = len(accepted.doc), accepted.member
        self._bytes -= size
        self._member_bytes[member] -= size
        del self._by_member[member][status_id]
        if not self._by_member[member]:
            del self._by_member[member], self._member_bytes[member]
