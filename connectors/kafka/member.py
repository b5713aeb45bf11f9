"""A member CIRT on Kafka: sign and produce STIX bundles, consume and verify its feed.

    python -m connectors.kafka.member keygen --out ng-cert.pem
    python -m connectors.kafka.member produce report.json --bootstrap HOST:9092 \\
        --member ng-cert --key ng-cert.pem
    python -m connectors.kafka.member consume --bootstrap HOST:9092 --member ng-cert

A record on `<prefix>intake.member-<id>` is a STIX bundle, TAXII envelope or one object,
keyed by the member id, with a detached JWS (EdDSA) over the record value in the
`cirt-hub-signature` header, made with a key listed under the member's `public_keys` in
the federation file; or (`--jws`) that content as the payload of a compact JWS that is the
value. `--wait` reads each record's receipt from `<prefix>receipts.member-<id>`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import aiokafka
import orjson
from aiokafka.errors import KafkaError

from connectors.client.hubkeys import HubKeys
from connectors.client.keys import KEY_PASSPHRASE_ENV, MemberKey, MemberKeyError, is_signed
from connectors.kafka.connection import KafkaConnection, add_arguments, from_arguments
from connectors.kafka.keys import ROTATION_LAG, KeysTopic, KeysTopicError
from connectors.kafka.receipts import Receipts, ReceiptsError
from hub.bus.kafka_stop import stop_consumer
from hub.records import (
    SUBMITTER,
    MemberIntakeRecord,
    MemberJwsRecord,
    ReceiptRecord,
    intake_position_key,
    member_status_id,
)
from hub.signing.jws import b64url
from hub.signing.sources import SourceError
from hub.signing.verify import Verdict
from hub.topics import Topics

# The hub's topics take records up to 32 MiB (hub.bus.kafka); its own limit on a submission
# (hub.limits.max_content_length, 10 MiB by default) is checked when the record is read.
MAX_RECORD_BYTES = 32 * 1024 * 1024


class Lifecycle(ABC):
    """start() and stop(), also as an async context manager."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


@dataclass(frozen=True)
class Produced:
    """Where a bundle landed, and the TAXII status the hub makes for it."""

    topic: str
    partition: int
    offset: int
    status_id: str

    @property
    def where(self) -> str:
        """`<topic>/<partition>/<offset>`: the key of the record's receipt."""
        return intake_position_key(self.topic, self.partition, self.offset)


class IntakeProducer(Lifecycle):
    """Signs STIX bundles with the member's key and produces them to its intake topic: the
    signature in a header, the value as it is; or (`jws`) the value a compact JWS."""

    def __init__(
        self,
        connection: KafkaConnection,
        member: str,
        key: MemberKey,
        *,
        topic_prefix: str = "cirt-hub.",
        account: str | None = None,
        jws: bool = False,
    ) -> None:
        self._topics = Topics(topic_prefix)
        self.topic = self._topics.member_intake(member)
        self._member, self._key, self._account = member, key, account
        self._jws = jws
        self._connection = connection
        self._producer: aiokafka.AIOKafkaProducer | None = None

    async def start(self) -> None:
        if self._producer is not None:
            return
        producer = aiokafka.AIOKafkaProducer(
            # Idempotent with acks=all: a send that returned is replicated, and the producer's
            # own retries never write a bundle twice.
            enable_idempotence=True,
            acks="all",
            # STIX JSON shrinks several times over: less to push through a slow link.
            compression_type="gzip",
            max_request_size=MAX_RECORD_BYTES,
            **self._connection.options(),
        )
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def send(
        self, bundle: Mapping[str, Any] | bytes, *, sign_objects: bool = False
    ) -> Produced:
        """Produce one bundle (a dict, or a file's bytes sent exactly as they are) and wait
        until the cluster has it. `sign_objects` also signs each object for its readers."""
        if self._producer is None:
            raise RuntimeError("IntakeProducer.send() before start()")
        if sign_objects:
            bundle = self._signed_objects(bundle)
        value = bundle if isinstance(bundle, bytes) else orjson.dumps(bundle)
        header, _, signature = self._key.sign_bytes(value).split(".")
        if self._jws:
            compact = f"{header}.{b64url(value)}.{signature}".encode("ascii")
            record = MemberJwsRecord(self._member, compact, account=self._account).to_message(
                self._topics
            )
        else:
            record = MemberIntakeRecord(
                self._member,
                value,
                signature=f"{header}..{signature}".encode("ascii"),
                account=self._account,
            ).to_message(self._topics)
        meta = await self._producer.send_and_wait(
            record.topic, record.value, key=record.key, headers=list(record.headers)
        )
        status_id = member_status_id(meta.topic, meta.partition, meta.offset)
        return Produced(meta.topic, meta.partition, meta.offset, status_id)

    def _signed_objects(self, bundle: Mapping[str, Any] | bytes) -> dict[str, Any]:
        """The bundle with each object signed (README "Member signatures"), so that readers
        can check the member's own signature too; objects already signed stay as they are."""
        doc = orjson.loads(bundle) if isinstance(bundle, bytes) else dict(bundle)
        if not isinstance(doc, dict) or not isinstance(doc.get("objects"), list):
            raise ValueError("to sign its objects, a bundle needs an `objects` list")
        doc["objects"] = [o if is_signed(o) else self._key.sign(o) for o in doc["objects"]]
        return doc


@dataclass(frozen=True)
class FeedObject:
    """One object from a feed topic, with the verdict on its hub signature."""

    obj: dict[str, Any]
    verdict: Verdict
    submitter: str | None
    partition: int
    offset: int


class FeedConsumer(Lifecycle):
    """Reads `<prefix>feed.member-<id>` (or another collection the member may read) in the
    member's own consumer group, committed reads only, verifying every hub signature."""

    def __init__(
        self,
        connection: KafkaConnection,
        member: str,
        keys: HubKeys,
        *,
        topic_prefix: str = "cirt-hub.",
        collection: str | None = None,
        group: str | None = None,
    ) -> None:
        self.topic = Topics(topic_prefix).feed(collection or f"member-{member}")
        # The ACLs give a member's principal the groups named after it (README, Kafka ACLs).
        self.group = group or f"{member}-feed"
        self._connection, self._keys = connection, keys
        self._consumer: aiokafka.AIOKafkaConsumer | None = None

    async def start(self) -> None:
        if self._consumer is not None:
            return
        consumer = aiokafka.AIOKafkaConsumer(
            self.topic,
            group_id=self.group,
            # The hub writes feeds in transactions: an aborted one must never be seen.
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            # Offsets move only after the caller has taken every object of a batch.
            enable_auto_commit=False,
            max_partition_fetch_bytes=MAX_RECORD_BYTES,
            **self._connection.options(),
        )
        await consumer.start()
        self._consumer = consumer

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await stop_consumer(consumer)

    async def objects(self, idle: float | None = None) -> AsyncIterator[FeedObject]:
        """Every object from the committed position on, verified; ends after `idle` seconds
        without a record (None: never). A batch left unfinished is read again next time."""
        if self._consumer is None:
            raise RuntimeError("FeedConsumer.objects() before start()")
        quiet_since = time.monotonic()
        while idle is None or time.monotonic() - quiet_since < idle:
            batches = await self._consumer.getmany(timeout_ms=500)
            if not batches:
                continue
            for record in (r for part in batches.values() for r in part):
                obj = orjson.loads(record.value)
                submitter = dict(record.headers).get(SUBMITTER)
                yield FeedObject(
                    obj,
                    await self._keys.verify(obj),
                    submitter.decode() if submitter is not None else None,
                    record.partition,
                    record.offset,
                )
            await self._consumer.commit()
            quiet_since = time.monotonic()


def keygen(out: Path, kid: str | None = None, passphrase: str | None = None) -> dict[str, str]:
    """Make a member key pair: the private key to `out` (PEM, owner-only), the public JWK to
    list under the member's `public_keys` in the federation file."""
    key = MemberKey.generate()
    if kid is not None:
        key = MemberKey(key.private, kid)
    key.save(out, passphrase)
    return key.public_jwk()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.kafka.member",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("keygen", help="make a member key; print its public JWK")
    gen.add_argument(
        "--out",
        type=Path,
        required=True,
        help=f"new key file (PEM; ${KEY_PASSPHRASE_ENV} encrypts)",
    )
    gen.add_argument("--kid", help="key id (default: the RFC 7638 thumbprint)")
    produce = sub.add_parser("produce", help="sign and produce bundles to the intake topic")
    produce.add_argument("files", nargs="+", type=Path, help="STIX bundles or TAXII envelopes")
    produce.add_argument("--key", type=Path, required=True, help="the member's private key (PEM)")
    produce.add_argument("--kid", help="key id as the federation file lists it")
    produce.add_argument("--account", help="submit account named on the status (default: first)")
    produce.add_argument("--sign-objects", action="store_true", help="sign each object too")
    produce.add_argument(
        "--jws", action="store_true", help="send each file as a compact JWS (no signature header)"
    )
    produce.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="then wait this long for each record's receipt and print it (exit 1: a refusal)",
    )
    consume = sub.add_parser("consume", help="read and verify a feed topic")
    consume.add_argument(
        "--jwks", help="the hub's JWKS: URL or file (default: from the hub's keys topic)"
    )
    consume.add_argument("--collection", help="default: member-<MEMBER>")
    consume.add_argument("--group", help="consumer group (default: <MEMBER>-feed)")
    consume.add_argument("--idle", type=float, help="stop after this many quiet seconds")
    for cmd in (produce, consume):
        cmd.add_argument("--member", required=True, help="the member's id in the federation")
        cmd.add_argument("--topic-prefix", default="cirt-hub.")
        add_arguments(cmd)
    return parser


def receipt_line(name: str, receipt: ReceiptRecord) -> str:
    """One line for a receipt: the record's outcome, object by object in short."""
    if receipt.status is None:
        return f"{name}: refused ({receipt.reason}): {receipt.message}"
    status = receipt.status
    failures = "".join(f"; {f['id']}: {f.get('message', '')}" for f in status["failures"])
    return (
        f"{name}: complete, {status['success_count']} accepted, "
        f"{status['failure_count']} refused{failures}"
    )


async def _produce(args: argparse.Namespace) -> int:
    key = MemberKey.load(args.key)
    if args.kid:
        key = MemberKey(key.private, args.kid)
    connection = from_arguments(args)
    receipts = Receipts(connection, args.member, topic_prefix=args.topic_prefix)
    if args.wait is not None:
        await receipts.start()  # before producing: the receipts land after it
    try:
        sent: dict[str, Path] = {}
        async with IntakeProducer(
            connection,
            args.member,
            key,
            topic_prefix=args.topic_prefix,
            account=args.account,
            jws=args.jws,
        ) as producer:
            for path in args.files:
                done = await producer.send(path.read_bytes(), sign_objects=args.sign_objects)
                sent[done.where] = path
                print(
                    f"{path}: {done.topic} partition {done.partition} offset {done.offset}; "
                    f"status /taxii2/hub/status/{done.status_id}/",
                    flush=True,
                )
        if args.wait is None:
            return 0
        came = await receipts.wait(list(sent), args.wait)
    finally:
        await receipts.stop()
    for where, receipt in came.items():
        print(receipt_line(str(sent[where]), receipt), flush=True)
    refused = [r for r in came.values() if r.status is None or r.status["failure_count"]]
    return 1 if refused else 0


async def _consume(args: argparse.Namespace) -> int:
    invalid = 0
    connection = from_arguments(args)
    keys = KeysTopic(connection, topic_prefix=args.topic_prefix)
    async with FeedConsumer(
        connection,
        args.member,
        HubKeys.at(args.jwks) if args.jwks else HubKeys(keys.hub_jwks, patience=ROTATION_LAG),
        topic_prefix=args.topic_prefix,
        collection=args.collection,
        group=args.group,
    ) as consumer:
        async for item in consumer.objects(idle=args.idle):
            if item.verdict.valid:
                sys.stdout.buffer.write(orjson.dumps(item.obj) + b"\n")
                sys.stdout.flush()
            else:
                invalid += 1
                print(
                    f"invalid {item.verdict.id}: {item.verdict.reason}: {item.verdict.message}",
                    file=sys.stderr,
                )
    return 1 if invalid else 0


def main(argv: list[str] | None = None) -> int:
    """The command line; the exit status (2: unusable input, 1: Kafka failed or invalid)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "keygen":
            # Encrypted when the passphrase is set: what MemberKey.load() will read it with.
            jwk = keygen(args.out, args.kid, os.environ.get(KEY_PASSPHRASE_ENV))
            print(orjson.dumps(jwk).decode())
            print(
                f"private key in {args.out}; list the line above under public_keys", file=sys.stderr
            )
            return 0
        return asyncio.run(_produce(args) if args.command == "produce" else _consume(args))
    except (MemberKeyError, SourceError, OSError, ValueError, KeysTopicError) as exc:
        print(f"connectors.kafka.member: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(f"connectors.kafka.member: Kafka: {exc}", file=sys.stderr)
        return 1
    except ReceiptsError as exc:
        print(f"connectors.kafka.member: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
