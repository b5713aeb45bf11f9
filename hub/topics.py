"""Topic names, from the configurable prefix (default `cirt-hub.`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hub.bus import TopicSpec


@dataclass(frozen=True)
class Topics:
    prefix: str = "cirt-hub."

    @property
    def intake(self) -> str:
        """What API nodes of earlier releases wrote (`"v": 1` records), still read; no member's
        principal may write it."""
        return f"{self.prefix}intake"

    def member_intake(self, member: str) -> str:
        """One member's queue: its own Kafka producer's signed bundles, and the hub API's
        records of its TAXII submissions. Nobody else writes there."""
        return f"{self.prefix}intake.member-{member}"

    def intake_member(self, topic: str) -> str | None:
        """The member whose intake topic `topic` is; None for any other topic."""
        head = self.member_intake("")
        if not topic.startswith(head):
            return None
        return topic[len(head) :] or None

    def intakes(self, members: Iterable[str]) -> list[str]:
        """Every topic the pipeline consumes: the hub's intake and each member's."""
        return [self.intake, *(self.member_intake(m) for m in members)]

    @property
    def rejected(self) -> str:
        return f"{self.prefix}rejected"

    @property
    def status(self) -> str:
        return f"{self.prefix}status"

    @property
    def audit(self) -> str:
        return f"{self.prefix}audit"

    @property
    def decisions(self) -> str:
        """Routing decisions as the pipeline makes them; the audit chainer links them."""
        return f"{self.prefix}decisions"

    @property
    def held(self) -> str:
        """Deliveries under embargo, until the releaser moves them to their feeds."""
        return f"{self.prefix}held"

    @property
    def observations(self) -> str:
        """What the correlator counts: keyed observables of routed objects, in one order."""
        return f"{self.prefix}observations"

    def receipts(self, member: str) -> str:
        """What became of each record of the member's intake topic; only it may read there."""
        return f"{self.prefix}receipts.member-{member}"

    @property
    def keys(self) -> str:
        """Compacted: the hub's JWKS and each member's public keys, by name."""
        return f"{self.prefix}keys"

    @property
    def reachability(self) -> str:
        """Reachability checks and their answers (hub.reachability), in one order."""
        return f"{self.prefix}reachability"

    def feed(self, collection: str) -> str:
        return f"{self.prefix}feed.{collection}"

    def specs(
        self, collections: list[str], partitions: int, members: Iterable[str] = ()
    ) -> list[TopicSpec]:
        """Every topic the hub uses; only the intake topics may expire. Intake records carry
        the time the bus took them (when each was written, whatever its writer claims)."""
        return [
            *(
                TopicSpec(t, partitions, retain_forever=False, append_time=True)
                for t in self.intakes(members)
            ),
            # Notifications for the member's Kafka tools: the TAXII status is what lasts.
            *(TopicSpec(self.receipts(m), 1, retain_forever=False) for m in members),
            TopicSpec(self.keys, 1, compact=True),
            TopicSpec(self.rejected, partitions),
            TopicSpec(self.status, partitions),
            TopicSpec(self.audit, 1),
            # One partition each: one total order for the audit chain and for releases.
            TopicSpec(self.decisions, 1),
            TopicSpec(self.held, 1),
            TopicSpec(self.observations, 1),
            TopicSpec(self.reachability, 1),
            *(TopicSpec(self.feed(c), partitions) for c in collections),
        ]
