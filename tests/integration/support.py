"""Helpers for integration tests: real Kafka (kafka-python), real worker processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

BOOTSTRAP = os.environ.get("CLAIMWATCH_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CLAIMWATCH = str(Path(sys.executable).parent / "claimwatch")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def broker_reachable(timeout: float = 2.0) -> bool:
    host, _, port = BOOTSTRAP.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_total(read, at_least: float, timeout: float, describe) -> float:  # type: ignore[no-untyped-def]
    """Poll ``read()`` until it reaches ``at_least`` or ``timeout`` seconds pass (then fail with ``describe()``)."""
    deadline = time.monotonic() + timeout
    value = read()
    while value < at_least and time.monotonic() < deadline:
        time.sleep(0.2)
        value = read()
    if value < at_least:
        raise AssertionError(f"reached {value}, expected >= {at_least}: {describe()}")
    return value


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


class Worker:
    """A `claimwatch worker` subprocess with its own state dir and web port."""

    def __init__(self, environment: Environment, name: str, extra: dict[str, str]):
        self.environment = environment
        self.name = name
        self.port = free_port()
        self.state_dir = environment.root / f"state-{name}"
        self.log_path = environment.root / f"{name}.log"
        self.extra = extra
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: float = 90.0) -> Worker:
        env = self.environment.env(
            CLAIMWATCH_WEB_PORT=str(self.port), CLAIMWATCH_STATE_DIR=str(self.state_dir), **self.extra
        )
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [CLAIMWATCH, "worker"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited: {self.log_tail()}")
            if self.ready():
                return self
            time.sleep(0.5)
        raise AssertionError(f"worker {self.name} not ready after {wait}s: {self.log_tail()}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                body = json.loads(response.read())
            return bool(body.get("reference", {}).get("loaded")) and "Worker ready" in self.log_path.read_text()
        except (OSError, ValueError):
            return False

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def metrics(self) -> str:
        return self.get("/metrics")[1].decode()

    def metric_total(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            series, _, value = line.rpartition(" ")
            if all(f'{key}="{wanted}"' in series for key, wanted in labels.items()):
                total += float(value)
        return total

    def wait_for_metric(self, name: str, at_least: float, timeout: float = 60.0, **labels: str) -> float:
        return wait_for_total(
            lambda: self.metric_total(name, **labels), at_least, timeout, lambda: f"{name}{labels}: {self.log_tail(20)}"
        )

    def stop(self, timeout: float = 30.0) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])
