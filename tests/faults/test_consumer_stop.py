"""Stopping a Kafka consumer after its broker was SIGKILLed: aiokafka's own stop() raises a
CancelledError nobody asked for (its fetch was sleeping out a retry back-off); the hub's
stop_consumer returns normally, with the consumer's connections closed, so the task that
stopped it goes on (to reconnect) instead of ending."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiokafka
import pytest

from hub.bus.kafka_stop import stop_consumer
from tests.conftest import free_port
from tests.faults.support import broker

BACKOFF_MS = 30_000  # a failed fetch sleeps this long: long enough to stop it mid-sleep


async def consumer_with_failed_fetch(run_dir: Path) -> aiokafka.AIOKafkaConsumer:
    """A consumer reading a topic whose broker was then SIGKILLed, its fetch failed."""
    bootstrap = (run_dir / "bootstrap").read_text().strip()
    producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait("stop-test", b"one")
    finally:
        await producer.stop()
    consumer = aiokafka.AIOKafkaConsumer(
        bootstrap_servers=bootstrap, retry_backoff_ms=BACKOFF_MS, auto_offset_reset="earliest"
    )
    await consumer.start()
    consumer.assign([aiokafka.TopicPartition("stop-test", 0)])
    fetched = await consumer.getmany(timeout_ms=10_000)
    assert b"one" in [r.value for records in fetched.values() for r in records]
    os.kill(int((run_dir / "kafka.pid").read_text()), signal.SIGKILL)
    async with asyncio.timeout(20):
        while not consumer._fetcher._pending_tasks:
            await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # its fetch has failed by now and sleeps out the back-off
    return consumer


@pytest.mark.kafka
@pytest.mark.timeout(120)
async def test_a_consumer_of_a_killed_broker_stops_without_a_stray_cancellation(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "kafka"
    ports = ("--port", str(free_port()), "--controller-port", str(free_port()))
    await asyncio.to_thread(broker, "start", *ports, "--dir", str(run_dir))
    try:
        plain = await consumer_with_failed_fetch(run_dir)
        # What the hub works around, seen here so that a fixed aiokafka shows up:
        with pytest.raises(asyncio.CancelledError):
            await plain.stop()
        await plain._client.close()
        await asyncio.to_thread(broker, "start", *ports, "--dir", str(run_dir), "--keep-data")
        consumer = await consumer_with_failed_fetch(run_dir)
        async with asyncio.timeout(10):
            await stop_consumer(consumer)
        assert not consumer._fetcher._pending_tasks or all(
            t.done() for t in consumer._fetcher._pending_tasks
        )
        assert not consumer._client._conns, "connections left open"
    finally:
        await asyncio.to_thread(broker, "stop", "--dir", str(run_dir))
