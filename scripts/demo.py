"""`make demo`: the service on a local single-node Kafka with the simulated demo group.

Starts Kafka if it is not running, creates the demo topics afresh, writes the simulated group, loads its
reference data, starts a worker, publishes the claim context and the 835 files, prints what came out and
where to look, then keeps running until Ctrl-C, when it stops everything it started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
KAFKA = ["bash", str(ROOT / "deploy/kafka/kafka.sh")]
PREFIX = "demo."
APP_ID = "claimwatch-demo"
OUT = ROOT / "demo-out"
STATE = ROOT / ".state" / "demo"
PORT = int(os.environ.get("CLAIMWATCH_WEB_PORT", "6066"))
BOOTSTRAP = os.environ.get("CLAIMWATCH_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
ALERT_TOPICS = ("alerts.underpayment", "alerts.sca-opportunity", "alerts.nsa-deadline", "dead-letters")


def step(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def env() -> dict[str, str]:
    return dict(
        os.environ,
        CLAIMWATCH_BOOTSTRAP_SERVERS=BOOTSTRAP,
        CLAIMWATCH_TOPIC_PREFIX=PREFIX,
        CLAIMWATCH_APP_ID=APP_ID,
        CLAIMWATCH_STATE_DIR=str(STATE),
        CLAIMWATCH_WEB_PORT=str(PORT),
        CLAIMWATCH_NSA_TICK_INTERVAL_S=os.environ.get("CLAIMWATCH_NSA_TICK_INTERVAL_S", "10"),
    )


def claimwatch(*args: str) -> None:
    subprocess.run([str(BIN / "claimwatch"), *args], env=env(), cwd=ROOT, check=True)


def fresh_topics() -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        stale = [name for name in admin.list_topics() if name.startswith((PREFIX, APP_ID + "-"))]
        if stale:
            admin.delete_topics(stale)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and set(stale) & set(admin.list_topics()):
                time.sleep(0.5)
    finally:
        admin.close()


def metric(name: str, text: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def scrape() -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/metrics", timeout=5) as response:
        return response.read().decode()


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"demo: timed out waiting for {what}")


def count_topic(name: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(PREFIX + name, p) for p in consumer.partitions_for_topic(PREFIX + name) or ()]
        return sum(consumer.end_offsets(partitions).values()) if partitions else 0
    finally:
        consumer.close()


def latest_opportunities() -> list[dict]:
    """The latest revision of every SCA opportunity on the alert topic (a key stays on one partition)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, consumer_timeout_ms=2000)
    topic = PREFIX + "alerts.sca-opportunity"
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        latest = {record.key: json.loads(record.value) for record in consumer}
    finally:
        consumer.close()
    return sorted(latest.values(), key=lambda item: (item["rule"], item["opportunity_id"]))


def show_opportunities() -> None:
    """One line per SCA opportunity: what a contracting team would open first."""
    for item in latest_opportunities():
        ask = item["anchors"]["opening_ask_low"]
        print(
            f"  {item['rule']:26s} {(item['payer_name'] or item['payer_id'])[:22]:22s} "
            f"{item['specialty_group'][:20]:20s} {item['region']:16s} {item['claim_count']:>3} claims, "
            f"billed ${Decimal(item['billed_amount']):>10,.2f}" + (f", opening ask ${Decimal(ask):,.2f}" if ask else "")
        )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # Stop the worker and the broker this demo started however it is ended: Ctrl-C (also when started in the
    # background, where SIGINT arrives ignored), `kill`, or the terminal closing.
    for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, _interrupt)
    started_kafka = subprocess.run([*KAFKA, "status"], capture_output=True).returncode != 0
    if started_kafka:
        step("starting Kafka (first run downloads it from Maven Central)")
        subprocess.run([*KAFKA, "start"], check=True)
    worker = None
    try:
        step("fresh demo topics and state")
        fresh_topics()
        shutil.rmtree(STATE, ignore_errors=True)
        claimwatch("topics", "create")
        step("simulating a multi-state provider group (reference data, claim context, 835 files)")
        shutil.rmtree(OUT, ignore_errors=True)
        claimwatch("simulate", "--out", str(OUT))
        claimwatch("reference", "load", str(OUT / "reference"))
        step(f"starting a worker (log: {STATE / 'worker.log'})")
        STATE.mkdir(parents=True, exist_ok=True)
        log = (STATE / "worker.log").open("w")
        worker = subprocess.Popen(
            [str(BIN / "claimwatch"), "worker"],
            env=env(),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def healthy() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=2) as response:
                return json.loads(response.read())["reference"]["loaded"]

        wait_for(healthy, 120, "the worker's /health")
        contexts = sum(1 for _ in (OUT / "claims.jsonl").open())
        step(f"publishing {contexts} claim contexts, then the 835 files")
        claimwatch("ingest", "--claims", str(OUT / "claims.jsonl"))
        wait_for(
            lambda: metric('claimwatch_events_in_total{topic="demo.claims"}', scrape()) >= contexts,
            120,
            "the worker to read the claim context",
        )
        claimwatch("ingest", "--force", str(OUT / "remittances"))
        wait_for(lambda: metric("claimwatch_claims_evaluated_total", scrape()) >= contexts, 180, "the evaluations")
        time.sleep(3)
        step("what the worker found")
        text = scrape()
        for name in (
            "claimwatch_claims_evaluated_total",
            "claimwatch_underpayment_alerts_total",
            "claimwatch_underpaid_dollars_total",
            "claimwatch_recovered_dollars_total",
            "claimwatch_sca_opportunities_total",
            "claimwatch_dead_letters_total",
        ):
            print(f"  {name:45s} {metric(name, text):>12,.2f}")
        for topic in ALERT_TOPICS:
            print(f"  topic {PREFIX + topic:32s} {count_topic(topic):>6} messages")
        step("single-case-agreement opportunities (latest revision of each)")
        show_opportunities()
        print(
            f"""
Where to look:
  health        http://127.0.0.1:{PORT}/health
  metrics       http://127.0.0.1:{PORT}/metrics
  alerts        kafka topics {", ".join(PREFIX + t for t in ALERT_TOPICS[:3])}
  read them     CLAIMWATCH_TOPIC_PREFIX={PREFIX} .venv/bin/claimwatch tail alerts.underpayment --limit 3
  dashboards    with Docker: docker compose up --build, then Grafana at http://localhost:3000
  demo data     {OUT} (manifest.json lists what was planted)
Ctrl-C stops the worker{" and Kafka" if started_kafka else ""}."""
        )
        while worker.poll() is None:
            time.sleep(1)
        print(f"demo: the worker exited ({worker.returncode}); see {STATE / 'worker.log'}")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(stop_signal, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        if worker is not None and worker.poll() is None:
            print("\nstopping the worker...", flush=True)
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        if started_kafka:
            subprocess.run([*KAFKA, "stop"])


if __name__ == "__main__":
    sys.exit(main())
