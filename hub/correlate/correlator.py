"""The correlator: observations in, major-incident alerts out, one atomic unit per batch.

The pipeline writes one observation per routed object to the one-partition `observations`
topic, in its own routing unit. One correlator at a time owns that partition (a consumer
group, as the audit chainer does); it turns each batch into alert versions on
`feed.alerts` and commits them with its offsets. Its state (which members of which
countries reported which keyed observable, and when) is not stored anywhere else: at
start it is rebuilt by replaying the topic up to the committed offset, without emitting,
so alert versions go on from where they were and none is written twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson

from hub.bus import Bus, GroupConsumer, Message, Record, read_to
from hub.bus.interrupt import IDLE_FETCH_SECONDS, fetch_until
from hub.bus.membership import commit_unit, consume_until_stopped
from hub.collections import ALERTS
from hub.config import Settings
from hub.correlate.alerts import ClusterState, NamedMember, alert, alert_id
from hub.correlate.responses import STATES
from hub.correlate.rules import CorrelationRule, parse_rules
from hub.federation import Federation
from hub.model import AlertResponse
from hub.records import FeedRecord, ObservationRecord
from hub.signing.provenance import HubSigner, Provenance
from hub.stix import timestamps
from hub.stix.timestamps import rfc3339_now
from hub.topics import Topics

log = logging.getLogger(__name__)
ONE_MILLISECOND = timestamps.ONE_MICROSECOND * 1000


@dataclass(frozen=True, slots=True)
class Report:
    member: str
    country: str
    at: datetime
    visible: Mapping[str, str]  # member → the object's id as that member received it
    sighting: bool = False  # "seen here too" of a reported object, not a report of its own
    named: bool = False  # its sender chose to be named in the alert


@dataclass(frozen=True, slots=True)
class Answer:
    """A recipient's latest response to its alert."""

    state: str
    at: datetime
    named: bool


@dataclass
class Cluster:
    rule: CorrelationRule
    key: str
    reports: dict[str, Report] = field(default_factory=dict)  # by object id
    responses: dict[str, Answer] = field(default_factory=dict)  # by member: one state each
    first_response: datetime | None = None
    shown: ClusterState | None = None  # the last version published

    def _counted(self, reports: list[Report]) -> list[Report]:
        """The reports that count toward members and countries under the rule."""
        return [r for r in reports if self.rule.sightings_count or not r.sighting]

    def state(self, now: datetime, names: Callable[[str], tuple[str, str]]) -> ClusterState | None:
        """The alert this cluster calls for now, or None while below the rule's threshold;
        `names` gives a member's (identity, name) for those that chose to be named."""
        latest = max(r.at for r in self.reports.values())
        window = [r for r in self.reports.values() if r.at >= latest - self.rule.window]
        recent = self._counted(window)
        members = {r.member for r in recent}
        countries = {r.country for r in recent}
        crossed = len(members) >= self.rule.min_members
        crossed = crossed and len(countries) >= self.rule.min_countries
        if self.shown is None and not crossed:
            return None
        everyone = list(self.reports.values()) if self.shown else window
        counted = self._counted(everyone)
        previous = self.shown.modified if self.shown else now - ONE_MILLISECOND
        created = self.shown.created if self.shown else now
        sighters = {r.member for r in everyone if r.sighting}
        named_sighters = {r.member for r in everyone if r.sighting and r.named}
        named = sorted(
            NamedMember(
                *names(m),
                sighted=m in named_sighters,
                state=self.responses[m].state
                if m in self.responses and self.responses[m].named
                else None,
            )
            for m in named_sighters | {m for m, a in self.responses.items() if a.named}
        )
        return ClusterState(
            rule=self.rule,
            key=self.key,
            members=len({r.member for r in counted}),
            countries=len({r.country for r in counted}),
            first_seen=min(r.at for r in everyone),
            last_seen=latest,
            created=created,
            modified=max(now, previous + ONE_MILLISECOND),
            sighted=len(sighters),
            responses=tuple(
                (s, sum(a.state == s for a in self.responses.values())) for s in STATES
            ),
            named=tuple(named),
            first_response=self.first_response,
        )

    def recipients(self) -> dict[str, set[str]]:
        """member → the contributing objects it received (under the ids it has them)."""
        out: dict[str, set[str]] = {}
        for report in self.reports.values():
            for member, object_id in report.visible.items():
                out.setdefault(member, set()).add(object_id)
        return out


@dataclass
class Correlation:
    """The correlator's state and its one rule: an observation in, alerts (if any) out."""

    federation: Federation
    rules: tuple[CorrelationRule, ...]
    clusters: dict[tuple[int, str], Cluster] = field(default_factory=dict)
    sighted: dict[str, tuple[str, ...]] = field(default_factory=dict)  # object id → keys
    shown_refs: dict[tuple[int, str, str], frozenset[str]] = field(default_factory=dict)
    # alert id → (rule index, key, the member it was made for): what a response may answer
    alerts: dict[str, tuple[int, str, str]] = field(default_factory=dict)

    def _names(self, member: str) -> tuple[str, str]:
        found = self.federation.member(member)
        return found.identity, found.name

    def observe(self, seen: ObservationRecord) -> list[tuple[ClusterState, str, list[str]]]:
        """Take one observation; the (state, recipient, refs) of every alert version due."""
        if seen.response is not None:
            return self._respond(seen, seen.response)
        keys = seen.keys or self.sighted.get(str(seen.sighting_of), ())
        if seen.keys:
            self.sighted[seen.object_id] = seen.keys
        if not keys:
            return []
        at = timestamps.parse(seen.received)
        sighting = seen.sighting_of is not None and not seen.keys
        report = Report(seen.sender, seen.country, at, dict(seen.visible), sighting, seen.named)
        due = []
        for index, rule in enumerate(self.rules):
            if not rule.covers(seen.regions):
                continue
            for key in keys:
                cluster = self.clusters.setdefault((index, key), Cluster(rule, key))
                cluster.reports[seen.object_id] = report
                due += self._versions(index, cluster, at)
        return due

    def _respond(
        self, seen: ObservationRecord, response: AlertResponse
    ) -> list[tuple[ClusterState, str, list[str]]]:
        """A recipient's new state on its own alert; anything else (another member's alert,
        an unknown id, a state unknown) changes nothing."""
        target = self.alerts.get(response.alert)
        if target is None or target[2] != seen.sender or response.state not in STATES:
            return []
        index, key, member = target
        cluster = self.clusters[(index, key)]
        at = timestamps.parse(seen.received)
        cluster.responses[member] = Answer(response.state, at, response.named)
        if cluster.first_response is None:
            cluster.first_response = at
        return self._versions(index, cluster, at)

    def _versions(
        self, index: int, cluster: Cluster, at: datetime
    ) -> list[tuple[ClusterState, str, list[str]]]:
        """The alert versions `cluster` calls for now: every recipient's when what the alert
        says changed, and a recipient's alone when it got another report to refer to."""
        state = cluster.state(at, self._names)
        if state is None:
            return []
        shown = cluster.shown
        changed = shown is None or replace(
            state, created=shown.created, modified=shown.modified
        ) != replace(shown, first_seen=state.first_seen)
        versions = []
        for member, refs in sorted(cluster.recipients().items()):
            if changed or self.shown_refs.get((index, cluster.key, member)) != frozenset(refs):
                versions.append((state, member, sorted(refs)))
                self.shown_refs[(index, cluster.key, member)] = frozenset(refs)
                self.alerts[alert_id(cluster.rule, cluster.key, member)] = (
                    index,
                    cluster.key,
                    member,
                )
        if versions:
            cluster.shown = state
        return versions


@dataclass
class Correlator:
    bus: Bus
    topics: Topics
    federation: Federation
    rules: tuple[CorrelationRule, ...]
    signer: HubSigner
    group: str
    transactional_id: str
    on_alert: Callable[[dict[str, Any], str], None] | None = None  # (signed alert, member)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        await consume_until_stopped(
            self.bus,
            self.group,
            [self.topics.observations],
            self.transactional_id,
            self._stopping,
            self._consume,
        )

    async def _rebuilt(self) -> Correlation:
        """The state as of the committed offset: the topic replayed, nothing emitted."""
        correlation = Correlation(self.federation, self.rules)
        topic = self.topics.observations
        committed = await self.bus.committed(self.group, [topic])
        ends = {tp: committed.get(tp, 0) for tp in await self.bus.end_offsets([topic])}
        if any(ends.values()):
            reader = self.bus.reader([topic], {tp: 0 for tp in ends})
            await reader.start()
            try:
                for record in await read_to(reader, ends, timeout=120):
                    if record.offset < ends.get(record.tp, 0):
                        correlation.observe(ObservationRecord.from_record(record))
            finally:
                await reader.stop()
        return correlation

    def _messages(
        self, due: list[tuple[ClusterState, str, list[str]]]
    ) -> tuple[list[Message], list[tuple[dict[str, Any], str]]]:
        """The feed records of the alert versions due, and each signed alert with its member."""
        messages, signed_alerts = [], []
        added = rfc3339_now()
        for state, member, refs in due:
            readers = [a.username for a in self.federation.member(member).accounts if a.can("read")]
            if not readers:
                continue
            body = alert(state, member, refs, self.federation.hub.identity)
            signed = self.signer.sign(
                body,
                Provenance(
                    received=body["modified"],
                    submitter=self.federation.hub.id,
                    policy_version=self.federation.policy_version,
                ),
            )
            signed_alerts.append((signed, member))
            record = FeedRecord(
                collection=ALERTS,
                object_id=body["id"],
                value=orjson.dumps(signed),
                submitter=self.federation.hub.id,  # the hub's own object, as predefined ones
                date_added=added,
                received=body["modified"],
                accounts=tuple(readers),
            )
            messages.append(record.to_message(self.topics))
        return messages, signed_alerts

    async def _consume(self, consumer: GroupConsumer) -> None:
        correlation = await self._rebuilt()
        while not self._stopping.is_set():
            batch: list[Record] = await fetch_until(
                self._stopping, consumer.fetch(max_records=500, timeout=IDLE_FETCH_SECONDS)
            )
            if not batch:
                continue
            due = [d for r in batch for d in correlation.observe(ObservationRecord.from_record(r))]
            messages, signed = await asyncio.to_thread(self._messages, due) if due else ([], [])
            if not await commit_unit(consumer, batch, messages, "alerts"):
                return  # the state moved past what was committed: rebuild it from the bus
            if signed:
                log.info("major-incident alerts updated", extra={"objects": len(signed)})
                if self.on_alert is not None:
                    for alert_object, member in signed:  # only what committed is announced
                        self.on_alert(alert_object, member)

    def stop(self) -> None:
        self._stopping.set()


def correlator(
    settings: Settings,
    bus: Bus,
    signer: HubSigner,
    on_alert: Callable[[dict[str, Any], str], None] | None = None,
) -> Correlator:
    """The node's correlator; all nodes' share one group, so one runs at a time."""
    prefix = settings.topic_prefix
    return Correlator(
        bus=bus,
        topics=settings.topics,
        federation=settings.federation,
        rules=parse_rules(settings.federation.correlation),
        signer=signer,
        group=f"{prefix}correlator",
        transactional_id=f"{prefix}correlator-{settings.node_id}",
        on_alert=on_alert,
    )
