"""`GET /metrics`: the node's Prometheus exposition, for accounts with the `operate` role.

Consumer lag is read from the bus at scrape time (end offsets less committed offsets, per
group and partition; on Kafka, transaction markers count as one record each), so a scrape
shows the lag as it is, not as it was when something last happened.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.api.access import caller
from hub.api.keys import BUS, DISK, FOLLOWER, METRICS, SETTINGS, VIEW
from hub.bus import BusError, TopicPartition
from hub.bus.kafka import KafkaBus
from hub.errors import Forbidden
from hub.ops.usage import kafka_usage, measure

log = logging.getLogger(__name__)


async def require_operator(request: web.Request) -> None:
    """401 without credentials, 403 for accounts without the `operate` role."""
    account = await caller(request)
    if not account.can("operate"):
        raise Forbidden(f"account {account.username!r} lacks the 'operate' role")


async def refresh_lag(app: web.Application) -> None:
    """Set the lag gauges from the bus: this node's consumer groups and its view."""
    settings, bus, metrics = app[SETTINGS], app[BUS], app[METRICS]
    prefix, topics = settings.topic_prefix, settings.topics
    groups = []
    if settings.runs_pipeline:
        groups = [
            (f"{prefix}pipeline", topics.intakes(m.id for m in settings.federation.members)),
            (f"{prefix}audit-chain", [topics.decisions]),
            (f"{prefix}embargo", [topics.held]),
        ]
    try:
        async with asyncio.timeout(3):
            for group, group_topics in groups:
                ends = await bus.end_offsets(group_topics)
                committed = await bus.committed(group, group_topics)
                metrics.set_lag(group, ends, functools.partial(_taken, committed))
            if FOLLOWER in app:
                follower = app[FOLLOWER]
                ends = await bus.end_offsets(app[VIEW].topics)
                metrics.set_lag(f"view-{settings.node_id}", ends, follower.position)
    except (BusError, TimeoutError) as exc:
        log.warning("consumer lag not refreshed: %s", exc or "no answer within 3 s")


async def refresh_disk(app: web.Application) -> dict[str, object]:
    """Measure the data dir's disk now; set its gauges; its state (as /readyz shows it)."""
    disk, gauge = app[DISK], app[METRICS].disk_bytes
    measured = await asyncio.to_thread(disk.measure)
    if measured is not None:
        gauge.labels("free").set(measured.free)
        gauge.labels("total").set(measured.total)
    gauge.labels("reserve").set(disk.reserve)
    return disk.state()


async def refresh_usage(app: web.Application) -> dict[str, object]:
    """Measure what the data dir holds and its growth; set their gauges; for the dashboard."""
    settings, metrics, disk = app[SETTINGS], app[METRICS], app[DISK]
    free = disk.last.free if disk.last else None
    try:
        found = await asyncio.to_thread(
            measure, settings.data_dir, free, embedded=settings.bus_url == "embedded"
        )
    except (OSError, sqlite3.Error) as exc:
        log.warning("data dir usage not measured: %s", exc)
        return {}
    topics = found.topics
    kafka = await _kafka_usage(app)
    if kafka is not None:
        topics = kafka["topics"]
    for topic, size in topics.items():
        metrics.topic_bytes.labels(topic).set(size)
    for name, size in found.files.items():
        metrics.data_dir_bytes.labels(name).set(size)
    nan = float("nan")
    metrics.data_dir_growth.set(nan if found.growth_per_day is None else found.growth_per_day)
    metrics.disk_full_in_days.set(nan if found.days_until_full is None else found.days_until_full)
    return {
        "files": found.files,
        "topics": topics,
        "bytes": found.total,
        "growth_per_day": found.growth_per_day,
        "days_until_full": found.days_until_full,
        **({"kafka": kafka} if kafka is not None else {}),
    }


async def _kafka_usage(app: web.Application) -> dict[str, Any] | None:
    """On Kafka: the hub's topics on the brokers' disks, their growth and the log dirs'
    space, set in their gauges; for the dashboard (None on the embedded log)."""
    settings, bus, metrics = app[SETTINGS], app[BUS], app[METRICS]
    if not isinstance(bus, KafkaBus):
        return None
    try:
        async with asyncio.timeout(3):
            log_dirs = await bus.log_dirs(settings.topic_prefix)
        found = await asyncio.to_thread(kafka_usage, log_dirs, settings.data_dir)
    except (BusError, TimeoutError, OSError) as exc:
        log.warning("Kafka topic sizes not measured: %s", exc or "no answer within 3 s")
        return None
    nan = float("nan")
    for d in found.log_dirs:
        broker = str(d.broker)
        metrics.kafka_log_dir_bytes.labels(broker, d.path, "hub").set(sum(d.topics.values()))
        for kind, value in (("total", d.total_bytes), ("usable", d.usable_bytes)):
            metrics.kafka_log_dir_bytes.labels(broker, d.path, kind).set(
                nan if value is None else value
            )
    metrics.kafka_growth.set(nan if found.growth_per_day is None else found.growth_per_day)
    metrics.kafka_full_in_days.set(nan if found.days_until_full is None else found.days_until_full)
    return {
        "topics": found.topics,
        "log_dirs": [
            {
                "broker": d.broker,
                "path": d.path,
                "bytes": sum(d.topics.values()),
                "total_bytes": d.total_bytes,
                "usable_bytes": d.usable_bytes,
            }
            for d in found.log_dirs
        ],
        "growth_per_day": found.growth_per_day,
        "days_until_full": found.days_until_full,
    }


async def metrics(request: web.Request) -> web.Response:
    await require_operator(request)
    await refresh_lag(request.app)
    await refresh_disk(request.app)
    await refresh_usage(request.app)
    body = generate_latest(request.app[METRICS].registry)
    response = web.Response(body=body)
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response


def _taken(committed: dict[TopicPartition, int], tp: TopicPartition) -> int:
    """What a group has committed on a partition (0: nothing yet)."""
    return committed.get(tp, 0)
