"""The values that travel through the pipeline: a submission and its objects' outcomes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from hub.signing.members import MemberSignature


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one object was not accepted, in words a CIRT analyst understands."""

    reason: str  # short code, stable for metrics and filters: "invalid-stix", ...
    message: str


@dataclass(frozen=True, slots=True)
class Item:
    """One STIX object of a submission, as sent, with what the stages decided about it."""

    index: int
    obj: Mapping[str, Any]
    refusal: Refusal | None = None
    collections: tuple[str, ...] = ()
    member_signature: MemberSignature | None = None  # verified by authenticate, carried by sign
    redacted: bool = False  # a policy stage removed properties; sign says so in the provenance

    @property
    def id(self) -> str:
        value = self.obj.get("id") if isinstance(self.obj, Mapping) else None
        return value if isinstance(value, str) else ""

    @property
    def version(self) -> str | None:
        """The object's version for TAXII: `modified`, else `created`; None for SCOs."""
        if not isinstance(self.obj, Mapping):
            return None
        value = self.obj.get("modified") or self.obj.get("created")
        return value if isinstance(value, str) and value else None

    @property
    def accepted(self) -> bool:
        return self.refusal is None

    def refuse(self, reason: str, message: str) -> Item:
        return replace(self, refusal=Refusal(reason, message))


@dataclass(frozen=True, slots=True)
class Submission:
    """A member's bundle on its way from intake to the feeds."""

    status_id: str
    member: str
    account: str
    received: str  # RFC 3339, when the hub accepted the request
    request_id: str
    items: tuple[Item, ...]

    def map_accepted(self, decide: Callable[[Item], Item]) -> Submission:
        """Apply `decide` to every object still accepted; refused ones pass through as they are."""
        return replace(self, items=tuple(decide(i) if i.accepted else i for i in self.items))


Stage = Callable[[Submission], Submission]


def compose(*stages: Stage) -> Stage:
    """The pipeline: `stages` applied in order, read top to bottom in one place."""

    def pipeline(submission: Submission) -> Submission:
        for stage in stages:
            submission = stage(submission)
        return submission

    return pipeline
