"""The pipeline worker: intake → stages → feeds, members side by side, one unit at a time each.

It consumes the hub's `intake` and every member's `intake.member-<id>` in one group. A
member's submissions are one partition's records; they wait in that partition's lane
(hub.pipeline.lanes), which hands out one unit at a time (a few records, or one large
one), so a member's submissions keep their order. Units of different lanes are processed
side by side on threads: the CPU is shared (the GIL), so one member's heavy submission
holds back another's small one by a small multiple of the small one's own time, and by
one commit at most, not by everything queued ahead of it.

Each unit's output (feed records, refusals, final status) commits with its own partition's
offsets as soon as it is done (units done meanwhile go in the same transaction), so a
crash at any point leaves each unit either fully done or fully redelivered. A unit whose
records were fetched before a rebalance never commits; the records come again.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from hub.bus import (
    Bus,
    BusError,
    GroupConsumer,
    Message,
    MessageTooLarge,
    Record,
    TopicPartition,
)
from hub.bus.interrupt import IDLE_FETCH_SECONDS
from hub.bus.membership import commit_unit, consume_until_stopped
from hub.logs import REQUEST_ID
from hub.model import Item, RefusalCode, Stage, Submission
from hub.pipeline.decode import UndecodableRecord
from hub.pipeline.emit import emit, fit
from hub.pipeline.history import DeliveryHistory
from hub.pipeline.lanes import Lanes
from hub.pipeline.receipts import position, receipt
from hub.pipeline.rejected import output_too_large, rejected_record
from hub.stix.timestamps import rfc3339_now
from hub.topics import Topics

if TYPE_CHECKING:
    from hub.metrics import HubMetrics

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """One intake record processed: what it makes, and its submission as routed (None when
    the record was refused whole)."""

    record: Record
    messages: list[Message]
    routed: Submission | None


@dataclass
class _Unit:
    records: list[Record]
    generation: int  # the consumer's rebalance count when its records were fetched
    outcomes: asyncio.Future[list[Outcome]]

    @property
    def tp(self) -> TopicPartition:
        return self.records[0].tp


async def _fetch(
    consumer: GroupConsumer, max_records: int, timeout: float
) -> tuple[list[Record], int]:
    """A fetch, with the rebalance count its records were fetched under."""
    records = await consumer.fetch(max_records=max_records, timeout=timeout)
    return records, consumer.generation


@dataclass
class PipelineWorker:
    bus: Bus
    topics: Topics
    decode: Callable[[Record], Submission]
    pipeline: Stage
    group: str
    transactional_id: str
    members: tuple[str, ...] = ()  # whose `intake.member-<id>` topics are consumed too
    batch_size: int = 64  # records one fetch takes at most
    # A unit: a lane's first records, this many at most and this many bytes (at least one).
    unit_records: int = 64
    unit_bytes: int = 1024 * 1024
    # Units processed at once, each on its own thread (one per lane at most).
    concurrency: int = 8
    history: DeliveryHistory | None = None  # what the route stage reads; kept current here
    metrics: HubMetrics | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def process(self, records: Sequence[Record]) -> list[Outcome]:
        """What each record produces, and its submission as routed; CPU-bound, run off the
        event loop (several units at once: the stages keep no state of their own)."""
        date_added = rfc3339_now()
        return [self._process_one(record, date_added) for record in records]

    def _refused(
        self, record: Record, reason: RefusalCode, message: str, *, is_json: bool
    ) -> Message:
        return rejected_record(
            self.topics,
            record,
            reason,
            message,
            is_json=is_json,
            record_limit=self.bus.max_record_bytes,
        )

    def _process_one(self, record: Record, date_added: str) -> Outcome:
        try:
            submission = self.decode(record)
        except UndecodableRecord as exc:
            entry = self._refused(record, exc.reason, str(exc), is_json=exc.is_json)
            told = receipt(self.topics, position(record), reason=exc.reason, message=str(exc))
            return Outcome(record, [entry, *([told] if told else [])], None)
        token = REQUEST_ID.set(submission.request_id)
        try:
            routed = fit(
                self.pipeline(submission), self.topics, self.bus.max_record_bytes, date_added
            )
            messages = emit(routed, self.topics, date_added, position(record))
            accepted = sum(1 for i in routed.items if i.accepted)
            log.info(
                "submission routed",
                extra={
                    "member": routed.member,
                    "status_id": routed.status_id,
                    "accepted": accepted,
                    "refused": len(routed.items) - accepted,
                },
            )
            if self.history is not None:
                self.history.record(routed)
            return Outcome(record, messages, routed)
        except Exception:
            # A bug must not eat an accepted submission: refuse it visibly and keep the
            # raw record on `rejected` for replay, under an id that is also in the log.
            error_id = uuid.uuid4().hex
            log.exception("pipeline failed on intake record (error_id=%s)", error_id)
            reason = f"internal error while processing (error_id {error_id})"
            refused = submission.map_accepted(
                partial(Item.refuse, reason=RefusalCode.INTERNAL_ERROR, message=reason)
            )
            entry = self._refused(record, RefusalCode.INTERNAL_ERROR, reason, is_json=True)
            emitted = emit(refused, self.topics, date_added, position(record))
            return Outcome(record, [entry, *emitted], refused)
        finally:
            REQUEST_ID.reset(token)

    async def run(self) -> None:
        """Consume the intake topics until stop() is called; commit each unit as it is done."""
        executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="pipeline")
        try:
            await consume_until_stopped(
                self.bus,
                self.group,
                self.topics.intakes(self.members),
                self.transactional_id,
                self._stopping,
                partial(self._consume, executor=executor),
            )
        finally:
            # A unit still on a thread (a stop cut short) is done again by the next owner.
            executor.shutdown(wait=False, cancel_futures=True)
            if self.history is not None:
                with suppress(BusError):
                    await self.history.stop()

    async def _consume(self, consumer: GroupConsumer, *, executor: ThreadPoolExecutor) -> None:
        lanes = Lanes(self.unit_records, self.unit_bytes)
        running: dict[asyncio.Future[list[Outcome]], _Unit] = {}
        seen = consumer.generation
        stopped = asyncio.ensure_future(self._stopping.wait())
        try:
            while not (self._stopping.is_set() and not running):
                if not self._stopping.is_set():
                    await self._start(lanes, running, seen, executor)
                    consumer.pause(lanes.full())
                    fetched = await self._fetch_while(consumer, {stopped, *running})
                    if fetched is not None:
                        records, generation = fetched
                        if generation != seen:
                            lanes.reset()  # what was fetched before comes again
                            seen = generation
                        lanes.add(records)
                else:
                    # Stopping: no more fetches; the units in hand finish and commit.
                    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                done = [running.pop(f) for f in list(running) if f.done()]
                if done:
                    await self._commit(consumer, done, lanes)
        finally:
            stopped.cancel()
            if running and not self._stopping.is_set():
                # The consumer failed: let the units on threads end before a fresh one
                # fetches their records again, so no record is processed twice at once.
                await asyncio.wait(running)
                self._over(list(running.values()))

    async def _start(
        self,
        lanes: Lanes,
        running: dict[asyncio.Future[list[Outcome]], _Unit],
        generation: int,
        executor: ThreadPoolExecutor,
    ) -> None:
        units = lanes.take(self.concurrency - len(running))
        if not units:
            return
        if self.history is not None:
            # Every decision committed before the unit starts is seen, as before a batch.
            await self.history.catch_up()
        loop = asyncio.get_running_loop()
        for records in units:
            work = partial(contextvars.copy_context().run, self.process, records)
            future = loop.run_in_executor(executor, work)
            running[future] = _Unit(records, generation, future)

    async def _fetch_while(
        self, consumer: GroupConsumer, others: set[asyncio.Future[Any]]
    ) -> tuple[list[Record], int] | None:
        """A fetch, cut short when one of `others` ends first (a stop, a unit done); None when
        it was cut short. A fetch cut short consumed nothing, and the bus is never used by
        two calls at once (a commit waits for the fetch to end)."""
        if any(f.done() for f in others):
            # A unit ended meanwhile: take what is there without waiting, so that units
            # ending one after another cannot keep every fetch from getting anywhere.
            return await _fetch(consumer, self.batch_size, 0)
        fetching = asyncio.ensure_future(_fetch(consumer, self.batch_size, IDLE_FETCH_SECONDS))
        try:
            await asyncio.wait({fetching, *others}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not fetching.done():
                fetching.cancel()
            await asyncio.wait({fetching})
        # A fetch that ended just as it was cut short still counts: its records were taken.
        return None if fetching.cancelled() else fetching.result()

    async def _commit(self, consumer: GroupConsumer, units: list[_Unit], lanes: Lanes) -> None:
        """Commit the units done: their output and their offsets, in one transaction."""
        try:
            await self._commit_fresh(consumer, units, lanes)
        finally:
            self._over(units)

    def _over(self, units: Sequence[_Unit]) -> None:
        """The history forgets as pending what these units routed (committed or not)."""
        if self.history is None:
            return
        for unit in units:
            future = unit.outcomes
            if future.done() and not future.cancelled() and future.exception() is None:
                routed = (o.routed for o in future.result() if o.routed is not None)
                self.history.settled(routed)

    async def _commit_fresh(
        self, consumer: GroupConsumer, units: list[_Unit], lanes: Lanes
    ) -> None:
        fresh: list[_Unit] = []
        for unit in units:
            if unit.generation == consumer.generation:
                fresh.append(unit)
                continue
            lanes.done(unit.tp)  # fetched before a rebalance: its records come again
            if (failed := unit.outcomes.exception()) is not None:
                log.error("a unit fetched before a rebalance failed", exc_info=failed)
        if not fresh:
            return
        outcomes = [o for unit in fresh for o in unit.outcomes.result()]
        try:
            committed = await self._transact(consumer, outcomes, fresh[0].generation)
        except MessageTooLarge:
            for unit in fresh:
                await self._isolate(consumer, unit, lanes)
            return
        for unit in fresh:
            lanes.done(unit.tp, rewound=not committed)
        if committed:
            self._count(outcomes)

    async def _transact(
        self, consumer: GroupConsumer, outcomes: Sequence[Outcome], generation: int
    ) -> bool:
        """One transaction: the outcomes' messages and their records' offsets. False when it
        did not commit (a rebalance, a fence): the consumer is back at the committed offsets."""
        records = [o.record for o in outcomes]
        messages = [m for o in outcomes for m in o.messages]
        return await commit_unit(consumer, records, messages, "pipeline unit", generation)

    async def _isolate(self, consumer: GroupConsumer, unit: _Unit, lanes: Lanes) -> None:
        """A unit over the bus's record limit somewhere: each record commits alone, and one
        whose output is too large is refused whole, so the others go through."""
        for outcome in unit.outcomes.result():
            try:
                if not await self._transact(consumer, [outcome], unit.generation):
                    lanes.done(unit.tp, rewound=True)
                    return
                self._count([outcome])
                continue
            except MessageTooLarge:
                log.warning(
                    "intake record %s/%d/%d makes a record over the bus limit; refused whole",
                    outcome.record.topic,
                    outcome.record.partition,
                    outcome.record.offset,
                )
            refusals = output_too_large(
                self.topics, outcome.record, outcome.routed, self.bus.max_record_bytes
            )
            for messages in refusals:
                refused = Outcome(outcome.record, messages, None)
                try:
                    if not await self._transact(consumer, [refused], unit.generation):
                        lanes.done(unit.tp, rewound=True)
                        return
                    break
                except MessageTooLarge:
                    continue  # still too large: the next, smaller way to refuse it
            else:
                # Not even the entry (64 KiB of the record at most) fit: the record is passed
                # over with the next one's offsets, as the log says.
                log.error(
                    "intake record %s/%d/%d could not be refused",
                    *outcome.record.tp,
                    outcome.record.offset,
                )
        lanes.done(unit.tp)

    def _count(self, outcomes: Sequence[Outcome]) -> None:
        if self.metrics is not None:
            self.metrics.count_routed(o.routed for o in outcomes if o.routed is not None)

    def stop(self) -> None:
        """Finish the units in hand, commit them, then return from run()."""
        self._stopping.set()
