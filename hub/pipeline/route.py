"""route: what each collection receives of each accepted object, under the sharing rules."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hub.model import Item, RefusalCode, Submission
from hub.policy.entitlement import Policy
from hub.policy.routing import History, NoHistory, Router
from hub.policy.tlp import object_tlp
from hub.stix.markings import Tlp


@dataclass(frozen=True)
class Route:
    policy: Policy
    pseudonym_key: bytes
    history: History = field(default_factory=NoHistory)
    # One router for every submission: what it derives from the federation (region
    # feeds' readers) is derived once.
    router: Router = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "router", Router(self.policy, self.pseudonym_key))

    def __call__(self, submission: Submission) -> Submission:
        try:
            sender = self.policy.federation.member(submission.member)
        except StopIteration:
            return submission.map_accepted(
                lambda i: i.refuse(
                    RefusalCode.UNKNOWN_MEMBER, f"{submission.member!r} is not a member"
                )
            )
        if not self.policy.rules[sender.id].levels[Tlp.RED].recipients:
            submission = submission.map_accepted(_red_needs_recipients)
        accepted = [i for i in submission.items if i.accepted]
        routed = self.router.route(
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


def _red_needs_recipients(item: Item) -> Item:
    """TLP:RED with no account named for it would reach no one: say so, rather than take it.

    A revocation is the exception: it goes to whoever had the object, whatever the rules.
    """
    if object_tlp(item.obj) != Tlp.RED or item.obj.get("revoked") is True:
        return item
    return item.refuse(
        RefusalCode.RED_WITHOUT_RECIPIENTS,
        f"objects[{item.index}] ({item.id}): is TLP:RED, and the sender's "
        "sharing.recipients.red names no account, so it could reach no one; name the "
        "reader accounts (account:<username>) in the federation file, or mark it "
        "TLP:AMBER+STRICT for named members",
    )
