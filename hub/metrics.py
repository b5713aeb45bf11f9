"""What a hub node counts and measures, for Prometheus (`GET /metrics`) and the dashboard.

One registry per node (per app), so several hubs in one process (tests) never mix counts.
Labels are bounded: member and collection ids from the federation, refusal reason codes,
route templates, topics and partitions; never object ids, values or secrets. A submission's
objects are counted once its pipeline unit has committed, so redelivered batches are not
counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hub.bus import Record, TopicPartition
from hub.model import RefusalCode, Stage, Submission
from hub.records import RECEIVED
from hub.stix import timestamps

# Seconds: from a millisecond stage to a minute behind a slow link.
_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Signature refusals that mean a check failed (not a signature that was missing).
_SIGNATURE_FAILURES = (
    RefusalCode.MEMBER_SIGNATURE_MALFORMED,
    RefusalCode.MEMBER_SIGNATURE_WRONG_MEMBER,
    RefusalCode.MEMBER_SIGNATURE_UNKNOWN_KEY,
    RefusalCode.MEMBER_SIGNATURE_INVALID,
)


@dataclass
class HubMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.submissions = Counter(
            "cirt_hub_submissions_total",
            "Submissions (POSTs to the inbox) answered, by member and outcome.",
            ["member", "outcome"],
            registry=r,
        )
        self.objects_received = Counter(
            "cirt_hub_objects_received_total",
            "Objects the pipeline took in, by sending member.",
            ["member"],
            registry=r,
        )
        self.objects_accepted = Counter(
            "cirt_hub_objects_accepted_total",
            "Objects accepted and routed, by sending member.",
            ["member"],
            registry=r,
        )
        self.objects_refused = Counter(
            "cirt_hub_objects_refused_total",
            "Objects refused, by sending member and reason code.",
            ["member", "reason"],
            registry=r,
        )
        self.objects_routed = Counter(
            "cirt_hub_objects_routed_total",
            "Deliveries written to a collection's feed (or held for it under embargo).",
            ["collection"],
            registry=r,
        )
        self.signature_failures = Counter(
            "cirt_hub_signature_verifications_failed_total",
            "Member signatures that did not verify, by sending member.",
            ["member"],
            registry=r,
        )
        self.stage_seconds = Histogram(
            "cirt_hub_pipeline_stage_seconds",
            "Time a pipeline stage took per submission.",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.end_to_end_seconds = Histogram(
            "cirt_hub_end_to_end_seconds",
            "From the hub receiving an object to it being readable in this node's view.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "cirt_hub_consumer_lag_records",
            "Records on the bus a consumer group (or this node's view) has not yet taken.",
            ["group", "topic", "partition"],
            registry=r,
        )
        self.http_requests = Counter(
            "cirt_hub_http_requests_total",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "cirt_hub_http_request_duration_seconds",
            "Time to answer an HTTP request (a stream: until it ended), by route template.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.stream_clients = Gauge(
            "cirt_hub_stream_clients", "Live stream connections open now.", registry=r
        )
        self.login_failures = Counter(
            "cirt_hub_login_failures_total",
            "Logins refused for an unknown account or a wrong secret.",
            registry=r,
        )
        self.login_lockouts = Counter(
            "cirt_hub_login_lockouts_total",
            "Lockouts after repeated failed logins, by scope (account or address).",
            ["scope"],
            registry=r,
        )
        self.connections_refused = Counter(
            "cirt_hub_connections_refused_total",
            "Connections closed on arrival: their address already held its maximum.",
            registry=r,
        )
        self.rate_limited = Counter(
            "cirt_hub_rate_limited_total",
            "Submissions refused (429) because the member was over one of its rate_limits.",
            ["member", "limit"],
            registry=r,
        )
        self.submitted_bytes = Counter(
            "cirt_hub_submitted_bytes_total",
            "Request body bytes members posted to the inbox (what bytes_per_day counts).",
            ["member"],
            registry=r,
        )
        self.disk_full_refusals = Counter(
            "cirt_hub_disk_full_refusals_total",
            "Submissions refused (503) because the data dir's disk was full: none was stored.",
            registry=r,
        )
        self.disk_bytes = Gauge(
            "cirt_hub_disk_bytes",
            "The data dir's file system, at scrape time: free, total, and the reserve "
            "(--min-free-mb) under which submissions are refused.",
            ["kind"],
            registry=r,
        )
        self.retention_deleted = Counter(
            "cirt_hub_retention_deleted_total",
            "Records (log) and rows (views) retention deleted, by store and kind "
            "(superseded, intake, rejected).",
            ["store", "kind"],
            registry=r,
        )
        self.retention_freed_bytes = Counter(
            "cirt_hub_retention_freed_bytes_total",
            "Bytes retention freed inside the SQLite files (reused before the files grow).",
            ["store"],
            registry=r,
        )
        self.topic_bytes = Gauge(
            "cirt_hub_topic_bytes",
            "Bytes each topic holds, at scrape time: keys, values and headers on the embedded "
            "log; its partitions on the brokers' disks on Kafka (every replica).",
            ["topic"],
            registry=r,
        )
        self.kafka_log_dir_bytes = Gauge(
            "cirt_hub_kafka_log_dir_bytes",
            "Each Kafka log dir: the hub's topics in it (hub), its size (total) and what is "
            "left (usable; total and usable from Kafka 3.3 on), at scrape time.",
            ["broker", "log_dir", "kind"],
            registry=r,
        )
        self.kafka_growth = Gauge(
            "cirt_hub_kafka_topics_growth_bytes_per_day",
            "How fast the hub's topics grew on the brokers' disks over the last week (NaN "
            "before an hour of samples).",
            registry=r,
        )
        self.kafka_full_in_days = Gauge(
            "cirt_hub_kafka_full_in_days",
            "Days until the Kafka log dir that fills first is full at that rate (NaN when not "
            "growing or the brokers do not tell their free space).",
            registry=r,
        )
        self.data_dir_bytes = Gauge(
            "cirt_hub_data_dir_bytes",
            "Bytes on disk per SQLite file of the data dir (with its WAL), and other files.",
            ["file"],
            registry=r,
        )
        self.data_dir_growth = Gauge(
            "cirt_hub_data_dir_growth_bytes_per_day",
            "How fast the data dir grew over the last week (NaN before an hour of samples).",
            registry=r,
        )
        self.disk_full_in_days = Gauge(
            "cirt_hub_disk_full_in_days",
            "Days until the data dir's disk is full at that rate (NaN when it is not growing).",
            registry=r,
        )
        self.notify_sent = Counter(
            "cirt_hub_notify_sent_total",
            "Subscription notifications delivered (an e-mail sent, a webhook answered 2xx).",
            ["channel"],
            registry=r,
        )
        self.notify_failures = Counter(
            "cirt_hub_notify_failures_total",
            "Failed attempts to deliver a subscription notification (each is retried).",
            ["channel"],
            registry=r,
        )
        self.notify_pending = Gauge(
            "cirt_hub_notify_pending",
            "Subscription notifications waiting in the outbox (due or being retried).",
            ["channel"],
            registry=r,
        )
        self.notify_given_up = Gauge(
            "cirt_hub_notify_given_up",
            "Subscription notifications given up after every retry failed.",
            ["channel"],
            registry=r,
        )
        self._started = time.time()

    def timed(self, stage: Stage) -> Stage:
        """`stage`, its time observed under its class name."""
        histogram = self.stage_seconds.labels(type(stage).__name__.lower())

        def run(submission: Submission) -> Submission:
            with histogram.time():
                return stage(submission)

        return run

    def count_routed(self, submissions: Iterable[Submission]) -> None:
        """Count what committed pipeline units took in, accepted, refused and delivered."""
        for submission in submissions:
            member = submission.member
            self.objects_received.labels(member).inc(len(submission.items))
            accepted = sum(1 for i in submission.items if i.accepted)
            if accepted:
                self.objects_accepted.labels(member).inc(accepted)
            for item in submission.items:
                if item.refusal is not None:
                    reason = item.refusal.reason
                    self.objects_refused.labels(member, reason).inc()
                    if reason in _SIGNATURE_FAILURES:
                        self.signature_failures.labels(member).inc()
                for delivery in item.deliveries:
                    self.objects_routed.labels(delivery.collection).inc()

    def observe_readable(self, records: Iterable[Record], feeds: Mapping[str, str]) -> None:
        """End-to-end latency of feed records just applied to the view; records received
        before this node started (a rebuild, a restart) are not live and not observed."""
        now = time.time()
        for record in records:
            if record.topic not in feeds:
                continue
            stamp = record.header(RECEIVED)
            try:
                received = timestamps.parse(stamp.decode()).timestamp() if stamp else None
            except ValueError:
                received = None
            if received is not None and received >= self._started:
                self.end_to_end_seconds.observe(max(0.0, now - received))

    def set_lag(
        self, group: str, ends: Mapping[TopicPartition, int], taken: Callable[[TopicPartition], int]
    ) -> None:
        """Lag per partition: the end offset less what `taken(tp)` says the group has."""
        for tp, end in ends.items():
            lag = max(0, end - taken(tp))
            self.consumer_lag.labels(group, tp.topic, str(tp.partition)).set(lag)

    def _samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [
            (sample.labels, sample.value)
            for family in self.registry.collect()
            for sample in family.samples
            if sample.name == name
        ]

    def total(self, name: str) -> float:
        """A counter summed over all its labels."""
        return sum(value for _, value in self._samples(name))

    def totals(self, name: str, label: str) -> dict[str, float]:
        """A counter summed per value of one of its labels."""
        out: dict[str, float] = {}
        for labels, value in self._samples(name):
            out[labels[label]] = out.get(labels[label], 0.0) + value
        return out

    def percentiles(self, name: str, **match: str) -> dict[str, float | None]:
        """p50/p90/p99 (seconds) estimated from a histogram's buckets, and its count."""
        buckets = sorted(
            (float(labels["le"]), value)
            for labels, value in self._samples(f"{name}_bucket")
            if all(labels.get(k) == v for k, v in match.items())
        )
        total = buckets[-1][1] if buckets else 0.0
        out: dict[str, float | None] = {"count": total}
        for q in (50, 90, 99):
            out[f"p{q}"] = _quantile(buckets, total * q / 100) if total else None
        return out

    def stage_percentiles(self) -> list[dict[str, object]]:
        stages = sorted(
            {
                labels["stage"]
                for labels, _ in self._samples("cirt_hub_pipeline_stage_seconds_count")
            }
        )
        return [
            {"stage": stage, **self.percentiles("cirt_hub_pipeline_stage_seconds", stage=stage)}
            for stage in stages
        ]

    def lag_rows(self) -> list[dict[str, object]]:
        return [
            {**labels, "lag": value}
            for labels, value in self._samples("cirt_hub_consumer_lag_records")
        ]


def _quantile(buckets: list[tuple[float, float]], rank: float) -> float:
    """Linear interpolation inside the bucket holding `rank`, as Prometheus does."""
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            width = count - lower_count
            share = (rank - lower_count) / width if width else 0.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound
