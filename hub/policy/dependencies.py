"""Default-deny dependencies for one recipient, to a fixpoint, in work linear in the submission.

An object reaches a recipient only if it is still valid without the references the
recipient may not follow; denying it can in turn break objects that refer to it. This is
a greatest fixpoint, the same whatever order objects are judged in. Judged in dependency
order (an object after the objects it refers to), a submission whose references form no
cycle settles with each object judged once; only a cycle can send an object back to be
judged again, and then once per round of denials, not once per denial. The work (the size
of the objects judged) is capped at twice the submission's size: past that, the recipient
receives none of the submission, never more than it may.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.policy.redaction import without
from hub.policy.tlp import object_tlp
from hub.stix.markings import Tlp
from hub.stix.validation import problem_with

# Work beyond this many times the submission's size only a crafted submission needs.
WORK_FACTOR = 2
TOO_ENTANGLED = (
    "its references to other objects of the submission form cycles too tangled to settle "
    f"within {WORK_FACTOR}x the submission's size in routing work"
)


@dataclass(frozen=True, slots=True)
class Shaped:
    """One object as a recipient may have it: its content, the top-level properties
    removed or changed, and why that content cannot be delivered (None: it can)."""

    key: tuple[int, frozenset[str], tuple[str, ...]]
    content: dict[str, Any]
    touched: frozenset[str]
    problem: str | None


class Variants:
    """Each object's content per distinct (withheld properties, hidden references), made
    once however many recipients and passes ask for it."""

    def __init__(self, objects: Sequence[Mapping[str, Any]], levels: Sequence[Tlp | None]):
        self._objects = objects
        self._levels = levels
        self._made: dict[tuple[int, frozenset[str], tuple[str, ...]], Shaped] = {}

    def get(self, i: int, withheld: frozenset[str], hidden: tuple[str, ...]) -> Shaped:
        key = (i, withheld, hidden)
        shaped = self._made.get(key)
        if shaped is None:
            shaped = self._make(key)
            self._made[key] = shaped
        return shaped

    def _make(self, key: tuple[int, frozenset[str], tuple[str, ...]]) -> Shaped:
        i, withheld, hidden = key
        if not withheld and not hidden:
            # The common case: nothing withheld, every reference followable.
            return Shaped(key, dict(self._objects[i]), frozenset(), None)
        gone = frozenset(hidden)
        content, touched = without(self._objects[i], set(withheld), gone.__contains__)
        problem = problem_with(content) if touched else None
        if touched and problem is None and object_tlp(content) != self._levels[i]:
            # A granular marking over the markings themselves: without them the object
            # would travel unlabelled, so it does not travel at all.
            problem = "its own TLP marking is withheld by a granular marking"
        return Shaped(key, content, frozenset(touched), problem)


@dataclass(frozen=True, slots=True)
class Settled:
    """Per object: its final shape for the recipient (None: it was never allowed), and
    whether the work cap was reached (then every object is refused)."""

    shaped: tuple[Shaped | None, ...]
    exhausted: bool = False


def _dependency_order(ids: Sequence[str], refs: Sequence[tuple[str, ...]]) -> list[int]:
    """Each object's rank in a depth-first postorder over references inside the submission:
    an object ranks after everything it refers to, cycles aside."""
    by_id: dict[str, list[int]] = {}
    for i, ident in enumerate(ids):
        by_id.setdefault(ident, []).append(i)

    def targets(i: int) -> Iterator[int]:
        return (j for ref in refs[i] for j in by_id.get(ref, ()))

    rank = [-1] * len(ids)
    entered = [False] * len(ids)
    done = 0
    for root in range(len(ids)):
        if entered[root]:
            continue
        entered[root] = True
        stack = [(root, targets(root))]
        while stack:
            node, pending = stack[-1]
            for target in pending:
                if not entered[target]:
                    entered[target] = True
                    stack.append((target, targets(target)))
                    break
            else:
                stack.pop()
                rank[node] = done
                done += 1
    return rank


def settle(
    ids: Sequence[str],
    refs: Sequence[tuple[str, ...]],
    sizes: Sequence[int],
    allowed: Sequence[bool],
    shape: Callable[[int, set[str]], Shaped],
) -> Settled:
    """The objects one recipient receives, to the fixpoint.

    `allowed` is the verdict on each object alone; `shape(i, visible)` gives object i's
    content for the recipient when the submission's objects it may follow are `visible`.
    """
    rank = _dependency_order(ids, refs)
    alive = list(allowed)
    holders: dict[str, int] = {}
    for i, ident in enumerate(ids):
        if alive[i]:
            holders[ident] = holders.get(ident, 0) + 1
    visible = set(holders)
    dependents: dict[str, list[int]] = {}
    for i, targets in enumerate(refs):
        for ref in targets:
            if ref in visible:
                dependents.setdefault(ref, []).append(i)
    # (generation, rank, index): an object sent back to be judged again waits until the
    # current generation is done, so a chain of denials costs it one more look, not one each.
    queue = [(0, rank[i], i) for i in range(len(ids)) if alive[i]]
    heapq.heapify(queue)
    queued = {i for _, _, i in queue}
    shaped: list[Shaped | None] = [None] * len(ids)
    budget, spent = WORK_FACTOR * sum(sizes), 0
    while queue:
        generation, _, i = heapq.heappop(queue)
        queued.discard(i)
        spent += sizes[i]
        if spent > budget:
            return Settled(tuple(shaped), exhausted=True)
        shaped[i] = result = shape(i, visible)
        if result.problem is None:
            continue
        alive[i] = False
        holders[ids[i]] -= 1
        if holders[ids[i]]:
            continue  # another version of the same object is still delivered
        visible.discard(ids[i])
        for d in dependents.get(ids[i], ()):
            if alive[d] and d not in queued:
                queued.add(d)
                heapq.heappush(queue, (generation + 1, rank[d], d))
    return Settled(tuple(shaped))
