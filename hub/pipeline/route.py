"""route: decide each accepted object's collections under the sender's sharing rules."""

from __future__ import annotations

from dataclasses import dataclass, replace

from hub.federation import Federation
from hub.pipeline.submission import Item, Submission
from hub.policy.tlp import destinations


@dataclass(frozen=True)
class Route:
    federation: Federation

    def __call__(self, submission: Submission) -> Submission:
        try:
            sender = self.federation.member(submission.member)
        except StopIteration:
            return submission.map_accepted(
                lambda i: i.refuse("unknown-member", f"{submission.member!r} is not a member")
            )

        def decide(item: Item) -> Item:
            return replace(item, collections=destinations(item.obj, sender))

        return submission.map_accepted(decide)
