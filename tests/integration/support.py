"""Helpers for integration tests: real Kafka (kafka-python), real worker processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from services.worker_process import (  # noqa: F401 (re-exported for the tests)
    CLAIMWATCH,
    PROJECT_ROOT,
    WorkerProcess,
    Workers,
    free_port,
    wait_for_total,
)

BOOTSTRAP = os.environ.get("CLAIMWATCH_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def broker_reachable(timeout: float = 2.0) -> bool:
    host, _, port = BOOTSTRAP.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class Environment:
    """An isolated claimwatch environment on the shared broker: its own topic prefix and app id."""

    root: Path
    prefix: str = field(default_factory=lambda: f"it-{uuid.uuid4().hex[:10]}.")
    partitions: int = 4
    workers: list[Worker] = field(default_factory=list)

    @property
    def app_id(self) -> str:
        return self.prefix.rstrip(".")

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CLAIMWATCH_BOOTSTRAP_SERVERS=BOOTSTRAP,
            CLAIMWATCH_TOPIC_PREFIX=self.prefix,
            CLAIMWATCH_APP_ID=self.app_id,
            CLAIMWATCH_PARTITIONS=str(self.partitions),
            CLAIMWATCH_LOG_LEVEL="info",
        )
        env.update(extra)
        return env

    def run(self, *args: str, input_text: str | None = None, check: bool = True, **extra: str):
        result = subprocess.run(
            [CLAIMWATCH, *args],
            input=input_text,
            capture_output=True,
            text=True,
            env=self.env(**extra),
            cwd=PROJECT_ROOT,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"claimwatch {' '.join(args)} failed ({result.returncode}): {result.stderr[-3000:]}")
        return result

    def delete_topics(self) -> None:
        """Remove this environment's topics (declared and Faust's internal ones) from the shared broker."""
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        try:
            mine = [name for name in admin.list_topics() if name.startswith((self.prefix, self.app_id + "-"))]
            if mine:
                admin.delete_topics(mine)
        finally:
            admin.close()

    def worker(self, name: str = "w1", **extra: str) -> Worker:
        worker = Worker(self, name, extra)
        self.workers.append(worker)
        return worker

    def produce(self, topic: str, records: Iterable[tuple[bytes | None, bytes]], partition: int | None = None) -> int:
        """Send records (to ``partition`` when given, else where the key's hash puts them) and flush."""
        producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5, max_request_size=8 << 20)
        count = 0
        for key, value in records:
            producer.send(self.topic(topic), key=key, value=value, partition=partition)
            count += 1
        producer.flush()
        producer.close()
        return count

    def consume(self, topic: str, expected: int | None = None, timeout: float = 60.0, idle: float = 3.0) -> list:
        """Read a topic from the beginning (read_committed) until `expected` records or `idle` quiet seconds."""
        consumer = KafkaConsumer(
            bootstrap_servers=BOOTSTRAP,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            group_id=None,
        )
        name = self.topic(topic)
        deadline = time.monotonic() + timeout
        partitions = None
        while partitions is None and time.monotonic() < deadline:
            found = consumer.partitions_for_topic(name)
            if found:
                partitions = [TopicPartition(name, p) for p in sorted(found)]
            else:
                time.sleep(0.5)
        records: list = []
        if partitions is None:
            consumer.close()
            return records
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        last_record = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500)
            for tp_records in batch.values():
                records.extend(tp_records)
                last_record = time.monotonic()
            if expected is not None and len(records) >= expected and time.monotonic() - last_record > 1.0:
                break
            if expected is None and time.monotonic() - last_record > idle:
                break
        consumer.close()
        return records

    def consume_json(self, topic: str, **kwargs) -> list[dict]:
        return [json.loads(record.value) for record in self.consume(topic, **kwargs) if record.value is not None]


class Worker(WorkerProcess):
    """A `claimwatch worker` subprocess of an environment, with its own state dir and web port."""

    failure = AssertionError

    def __init__(self, environment: Environment, name: str, extra: dict[str, str]):
        super().__init__(
            environment.env(**extra), environment.root / f"state-{name}", environment.root / f"{name}.log", name
        )
        self.environment = environment
