"""The pipeline worker: intake → stages → feeds, one atomic unit per batch.

It consumes the hub's `intake` and every member's `intake.member-<id>` in one group. Each
batch of intake records is processed and its output (feed records, refusals, final
status) committed together with the intake offsets, so a crash at any point leaves the
batch either fully done or fully redelivered.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import orjson

from hub.bus import Bus, BusError, GroupConsumer, Message, Record
from hub.bus.interrupt import fetch_until
from hub.bus.membership import commit_unit, consume_until_stopped
from hub.logs import REQUEST_ID
from hub.pipeline.decode import UndecodableRecord
from hub.pipeline.emit import emit, rfc3339_now
from hub.pipeline.history import DeliveryHistory
from hub.pipeline.submission import Item, Stage, Submission
from hub.topics import Topics

if TYPE_CHECKING:
    from hub.metrics import HubMetrics

log = logging.getLogger(__name__)


def _rejected_record(
    topics: Topics, record: Record, reason: str, message: str, *, is_json: bool
) -> Message:
    """A whole intake record refused; its raw value travels along so it can be replayed."""
    entry: dict[str, object] = {
        "reason": reason,
        "message": message,
        "intake": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
    }
    # A member's topic names who wrote there (its ACL), so `rejected list --member` finds it.
    if (member := topics.intake_member(record.topic)) is not None:
        entry["member"] = member
    head = orjson.dumps(entry)[:-1]
    # JSON is spliced in as is (no escaping, no growth); anything else goes as base64.
    raw = (
        b',"record":' + record.value
        if is_json
        else b',"record_base64":"' + base64.b64encode(record.value) + b'"'
    )
    return Message(topics.rejected, head + raw + b"}", key=record.key)


@dataclass
class PipelineWorker:
    bus: Bus
    topics: Topics
    decode: Callable[[Record], Submission]
    pipeline: Stage
    group: str
    transactional_id: str
    members: tuple[str, ...] = ()  # whose `intake.member-<id>` topics are consumed too
    batch_size: int = 64
    history: DeliveryHistory | None = None  # what the route stage reads; kept current here
    metrics: HubMetrics | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def process(self, records: list[Record]) -> tuple[list[Message], list[Submission]]:
        """Everything the batch produces, and the submissions as routed; CPU-bound, run off
        the event loop."""
        messages: list[Message] = []
        done: list[Submission] = []
        date_added = rfc3339_now()
        for record in records:
            try:
                submission = self.decode(record)
            except UndecodableRecord as exc:
                messages.append(
                    _rejected_record(self.topics, record, exc.reason, str(exc), is_json=exc.is_json)
                )
                continue
            token = REQUEST_ID.set(submission.request_id)
            try:
                routed = self.pipeline(submission)
                messages.extend(emit(routed, self.topics, date_added))
                done.append(routed)
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
            except Exception:
                # A bug must not eat an accepted submission: refuse it visibly and keep the
                # raw record on `rejected` for replay, under an id that is also in the log.
                error_id = uuid.uuid4().hex
                log.exception("pipeline failed on intake record (error_id=%s)", error_id)
                reason = f"internal error while processing (error_id {error_id})"
                refused = submission.map_accepted(
                    partial(Item.refuse, reason="internal-error", message=reason)
                )
                messages.append(
                    _rejected_record(self.topics, record, "internal-error", reason, is_json=True)
                )
                messages.extend(emit(refused, self.topics, date_added))
                done.append(refused)
            finally:
                REQUEST_ID.reset(token)
        return messages, done

    async def run(self) -> None:
        """Consume the intake topics until stop() is called; commit each batch as one unit."""
        try:
            await consume_until_stopped(
                self.bus,
                self.group,
                self.topics.intakes(self.members),
                self.transactional_id,
                self._stopping,
                self._consume,
            )
        finally:
            if self.history is not None:
                with suppress(BusError):
                    await self.history.stop()

    async def _consume(self, consumer: GroupConsumer) -> None:
        while not self._stopping.is_set():
            batch = await fetch_until(
                self._stopping, consumer.fetch(max_records=self.batch_size, timeout=0.5)
            )
            if not batch:
                continue
            if self.history is not None:
                await self.history.catch_up()
            messages, done = await asyncio.to_thread(self.process, batch)
            if not await commit_unit(consumer, batch, messages, "pipeline batch"):
                continue  # a rebalance took the partitions; their new owner redoes the batch
            if self.metrics is not None:
                self.metrics.count_routed(done)

    def stop(self) -> None:
        """Finish the batch in hand, commit it, then return from run()."""
        self._stopping.set()
