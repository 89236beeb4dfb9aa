"""The observability proof (issue 7, item 6): the simulated group streamed through a real worker on the real
broker, a real Prometheus scraping the worker's /metrics every second and evaluating the project's alert
rules every second; then every Grafana panel query returns data and the planted underpayment spike fires
UnderpaymentSpike for its payer group only.

The stream is what a user runs on day one: ``claimwatch simulate --out DIR`` writes the group, its
reference folder is loaded with ``claimwatch reference load``, the claim contexts are published (and
consumed: in life the claim precedes its payment by weeks), then the 835 files are parsed with the project's
parser and published payment week by payment week, as ``claimwatch ingest`` would (``ingested_at`` stamped
by the Publisher, which starts the latency clock). Prometheus scrapes between the weeks, so rates,
rolling ratios and histogram quantiles see counters grow, not only appear.

Data the simulator cannot produce by itself is produced the way production does:
- NSA deadlines: the worker's clock timer is off (CLAIMWATCH_NSA_TICK_INTERVAL_S=0: it would tick with the
  machine's date, long after the simulated payment weeks); the test sends one ClockTick per partition of
  ``nsa.case-updates`` dated the Monday after the last payment week, which opens the case gauges and emits
  the reminders that are due;
- dead letters: two malformed messages on the remittances topic (the pipeline-health panels chart them).

The SCA opportunity panels read the metrics of the network adequacy agent (services/adequacy/agent.py), fed
by the simulator's planted network gaps; they are required like every other panel.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections import defaultdict
from pathlib import Path

import pytest
from kafka import KafkaProducer

from schemas.claims import ClaimContext
from schemas.dead_letter import DeadLetter
from schemas.nsa import ClockTick
from services import dashboards
from services.ingestion.publish import Publisher
from services.ingestion.x12 import parse_path
from services.settings import Settings
from tests.integration.support import BOOTSTRAP, Environment, Worker
from tests.prometheus_support import (
    PrometheusQueryError,
    firing_alerts,
    prometheus_binary,
    query,
    running_prometheus,
    wait_for,
    wait_for_scrape,
)

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.skipif(
        prometheus_binary() is None,
        reason="prometheus binary not found (expected /usr/bin/prometheus from the Debian package 'prometheus', "
        "or $PROMETHEUS_BIN): the live observability proof needs a real Prometheus",
    ),
]

CLAIMS = 800
SPIKE_ALERT = "UnderpaymentSpike"
WEEK_PAUSE_S = 1.5
"""Pause between payment weeks: at least one scrape lands between them (1 s scrape interval)."""
TICK_TODAY = dt.date(2025, 12, 29)
"""NSA clock date: the Monday after the last simulated payment week (2025-12-22), when open cases fall in
every deadline bucket from 0-1 to 11-30 business days and some reminders are due."""
BAD_REMITTANCES = [(b"observability-bad-1", b"not json"), (b"observability-bad-2", b"{still not json")]


# --- feeding the worker ---------------------------------------------------------------------------------
def publisher_settings(environment: Environment) -> Settings:
    """The settings the CLI would have in this environment (its topic prefix on the shared broker)."""
    return Settings(bootstrap_servers=BOOTSTRAP, topic_prefix=environment.prefix, partitions=environment.partitions)


def publish_claim_contexts(environment: Environment, worker: Worker, publisher: Publisher, path: Path) -> int:
    """Every claim context of the simulation; returns once the worker holds them all."""
    count = 0
    for line in path.read_text().splitlines():
        if line.strip():
            publisher.claim_context(ClaimContext.model_validate_json(line))
            count += 1
    publisher.flush()
    worker.wait_for_metric("claimwatch_events_in_total", count, timeout=120, topic=environment.topic("claims"))
    return count


def payment_weeks(folder: Path) -> list[list[Path]]:
    """The 835 files grouped by payment week (file names start with the week's Monday, YYYY-MM-DD_)."""
    weeks: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(folder.glob("*.835")):
        weeks[path.name.split("_", 1)[0]].append(path)
    return [weeks[week] for week in sorted(weeks)]


def stream_remittances(publisher: Publisher, folder: Path, hmac_key: bytes) -> dict[str, int]:
    """Parse and publish the 835 files week by week, pausing between weeks; returns what was published."""
    counts = {"remittance": 0, "provider_adjustment": 0, "weeks": 0}
    parser_dead_letters: list[str] = []
    for week in payment_weeks(folder):
        for path in week:
            for item in parse_path(path, hmac_key):
                if isinstance(item, DeadLetter):
                    parser_dead_letters.append(f"{path.name}: {item.reason}: {item.detail}")
                    continue
                publisher.remittance(item)
                counts[item.event_type] += 1
        publisher.flush()
        counts["weeks"] += 1
        time.sleep(WEEK_PAUSE_S)
    assert not parser_dead_letters, f"the simulator's 835 files do not parse cleanly: {parser_dead_letters[:5]}"
    return counts


def tick_nsa_clock(environment: Environment, worker: Worker, today: dt.date) -> None:
    """Once every NSA case is in the case table, send one ClockTick per partition of nsa.case-updates."""
    case_updates = environment.topic("nsa.case-updates")
    produced = worker.metric_total("claimwatch_events_out_total", topic=case_updates)
    assert produced > 0, "no NSA case was found in the simulated remittances"
    worker.wait_for_metric("claimwatch_events_in_total", produced, timeout=120, topic=case_updates)
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    try:
        partitions = wait_for(lambda: producer.partitions_for(case_updates), timeout=30)
        for partition in sorted(partitions):
            tick = ClockTick(today=today, partition=partition)
            producer.send(
                case_updates,
                key=f"tick-{partition}".encode(),
                value=tick.model_dump_json().encode(),
                partition=partition,
            )
        producer.flush()
    finally:
        producer.close()
    worker.wait_for_metric("claimwatch_events_in_total", produced + len(partitions), timeout=120, topic=case_updates)


# --- reading the dashboards back ----------------------------------------------------------------------------
def finite(series: dict) -> bool:
    return math.isfinite(float(series["value"][1]))


def panel_problems(url: str, at: float) -> tuple[list[str], int]:
    """Evaluate every panel query at ``at``: (failures, queries evaluated).

    A query passes when it returns at least one series with a finite value and every catalog metric it reads
    has at least one series in Prometheus (so a stat never passes on its ``or vector(0)`` fallback alone).
    """
    series_count: dict[str, int] = {}

    def has_series(metric: str) -> bool:
        if metric not in series_count:
            series_count[metric] = len(query(url, f'{{__name__="{metric}", job="claimwatch"}}', at=at))
        return series_count[metric] > 0

    failures: list[str] = []
    queries = dashboards.all_panel_queries()
    for dashboard, panel, expr in queries:
        rendered = dashboards.render_query(expr)
        metrics = sorted(dashboards.promql_metric_names(expr))
        where = f"{dashboard} / {panel}"
        try:
            result = query(url, rendered, at=at)
            absent = [metric for metric in metrics if not has_series(metric)]
        except PrometheusQueryError as error:
            failures.append(f"{where}: query error {error}\n    {rendered}")
            continue
        if not result:
            problem = "no series"
        elif not any(finite(series) for series in result):
            problem = f"only NaN/Inf values ({len(result)} series)"
        elif absent:
            problem = f"data only from a fallback: no series of {', '.join(absent)}"
        else:
            continue
        failures.append(f"{where}: {problem}\n    {rendered}")
    return failures, len(queries)


def test_every_dashboard_panel_has_data_and_the_planted_spike_fires_its_alert(environment: Environment):
    started = time.monotonic()
    out = environment.root / "simulation"
    environment.run("simulate", "--out", str(out), "--claims", str(CLAIMS))
    manifest = json.loads((out / "manifest.json").read_text())
    spike = manifest["patterns"]["underpayment"]["spike"]
    spike_group = spike["payer_group"]
    payer_groups = set(manifest["patterns"]["underpayment"]["underpaid_share_by_payer_group"])
    assert spike_group in payer_groups and len(payer_groups) >= 8

    environment.run("topics", "create")
    environment.run("reference", "load", str(out / "reference"))
    worker = environment.worker(CLAIMWATCH_NSA_TICK_INTERVAL_S="0").start()
    settings = publisher_settings(environment)
    hmac_key = settings.hmac_key.get_secret_value().encode("utf-8")

    with running_prometheus([f"127.0.0.1:{worker.port}"], environment.root) as prometheus:
        url = prometheus.url
        wait_for_scrape(url, timeout=60)

        with Publisher(settings) as publisher:
            contexts = publish_claim_contexts(environment, worker, publisher, out / "claims.jsonl")
            published = stream_remittances(publisher, out / "remittances", hmac_key)
        environment.produce("remittances", BAD_REMITTANCES)
        assert contexts == manifest["counts"]["claims"]
        assert published["remittance"] == manifest["counts"]["remittance_claims"]

        remittance_messages = published["remittance"] + published["provider_adjustment"] + len(BAD_REMITTANCES)
        worker.wait_for_metric(
            "claimwatch_events_in_total", remittance_messages, timeout=120, topic=environment.topic("remittances")
        )
        worker.wait_for_metric("claimwatch_claims_evaluated_total", published["remittance"], timeout=60)
        worker.wait_for_metric("claimwatch_dead_letters_total", len(BAD_REMITTANCES), timeout=60)
        tick_nsa_clock(environment, worker, TICK_TODAY)
        worker.wait_for_metric("claimwatch_nsa_reminders_total", 1, timeout=60)

        # (2) The planted spike: UnderpaymentSpike fires for the spike's payer group within a bounded wait.
        try:
            spike_alerts = wait_for(
                lambda: [
                    alert
                    for alert in firing_alerts(url, SPIKE_ALERT)
                    if alert["labels"].get("payer_group") == spike_group
                ],
                timeout=60,
                interval=1.0,
            )
        except TimeoutError:
            pytest.fail(
                f"{SPIKE_ALERT} did not fire for payer_group {spike_group} within 60 s of the stream's end; "
                f"active alerts: {firing_alerts(url)}; underpaid dollars in 5m by payer group: "
                f"{query(url, 'payer_group:claimwatch_underpaid_dollars:increase5m')}; underpaid share: "
                f"{query(url, 'payer_group:claimwatch_claims_underpaid:ratio5m')}"
            )
        spike_dollars = float(spike_alerts[0]["value"])
        assert spike_dollars > 500
        assert spike_alerts[0]["labels"]["severity"] == "critical"

        # Prometheus has scraped the worker's final counters, and scraped the reminder counters (born at the
        # tick, the last thing that happened) at least twice, as their rate panel needs.
        evaluated = worker.metric_total("claimwatch_claims_evaluated_total")
        wait_for(
            lambda: (
                query(url, f'sum(claimwatch_claims_evaluated_total{{job="claimwatch"}}) >= {evaluated}')
                and query(url, 'min(count_over_time(claimwatch_nsa_reminders_total{job="claimwatch"}[1m])) >= 2')
            ),
            timeout=30,
            message="Prometheus did not scrape the worker's final counters",
        )
        at = time.time()

        # (1) Every panel query of every dashboard returns data, evaluated as Grafana would (All selected).
        failures, evaluated_queries = panel_problems(url, at)

        # The spike alert was never pending or firing for any other payer group during the whole stream.
        alerted_groups = {
            series["metric"].get("payer_group")
            for series in query(url, f'max_over_time(ALERTS{{alertname="{SPIKE_ALERT}"}}[1h])')
        }
        elapsed = time.monotonic() - started

    assert not failures, f"{len(failures)} of {evaluated_queries} panel queries return no data:\n" + "\n".join(failures)
    assert alerted_groups == {spike_group}, f"{SPIKE_ALERT} was active for {sorted(alerted_groups - {None})}"
    print(
        f"observability proof: {evaluated_queries} of {evaluated_queries} panel queries "
        f"with data, {SPIKE_ALERT} fired for "
        f"{spike_group} only (${spike_dollars:.2f} short in 5 minutes), {elapsed:.0f}s"
    )
