"""route: what each collection receives of each accepted object, under the sharing rules."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hub.pipeline.submission import Submission
from hub.policy.entitlement import Policy
from hub.policy.routing import History, NoHistory, Router


@dataclass(frozen=True)
class Route:
    policy: Policy
    pseudonym_key: bytes
    history: History = field(default_factory=NoHistory)

    def __call__(self, submission: Submission) -> Submission:
        try:
            sender = self.policy.federation.member(submission.member)
        except StopIteration:
            return submission.map_accepted(
                lambda i: i.refuse("unknown-member", f"{submission.member!r} is not a member")
            )
        accepted = [i for i in submission.items if i.accepted]
        routed = Router(self.policy, self.pseudonym_key).route(
            sender, [i.obj for i in accepted], submission.received, self.history
        )
        decided = {
            item.index: replace(item, deliveries=r.deliveries, verdicts=r.verdicts)
            for item, r in zip(accepted, routed, strict=True)
        }
        return replace(
            submission,
            items=tuple(decided.get(i.index, i) for i in submission.items),
            policy_version=self.policy.federation.policy_version,
        )
