"""mark: every object leaves intake with a TLP marking the routing can rely on: the
sender's `default_tlp` where it has none, or a refusal (the rules: hub/policy/marking.py)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from hub.model import Submission
from hub.policy.marking import marked


@dataclass(frozen=True)
class Mark:
    """The sender's `default_tlp` (from the submission's resolved sender) where none is set."""

    def __call__(self, submission: Submission) -> Submission:
        sender = submission.sender
        default = sender.sharing.get("default_tlp") if sender else None
        return submission.map_accepted(partial(marked, sender=submission.member, default=default))
