"""One hub node from a Settings object: the composition root. It builds the resources the node
runs (bus, intake key, view and its follower, notifier, intake gate, pipeline and the
services beside it, retention), each one cleanup context, on the HTTP app of `hub.api.app`.

Contexts start in order and stop in reverse, and one stops only if its start succeeded, so
a test can start a whole hub and stop it cleanly. Which ones a node runs follows
`settings.role`: an API node keeps a view (and what reads it), a pipeline node the pipeline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from aiohttp import web

from hub.api.accepted import AcceptedSubmissions
from hub.api.app import add_routes, http_app
from hub.api.background import supervised
from hub.api.backpressure import IntakeGate
from hub.api.keys import (
    ACCEPTED,
    AUTH,
    BUS,
    COLLECTIONS,
    DISK,
    FOLLOWER,
    INTAKE_GATE,
    INTAKE_KEYS,
    METRICS,
    NOTIFY,
    RUNNERS,
    SETTINGS,
    SIGNING_KEYS,
    SUBSCRIPTIONS,
    VIEW,
)
from hub.audit.chainer import audit_chainer
from hub.bus import Bus, BusError
from hub.bus.url import EMBEDDED_FILE, open_bus
from hub.collections import ALERTS, Collection, build_collections, feed_aliases
from hub.config import Settings
from hub.correlate.correlator import correlator
from hub.correlate.observe import Observe
from hub.correlate.responses import ConfineResponses, UnnamedSightings
from hub.correlate.webhooks import Webhooks
from hub.metrics import HubMetrics
from hub.notify.config import notify_settings
from hub.notify.notifier import Notifier
from hub.notify.store import NotifyStore
from hub.ops.disk import DiskWatch
from hub.ops.retention import Pruned, RetentionRunner, prune_data_dir
from hub.pipeline.authenticate import Authenticate
from hub.pipeline.compose import compose
from hub.pipeline.decode import Decode
from hub.pipeline.history import DeliveryHistory
from hub.pipeline.mark import Mark
from hub.pipeline.ownership import Ownership
from hub.pipeline.predefined import publish_predefined
from hub.pipeline.provenance import Provenance
from hub.pipeline.release import releaser
from hub.pipeline.route import Route
from hub.pipeline.sign import Sign
from hub.pipeline.validate import Validate
from hub.pipeline.worker import PipelineWorker
from hub.policy.entitlement import Policy
from hub.policy.pseudonyms import load_key
from hub.signing.intake import IntakeKeyFile
from hub.signing.keyring import KeyStore
from hub.signing.keys_topic import KeysPublisher
from hub.signing.provenance import HubSigner
from hub.store.follower import ViewFollower
from hub.store.view import View

log = logging.getLogger(__name__)
Context = Callable[[web.Application], AsyncIterator[None]]


def _bus_context(given: Bus | None) -> Context:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        bus = given or open_bus(settings.bus_url, settings.data_dir, partitions=settings.partitions)
        await bus.start()
        try:
            members = [m.id for m in settings.federation.members]
            await bus.ensure_topics(
                settings.topics.specs(feed_aliases(app[COLLECTIONS]), settings.partitions, members)
            )
            app[BUS] = bus
            yield
        finally:
            if given is None:
                await bus.stop()

    return ctx


async def _intake_key_context(app: web.Application) -> AsyncIterator[None]:
    """The intake key, made at the first start of a node that may write the keys dir."""
    intake_keys, settings = app[INTAKE_KEYS], app[SETTINGS]
    if intake_keys.read() is None:
        topic = settings.topics.intake
        ends = await app[BUS].end_offsets([topic])
        try:
            await asyncio.to_thread(
                intake_keys.ensure, topic, {tp.partition: end for tp, end in ends.items()}
            )
        except OSError as exc:
            if settings.runs_pipeline:
                raise
            # An API node with the keys dir mounted read-only: a pipeline node makes the key.
            log.warning(
                "no intake key in %s yet, and it cannot be made here: %s", intake_keys.dir, exc
            )
    yield


async def _view_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    feeds = {settings.topics.feed(alias): alias for alias in feed_aliases(app[COLLECTIONS])}
    view = View(
        settings.data_dir / f"view-{settings.node_id}.sqlite3",
        feeds=feeds,
        status_topic=settings.topics.status,
        audit_topic=settings.topics.audit,
    )
    await view.open()
    app[VIEW] = view
    follower = ViewFollower(
        app[BUS], view, lambda records: app[METRICS].observe_readable(records, feeds)
    )
    app[FOLLOWER] = follower
    app[ACCEPTED] = AcceptedSubmissions(follower.has_seen)
    try:
        async with supervised("view-follower", follower, settings.drain_seconds) as state:
            app[RUNNERS].append(state)
            yield
    finally:
        await view.close()


async def _notify_context(app: web.Application) -> AsyncIterator[None]:
    """Subscriptions and their outbox (this node's data dir), and the notifier draining it."""
    settings = app[SETTINGS]
    store = NotifyStore(settings.data_dir / f"notify-{settings.node_id}.sqlite3")
    await store.open()
    app[SUBSCRIPTIONS] = store
    collections: dict[str, Collection] = app[COLLECTIONS]
    notifier = Notifier(
        store=store,
        view=app[VIEW],
        federation=settings.federation,
        collections=collections,
        settings=app[NOTIFY],
        metrics=app[METRICS],
        current=app[AUTH].current,
        page_bytes=settings.page_bytes,
    )
    try:
        async with supervised("notifier", notifier, settings.drain_seconds) as state:
            app[RUNNERS].append(state)
            yield
    finally:
        await store.close()


async def _intake_gate_context(app: web.Application) -> AsyncIterator[None]:
    gate = IntakeGate(app[BUS], app[SETTINGS], app[DISK], app[METRICS].disk_full_refusals)
    app[INTAKE_GATE] = gate
    async with supervised("intake-gate", gate, app[SETTINGS].drain_seconds) as state:
        app[RUNNERS].append(state)
        yield


async def _pipeline_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    federation = settings.federation
    signer = HubSigner(app[SIGNING_KEYS], settings.key_passphrase)
    await asyncio.to_thread(signer.refresh)  # the first start makes the key; scrypt runs here
    try:
        await publish_predefined(
            app[BUS], settings.bus_url, federation, settings.topics, settings.data_dir
        )
    except BusError as exc:
        log.warning("TLP and extension definitions not published (next start tries again): %s", exc)
    # Who received and who owns what: every decision, and the alerts the hub published.
    topics = settings.topics
    history = DeliveryHistory(app[BUS], topics.decisions, hub_feeds=(topics.feed(ALERTS),))
    federation_key = load_key(settings.pseudonym_key_path)  # pseudonyms, correlation keys
    route = Route(Policy(federation), federation_key, history)
    stages = (
        Authenticate(federation),
        Validate(federation),
        Provenance(federation),
        Ownership(federation, history),
        Mark(),
        route,
        ConfineResponses(federation),
        UnnamedSightings(federation),
        Observe(federation, federation_key),
        Sign(signer, federation),
    )
    pipeline = compose(*(app[METRICS].timed(stage) for stage in stages))
    webhooks = Webhooks(federation.correlation.get("webhooks", {}))
    drain = settings.drain_seconds
    worker = PipelineWorker(
        bus=app[BUS],
        topics=settings.topics,
        decode=Decode(federation, settings.topics, intake_keys=app[INTAKE_KEYS].read),
        pipeline=pipeline,
        group=f"{settings.topic_prefix}pipeline",
        transactional_id=f"{settings.topic_prefix}pipeline-{settings.node_id}",
        members=tuple(m.id for m in federation.members),
        history=history,
        metrics=app[METRICS],
    )
    async with (
        supervised("pipeline", worker, drain) as state,
        supervised("audit-chainer", audit_chainer(settings, app[BUS]), drain) as chainer,
        supervised("embargo-releaser", releaser(settings, app[BUS]), drain) as release,
        supervised(
            "keys-publisher",
            KeysPublisher(app[BUS], topics, app[SIGNING_KEYS], federation),
            drain,
        ) as publishing,
        supervised("webhooks", webhooks, drain) as notifying,
        supervised(
            "correlator", correlator(settings, app[BUS], signer, webhooks.notify), drain
        ) as correlating,
    ):
        app[RUNNERS].extend((state, chainer, release, publishing, notifying, correlating))
        yield


async def _retention_context(app: web.Application) -> AsyncIterator[None]:
    """Retention on what this node keeps: the embedded log (a pipeline node), its view."""
    settings, metrics = app[SETTINGS], app[METRICS]
    retention = settings.federation.hub.retention
    log_file = None
    if settings.runs_pipeline and settings.bus_url == "embedded":
        log_file = settings.data_dir / EMBEDDED_FILE
    views = [app[VIEW].path] if VIEW in app else []

    def prune() -> list[Pruned]:
        return prune_data_dir(
            settings.data_dir, retention, settings.topics, log_file=log_file, views=views
        )

    def report(pruned: Pruned) -> None:
        store = "log" if pruned.store == "log" else "view"
        for kind, count in pruned.deleted.items():
            metrics.retention_deleted.labels(store, kind).inc(count)
        metrics.retention_freed_bytes.labels(store).inc(pruned.freed_bytes)

    runner = RetentionRunner(retention, prune, report)
    async with supervised("retention", runner, settings.drain_seconds) as state:
        app[RUNNERS].append(state)
        yield


def create_app(settings: Settings, *, bus: Bus | None = None) -> web.Application:
    """One hub node: API and view, pipeline, or both, as `settings.role` says. `bus`, when
    given, is the caller's (started and stopped by it); else the node opens its own."""
    metrics = HubMetrics()
    collections = build_collections(settings.federation)
    app = http_app(settings, collections, metrics)
    notify = notify_settings(settings.federation.notify)
    # E-mails link to the console: where the operator said, else where clients reach the hub.
    app[NOTIFY] = replace(notify, console_url=notify.console_url or settings.public_url or "")
    app[SIGNING_KEYS] = KeyStore(settings.signing_keys_dir)
    app[INTAKE_KEYS] = IntakeKeyFile(settings.signing_keys_dir)
    app[RUNNERS] = []
    app[DISK] = DiskWatch(settings.data_dir, settings.min_free_bytes)
    app.cleanup_ctx.append(_bus_context(bus))
    app.cleanup_ctx.append(_intake_key_context)
    if settings.runs_api:
        app.cleanup_ctx.append(_view_context)
        app.cleanup_ctx.append(_intake_gate_context)
        app.cleanup_ctx.append(_notify_context)
    if settings.runs_pipeline:
        app.cleanup_ctx.append(_pipeline_context)
    if settings.federation.hub.retention.any:
        app.cleanup_ctx.append(_retention_context)
    add_routes(app)
    return app
