"""The foundation against the real broker: topics, a round trip, the worker's web endpoints."""

from __future__ import annotations

import json
import subprocess
import time

from kafka.admin import KafkaAdminClient

from services.topics import ALL_TOPICS
from tests.integration.support import BOOTSTRAP, CLAIMWATCH, PROJECT_ROOT, Environment, free_port


def test_topics_create_is_idempotent_and_applies_the_declared_config(environment: Environment):
    first = environment.run("topics", "create")
    assert first.stdout.count("created") == len(ALL_TOPICS)
    second = environment.run("topics", "create")
    assert "created" not in second.stdout and second.stdout.count("exists") == len(ALL_TOPICS)
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        described = admin.describe_topics([environment.topic("remittances"), environment.topic("reference.pricing")])
        partitions = {topic["name"]: len(topic["partitions"]) for topic in described}
        assert partitions[environment.topic("remittances")] == environment.partitions
        assert partitions[environment.topic("reference.pricing")] == 1
    finally:
        admin.close()


def test_kafka_python_round_trip(environment: Environment):
    environment.run("topics", "create")
    sent = [(f"k{i}".encode(), json.dumps({"n": i}).encode()) for i in range(50)]
    environment.produce("claims", sent)
    received = environment.consume("claims", expected=50)
    assert sorted((record.key, record.value) for record in received) == sorted(sent)


def test_worker_serves_health_and_metrics_and_guards_other_paths(environment: Environment):
    worker = environment.worker(CLAIMWATCH_API_TOKEN="s3cret").start()
    status, body = worker.get("/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body = worker.get("/metrics")
    assert status == 200 and b"claimwatch_worker_up" in body
    status, _ = worker.get("/router/")
    assert status == 401
    status, _ = worker.get("/router/", headers={"Authorization": "Bearer s3cret"})
    assert status != 401


def test_unreachable_broker_fails_fast_in_one_line(tmp_path):
    port = free_port()
    started = time.monotonic()
    result = subprocess.run(
        [CLAIMWATCH, "topics", "create"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "CLAIMWATCH_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
            "CLAIMWATCH_BROKER_TIMEOUT_S": "2",
        },
    )
    assert result.returncode == 2
    assert f"127.0.0.1:{port}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert time.monotonic() - started < 30
