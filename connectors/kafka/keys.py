"""The hub's keys from Kafka alone: its JWKS and the members' public keys, read from the
compacted `<prefix>keys` topic (the latest record of each name holds), for readers that
check signatures without reaching the hub over HTTP.

    keys = KeysTopic(KafkaConnection("kafka.hub.example:9093"))
    hub = HubKeys(keys.hub_jwks, patience=ROTATION_LAG)  # read again for a new kid
"""

from __future__ import annotations

import time
from typing import Any

import aiokafka
import orjson

from connectors.kafka.connection import KafkaConnection, topic_partitions
from hub.bus.kafka_stop import stop_consumer
from hub.records import HUB_KEYS, member_keys_key
from hub.topics import Topics

JwkSet = dict[str, Any]
# How long after a rotation the keys topic may lack the new key (pipeline nodes look at
# their keys dir every 2 s) while feed records signed with it are already there.
ROTATION_LAG = 10.0


class KeysTopicError(RuntimeError):
    """The keys topic cannot be read, or lacks what was asked for."""


class KeysTopic:
    """Reads the keys topic to its end, each time it is asked (it holds a few records)."""

    def __init__(
        self, connection: KafkaConnection, *, topic_prefix: str = "cirt-hub.", timeout: float = 30
    ) -> None:
        self.topic = Topics(topic_prefix).keys
        self._connection, self._timeout = connection, timeout

    async def sets(self) -> dict[str, JwkSet]:
        """Every JWK Set on the topic by name (`hub`, `member-<id>`), the latest of each."""
        partitions = await topic_partitions(self._connection, self.topic)
        if not partitions:
            raise KeysTopicError(
                f"no topic {self.topic!r} (or no Describe on it): is the prefix right?"
            )
        consumer = aiokafka.AIOKafkaConsumer(
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            **self._connection.options(),
        )
        await consumer.start()
        try:
            tps = [aiokafka.TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            found: dict[str, JwkSet] = {}
            deadline = time.monotonic() + self._timeout
            # position() steps over transaction markers, so it reaches the end offset.
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                if time.monotonic() > deadline:
                    raise KeysTopicError(f"could not read {self.topic!r} to its end")
                batches = await consumer.getmany(timeout_ms=500)
                for record in (r for records in batches.values() for r in records):
                    if record.key is not None and record.value is not None:
                        found[record.key.decode()] = orjson.loads(record.value)
            return found
        finally:
            await stop_consumer(consumer)

    async def hub_jwks(self) -> JwkSet:
        """The hub's JWKS: its current key and every retired one."""
        found = (await self.sets()).get(HUB_KEYS)
        if found is None:
            raise KeysTopicError(f"{self.topic!r} holds no hub JWKS yet")
        return found

    async def member_jwks(self, member: str | None = None) -> JwkSet:
        """One member's public keys, or every member's (each naming its member), as the
        hub's `/api/v1/member-keys` lists them."""
        sets = await self.sets()
        if member is not None:
            return sets.get(member_keys_key(member), {"keys": []})
        head = member_keys_key("")
        return {"keys": [k for name, s in sets.items() if name.startswith(head) for k in s["keys"]]}
