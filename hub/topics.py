"""Topic names, from the configurable prefix (default `cirt-hub.`)."""

from __future__ import annotations

from dataclasses import dataclass

from hub.bus import TopicSpec


@dataclass(frozen=True)
class Topics:
    prefix: str = "cirt-hub."

    @property
    def intake(self) -> str:
        return f"{self.prefix}intake"

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

    def feed(self, collection: str) -> str:
        return f"{self.prefix}feed.{collection}"

    def specs(self, collections: list[str], partitions: int) -> list[TopicSpec]:
        """Every topic the hub uses; only `intake` may expire."""
        return [
            TopicSpec(self.intake, partitions, retain_forever=False),
            TopicSpec(self.rejected, partitions),
            TopicSpec(self.status, partitions),
            TopicSpec(self.audit, 1),
            # One partition each: one total order for the audit chain and for releases.
            TopicSpec(self.decisions, 1),
            TopicSpec(self.held, 1),
            TopicSpec(self.observations, 1),
            *(TopicSpec(self.feed(c), partitions) for c in collections),
        ]
