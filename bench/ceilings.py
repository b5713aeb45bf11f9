"""Ceilings: how fast the bare parts of the hub's work run on one core, over the same objects
the hub is given, so each end-to-end figure can be read against what its parts allow.

`measure(objects)` times, each for about `seconds` (looping over the objects as often as fits):
bare Ed25519 sign and verify of RFC 8785 canonical bytes made beforehand; rfc8785 + sign; the
hub's own signing path; orjson parsing per object and per bundle; the hub's validate stage;
its ownership stage, against a delivery history holding every id; and, given a broker,
aiokafka's raw produce and consume rates. One thread: call it while nothing else runs in
the process. Progress goes to stderr.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiokafka
import orjson
import rfc8785
from aiokafka.abc import ConsumerRebalanceListener

from bench.signing import signing_kit
from bench.taxii import progress
from hub.bus import Record, TopicSpec
from hub.bus.kafka import KafkaBus, KafkaSettings
from hub.bus.url import open_bus, parse_kafka_url
from hub.demo import demo_federation
from hub.federation import Federation
from hub.model import Submission
from hub.pipeline.decode import Decode
from hub.pipeline.history import DeliveryHistory
from hub.pipeline.ownership import Ownership
from hub.pipeline.validate import Validate
from hub.records import DecisionRecord, encode_intake
from hub.signing.intake import IntakeKeys, new_intake_key
from hub.topics import Topics

T = TypeVar("T")

MEMBER = "ke-cirt"  # the demo member whose submissions validate sees
BUNDLE_SIZE = 1000  # objects per bundle and per submission: the TAXII benches' POST chunk
CLOCK_EVERY = 0.01  # seconds of work between clock reads in a time-boxed loop
WARMUP = 16  # items run untimed first (caches, the stix2 parser's first use), at most
KAFKA_BATCH = 1000  # records sent before each flush


@dataclass(frozen=True)
class Rate:
    """One ceiling: `count` units done in `seconds`. `batch` is how many objects each call
    handled (1, or a bundle's or a submission's size)."""

    ops_per_s: float
    count: int
    seconds: float
    unit: str = "object"
    batch: int = 1
    mb_per_s: float | None = None
    note: str = ""


def time_boxed(
    items: Sequence[T],
    work: Callable[[T], object],
    seconds: float,
    *,
    counts: Sequence[int] | None = None,
    sizes: Sequence[int] | None = None,
    unit: str = "object",
    batch: int = 1,
    note: Callable[[], str] | None = None,
) -> Rate:
    """`work` over `items`, round and round, for about `seconds`. Each item counts as
    `counts[i]` units (default 1) and `sizes[i]` bytes (for MB/s)."""
    if not items:
        raise ValueError("no items to measure")
    # Warm up on a few items, but not for long: a submission of 1000 takes most of a second.
    started = time.perf_counter()
    warmed = 0
    while warmed < min(WARMUP, len(items)) and (
        warmed == 0 or time.perf_counter() - started < seconds / 10
    ):
        work(items[warmed])
        warmed += 1
    per_item = (time.perf_counter() - started) / warmed
    # Reading the clock after every item would weigh on the cheap ones (orjson: ~2 µs);
    # after a whole pass would overrun the box on the dear ones (a 1000-object submission).
    step = max(1, min(len(items), int(CLOCK_EVERY / max(per_item, 1e-9))))
    done = nbytes = 0
    at = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        end = min(at + step, len(items))
        for k in range(at, end):
            work(items[k])
        done += sum(counts[at:end]) if counts is not None else end - at
        nbytes += sum(sizes[at:end]) if sizes is not None else 0
        at = 0 if end == len(items) else end
        if time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - started
    mb = nbytes / elapsed / 1e6 if sizes is not None else None
    return Rate(done / elapsed, done, elapsed, unit, batch, mb, note() if note else "")


def chunks(objects: Sequence[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [list(objects[i : i + size]) for i in range(0, len(objects), size)]


def submissions(
    federation: Federation, objects: Sequence[dict[str, Any]], size: int, member: str
) -> list[Submission]:
    """`objects` as the pipeline gets them from `member`'s TAXII POSTs of `size` objects: the
    API's intake record, read back by the decode stage."""
    topics = Topics()
    keys = IntakeKeys((new_intake_key(),), topics.intake, {})
    decode = Decode(federation, topics, intake_keys=lambda: keys)
    received = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    out = []
    for offset, chunk in enumerate(chunks(objects, size)):
        status_id = str(uuid.uuid4())
        value = encode_intake(
            status_id=status_id,
            member=member,
            account=f"{member}-submit",
            received=received,
            request_id=status_id,
            objects=chunk,
        )
        # Stamped as the bus would: at once after `received`.
        stamp = int(time.time() * 1000)
        headers = (keys.header(value),)
        out.append(decode(Record(topics.intake, 0, offset, None, value, headers, stamp)))
    return out


def validate_rate(objects: Sequence[dict[str, Any]], seconds: float, size: int) -> Rate:
    """The validate stage alone, called as the pipeline calls it: one submission at a time."""
    with tempfile.TemporaryDirectory() as tmp:
        federation, _ = demo_federation(Path(tmp))
    validate = Validate(federation)
    subs = submissions(federation, objects, size, MEMBER)
    seen = refused = 0

    def run(submission: Submission) -> None:
        nonlocal seen, refused
        out = validate(submission)
        seen += len(out.items)
        refused += sum(not item.accepted for item in out.items)

    def note() -> str:
        return f"{refused / seen:.1%} of objects refused" if seen else ""

    counts = [len(s.items) for s in subs]
    return time_boxed(subs, run, seconds, counts=counts, batch=max(counts), note=note)


def ownership_rate(objects: Sequence[dict[str, Any]], seconds: float, size: int) -> Rate:
    """The ownership stage alone, as the pipeline calls it, against a delivery history that
    already holds every one of these ids (each owned by its sender: the lookup always hits,
    and every object passes, as the owner's new versions and retries do)."""
    with tempfile.TemporaryDirectory() as tmp:
        federation, _ = demo_federation(Path(tmp))
        # Read from memory only: the bus is never started (its constructor does no I/O).
        history = DeliveryHistory(open_bus("embedded", Path(tmp)), Topics().decisions)
    for obj in objects:
        history.record_decision(DecisionRecord({"object_id": obj["id"], "sender": MEMBER}))
    ownership = Ownership(federation, history)
    subs = submissions(federation, objects, size, MEMBER)
    seen = refused = 0

    def run(submission: Submission) -> None:
        nonlocal seen, refused
        out = ownership(submission)
        seen += len(out.items)
        refused += sum(not item.accepted for item in out.items)

    def note() -> str:
        held = len({o["id"] for o in objects})
        return f"{held:,} ids held, {refused / seen:.1%} of objects refused" if seen else ""

    counts = [len(s.items) for s in subs]
    return time_boxed(subs, run, seconds, counts=counts, batch=max(counts), note=note)


class _Assigned(ConsumerRebalanceListener):
    """Sets `event` once the group has given this consumer its partitions."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if assigned:
            self.event.set()


async def kafka_rates(
    bootstrap: str, records: Sequence[tuple[bytes, bytes]], seconds: float
) -> tuple[Rate, Rate]:
    """aiokafka's raw produce rate into a fresh topic for about `seconds` (configured as the
    hub's producers are, but not transactional: the ceiling under them), then the consume
    rate of a fresh consumer group reading it all, as often as fits; (produce, consume)."""
    url = bootstrap if "://" in bootstrap else f"kafka://{bootstrap}"
    bus = KafkaBus(parse_kafka_url(url))
    topic = f"cirt-hub-bench.ceilings-{uuid.uuid4().hex[:12]}"
    await bus.start()
    try:
        # Made as the hub makes its topics (its record size limit; one partition, its default).
        await bus.ensure_topics([TopicSpec(topic, 1, retain_forever=False)])
    finally:
        await bus.stop()
    produced = await _produce(bus, topic, records, seconds)
    consumed = await _consume(bus, topic, produced.count, seconds)
    return produced, consumed


async def _produce(
    bus: KafkaBus, topic: str, records: Sequence[tuple[bytes, bytes]], seconds: float
) -> Rate:
    settings: KafkaSettings = bus.settings
    producer = aiokafka.AIOKafkaProducer(
        enable_idempotence=True,
        acks="all",
        max_request_size=settings.max_message_bytes,
        **bus.client_options(),
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"warm-up")  # metadata, connection
        done = nbytes = 0
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            for start in range(0, len(records), KAFKA_BATCH):
                batch = records[start : start + KAFKA_BATCH]
                # send() only queues the record (it waits only when the buffer is full); the
                # batches go out while more are queued, and flush() waits for every ack.
                for key, value in batch:
                    await producer.send(topic, value, key=key)
                await producer.flush()
                done += len(batch)
                nbytes += sum(len(k) + len(v) for k, v in batch)
                if time.perf_counter() >= deadline:
                    break
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    note = "acks=all, idempotent, not transactional, one partition"
    return Rate(done / elapsed, done, elapsed, "record", 1, nbytes / elapsed / 1e6, note)


async def _consume(bus: KafkaBus, topic: str, expected: int, seconds: float) -> Rate:
    consumer = aiokafka.AIOKafkaConsumer(
        group_id=f"cirt-hub-bench.ceilings-{uuid.uuid4().hex[:12]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=bus.settings.max_message_bytes,
        **bus.client_options(),
    )
    assigned = _Assigned()
    await consumer.start()
    try:
        consumer.subscribe([topic], listener=assigned)
        # Joining the group (seconds on a fresh broker) is not reading: the polls that drive
        # the join are not timed, and whatever they brought is read again from the start.
        join = asyncio.ensure_future(assigned.event.wait())
        while not join.done():
            await consumer.getmany(timeout_ms=100)
        done = nbytes = passes = 0
        total = expected + 1  # the warm-up record too
        started = time.perf_counter()
        # Reading what `seconds` of producing made takes a fraction of that: read it again
        # from the start until the box is full, so the figure is not a few ms of noise.
        while passes == 0 or time.perf_counter() - started < seconds:
            await consumer.seek_to_beginning()
            got = 0
            while got < total:
                batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
                got += sum(len(rs) for rs in batches.values())
                nbytes += sum(
                    len(r.key or b"") + len(r.value) for rs in batches.values() for r in rs
                )
                if not batches and time.perf_counter() - started > 60 + seconds:
                    raise RuntimeError(f"consumed {got} of {total} records, then nothing")
            done += got
            passes += 1
        elapsed = time.perf_counter() - started
    finally:
        await consumer.stop()
    note = f"fresh group, read_committed, {passes} passes over the topic"
    return Rate(done / elapsed, done, elapsed, "record", 1, nbytes / elapsed / 1e6, note)


def _run(coro: Any) -> Any:
    """asyncio.run, also from a thread whose event loop is running (the orchestrator's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def measure(
    objects: list[dict[str, Any]],
    *,
    seconds: float = 3.0,
    kafka_bootstrap: str | None = None,
    bundle_size: int = BUNDLE_SIZE,
) -> dict[str, dict[str, Any]]:
    """Each ceiling over `objects` as {name: Rate as a dict}; `kafka_produce` and
    `kafka_consume` only when a broker (HOST:PORT or a kafka:// bus URL) is given."""
    if not objects:
        raise ValueError("no objects to measure")
    progress(f"ceilings: {len(objects):,} objects, about {seconds:g} s per figure, one thread")
    serialized = [orjson.dumps(o) for o in objects]
    payloads = [rfc8785.dumps(o) for o in objects]
    bundles = [
        orjson.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": chunk})
        for chunk in chunks(objects, bundle_size)
    ]
    rates: dict[str, Rate] = {}

    def run(name: str, what: str, measuring: Callable[[], Rate]) -> None:
        progress(f"ceilings: {name}: {what} ...")
        rates[name] = rate = measuring()
        progress(f"ceilings: {name}: {rate.ops_per_s:,.0f} {rate.unit}s/s ({rate.count:,})")

    with signing_kit() as kit:
        key = kit.key
        public = key.public_key()
        signed = [(key.sign(p), p) for p in payloads]
        run(
            "sign",
            "Ed25519 sign of canonical bytes",
            lambda: time_boxed(payloads, key.sign, seconds),
        )
        run(
            "verify",
            "Ed25519 verify",
            lambda: time_boxed(signed, lambda sp: public.verify(*sp), seconds),
        )
        run(
            "canonicalize_sign",
            "rfc8785 + Ed25519 sign",
            lambda: time_boxed(objects, lambda o: key.sign(rfc8785.dumps(o)), seconds),
        )
        run("hub_sign", "HubSigner.sign", lambda: time_boxed(objects, kit.sign, seconds))
    run(
        "json_parse",
        "orjson.loads per object",
        lambda: time_boxed(serialized, orjson.loads, seconds, sizes=[len(s) for s in serialized]),
    )
    run(
        "json_parse_bundle",
        f"orjson.loads of bundles of {bundle_size}",
        lambda: time_boxed(
            bundles,
            orjson.loads,
            seconds,
            counts=[len(c) for c in chunks(objects, bundle_size)],
            sizes=[len(b) for b in bundles],
            batch=min(bundle_size, len(objects)),
        ),
    )
    run(
        "validate",
        f"validate stage, submissions of {bundle_size}",
        lambda: validate_rate(objects, seconds, bundle_size),
    )
    run(
        "ownership",
        f"ownership stage, submissions of {bundle_size}",
        lambda: ownership_rate(objects, seconds, bundle_size),
    )
    if kafka_bootstrap:
        progress(f"ceilings: kafka: raw aiokafka produce then consume on {kafka_bootstrap} ...")
        records = [(o["id"].encode(), s) for o, s in zip(objects, serialized, strict=True)]
        produced, consumed = _run(kafka_rates(kafka_bootstrap, records, seconds))
        rates["kafka_produce"], rates["kafka_consume"] = produced, consumed
        for name in ("kafka_produce", "kafka_consume"):
            rate = rates[name]
            progress(f"ceilings: {name}: {rate.ops_per_s:,.0f} records/s, {rate.mb_per_s:.1f} MB/s")
    return {name: asdict(rate) for name, rate in rates.items()}
