"""The Prometheus test harness (tests/prometheus_support.py), proved against a real Prometheus.

A tiny prometheus_client HTTP server stands in for a worker: it serves the claimwatch catalog with
synthetic values. Prometheus scrapes it every second and evaluates the project's alert rules, so these
tests also prove that every dashboard query runs and returns data once every metric has data, and that
the underpayment spike rule fires on a burst of fresh series.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import product

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

import services.metrics as catalog
from services import dashboards
from tests.prometheus_support import (
    PrometheusQueryError,
    firing_alerts,
    free_port,
    label_values,
    prometheus_binary,
    query,
    rule_groups,
    running_prometheus,
    wait_for,
    wait_for_scrape,
)

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.skipif(
        prometheus_binary() is None,
        reason="prometheus binary not found: install the Debian package 'prometheus' (deploy/prometheus/install.sh)",
    ),
]

# Label values of the synthetic worker: several statuses so that shares (denied / underpaid / comparable)
# have a numerator and a denominator.
SAMPLE_LABELS: dict[str, tuple[str, ...]] = {
    "payer_group": ("harness_payer",),
    "state": ("TX",),
    "specialty_group": ("cardiology",),
    "status": ("underpaid", "as_expected", "denied"),
    "basis": ("contract",),
    "rule": ("distance_gap",),
    "classification": ("federal",),
    "deadline": ("idr_window_end",),
    "days_remaining": ("2-5",),
    "stage": ("parse",),
    "reason": ("harness",),
    "topic": ("claimwatch.remittances",),
    "days_before": ("5",),
}


def catalog_metrics() -> list[Counter | Gauge | Histogram]:
    return [value for value in vars(catalog).values() if isinstance(value, Counter | Gauge | Histogram)]


def synthetic_registry() -> CollectorRegistry:
    """A fresh registry with the catalog's metrics (same names, types, labels, buckets) and sample values."""
    registry = CollectorRegistry()
    for metric in catalog_metrics():
        kwargs = {"labelnames": metric._labelnames, "registry": registry}
        if isinstance(metric, Histogram):
            kwargs["buckets"] = metric._upper_bounds
        clone = type(metric)(metric._name, metric._documentation, **kwargs)
        combinations = product(*(SAMPLE_LABELS[name] for name in metric._labelnames))
        for values in combinations:
            child = clone.labels(*values) if values else clone
            if isinstance(clone, Counter):
                child.inc(100)
            elif isinstance(clone, Gauge):
                child.set(time.time() if "timestamp" in metric._name else 1)
            else:
                child.observe(0.9 if "ratio" in metric._name else 0.05)
    return registry


@pytest.fixture(scope="module")
def synthetic_worker() -> Iterator[tuple[str, CollectorRegistry]]:
    registry = synthetic_registry()
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{port}", registry
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def prometheus(synthetic_worker, tmp_path_factory):
    target, _ = synthetic_worker
    with running_prometheus([target], tmp_path_factory.mktemp("prometheus")) as handle:
        wait_for_scrape(handle.url)
        yield handle


def test_harness_scrapes_the_claimwatch_registry(tmp_path):
    """The brief's proof: the real catalog REGISTRY, one counter incremented, read back through PromQL."""
    catalog.events_in.labels(topic="harness.proof").inc(3)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=catalog.REGISTRY)
    try:
        with running_prometheus([f"127.0.0.1:{port}"], tmp_path) as prom:
            result = wait_for(
                lambda: query(prom.url, 'claimwatch_events_in_total{topic="harness.proof"}'), timeout=30
            )
            assert float(result[0]["value"][1]) == 3.0
            assert result[0]["metric"]["job"] == "claimwatch"
            assert query(prom.url, 'up{job="claimwatch"}')[0]["value"][1] == "1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        catalog.events_in.remove("harness.proof")


def test_the_project_rules_are_loaded_and_evaluate_without_errors(prometheus):
    def evaluated_groups() -> list[dict]:
        groups = rule_groups(prometheus.url)
        done = all(not rule["lastEvaluation"].startswith("0001") for g in groups for rule in g["rules"])
        return groups if groups and done else []

    groups = wait_for(evaluated_groups, timeout=15)
    assert {"business", "pipeline"} <= {group["name"] for group in groups}
    errors = [(rule["name"], rule.get("lastError")) for g in groups for rule in g["rules"] if rule["health"] == "err"]
    assert not errors


def test_every_dashboard_query_runs_and_returns_data(prometheus):
    # Rates need two scrapes inside their 1m window.
    time.sleep(3)
    empty, failed = [], []
    for dashboard, panel, expr in dashboards.all_panel_queries():
        rendered = dashboards.render_query(expr)
        try:
            if not query(prometheus.url, rendered):
                empty.append((dashboard, panel, rendered))
        except PrometheusQueryError as error:
            failed.append((dashboard, panel, rendered, str(error)))
    assert not failed, failed
    assert not empty, empty


def test_queries_filtered_by_a_template_variable_still_match(prometheus):
    time.sleep(2)
    template = dashboards.window_total("claimwatch_underpaid_dollars_total", dashboards.CLAIM_LABEL_MATCHERS)
    # A multi-value selection arrives as a regex alternation.
    variables = {"payer_group": "harness_payer", "state": "(TX|CA)", "specialty_group": "cardiology"}
    result = query(prometheus.url, dashboards.render_query(template, variables))
    assert float(result[0]["value"][1]) == pytest.approx(100)
    assert query(prometheus.url, dashboards.render_query(template, {**variables, "state": "NY"})) == []


def test_every_template_variable_has_values(prometheus):
    for dashboard, name, metric, label in dashboards.all_variables():
        assert label_values(prometheus.url, label, metric), f"{dashboard}: ${name} has no values"


def test_underpayment_spike_fires_on_a_burst_for_one_payer(prometheus, synthetic_worker):
    _, registry = synthetic_worker
    claims = registry._names_to_collectors["claimwatch_claims_evaluated_total"]
    underpaid = registry._names_to_collectors["claimwatch_underpaid_dollars_total"]
    for state, specialty in (("TX", "cardiology"), ("CA", "oncology"), ("NY", "neurology")):
        claims.labels("spike_payer", state, specialty, "underpaid").inc(2)
        claims.labels("spike_payer", state, specialty, "as_expected").inc(1)
        underpaid.labels("spike_payer", state, specialty).inc(400)
    alerts = wait_for(
        lambda: [
            alert for alert in firing_alerts(prometheus.url, "UnderpaymentSpike")
            if alert["labels"].get("payer_group") == "spike_payer"
        ],
        timeout=30,
        message="UnderpaymentSpike did not fire for spike_payer",
    )
    alert = alerts[0]
    assert alert["labels"]["team"] == "contracting"
    assert alert["labels"]["severity"] == "critical"
    assert "$1200" in alert["annotations"]["summary"]
    assert alert["annotations"]["runbook"]
    # The synthetic payer of the other tests has 1 underpaid claim in 3 but only $100 short: no spike.
    others = firing_alerts(prometheus.url, "UnderpaymentSpike")
    assert not [alert for alert in others if alert["labels"]["payer_group"] == "harness_payer"]
