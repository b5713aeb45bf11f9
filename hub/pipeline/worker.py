"""The pipeline worker: intake → stages → feeds, one atomic unit per batch.

Each batch of intake records is processed and its output (feed records, refusals, final
status) committed together with the intake offsets, so a crash at any point leaves the
batch either fully done or fully redelivered.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field

import orjson

from hub.bus import Bus, BusError, Message, Record
from hub.pipeline.decode import UndecodableRecord, decode
from hub.pipeline.emit import emit, rfc3339_now
from hub.pipeline.submission import Stage, Submission
from hub.topics import Topics

log = logging.getLogger(__name__)


def _rejected_record(topics: Topics, record: Record, reason: str, message: str) -> Message:
    # The raw intake value travels along, so the record can be replayed after a fix.
    return Message(
        topics.rejected,
        orjson.dumps(
            {
                "reason": reason,
                "message": message,
                "intake": {"partition": record.partition, "offset": record.offset},
                "value": record.value.decode("utf-8", "replace"),
            }
        ),
        key=record.key,
    )


@dataclass
class PipelineWorker:
    bus: Bus
    topics: Topics
    pipeline: Stage
    group: str
    transactional_id: str
    batch_size: int = 64
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def process(self, records: list[Record]) -> list[Message]:
        """Everything the batch produces; CPU-bound, run off the event loop."""
        messages: list[Message] = []
        date_added = rfc3339_now()
        for record in records:
            try:
                submission = decode(record)
            except UndecodableRecord as exc:
                messages.append(_rejected_record(self.topics, record, "undecodable", str(exc)))
                continue
            try:
                done: Submission = self.pipeline(submission)
            except Exception:
                # A bug must not eat an accepted submission: refuse it visibly and keep the
                # raw record on `rejected` for replay, under an id that is also in the log.
                error_id = uuid.uuid4().hex
                log.exception("pipeline failed on intake record (error_id=%s)", error_id)
                reason = f"internal error while processing (error_id {error_id})"
                done = submission.map_accepted(lambda i, r=reason: i.refuse("internal-error", r))
                messages.append(_rejected_record(self.topics, record, "internal-error", reason))
            messages.extend(emit(done, self.topics, date_added))
        return messages

    async def run(self) -> None:
        """Consume intake until stop() is called; commit each batch as one unit."""
        consumer = self.bus.group_consumer(
            self.group, [self.topics.intake], transactional_id=self.transactional_id
        )
        await consumer.start()
        try:
            while not self._stopping.is_set():
                try:
                    batch = await consumer.fetch(max_records=self.batch_size, timeout=0.5)
                    if not batch:
                        continue
                    messages = await asyncio.to_thread(self.process, batch)
                    async with consumer.transaction(batch) as txn:
                        for message in messages:
                            await txn.send(message)
                except BusError as exc:
                    # The batch was not committed: it comes again once the bus is back.
                    log.warning("pipeline batch not committed, will retry: %s", exc)
                    await asyncio.sleep(0.5 if exc.retriable else 5.0)
        finally:
            await consumer.stop()

    def stop(self) -> None:
        """Finish the batch in hand, commit it, then return from run()."""
        self._stopping.set()
