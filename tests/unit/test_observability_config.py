"""Prometheus and Alertmanager configuration: the real tools check it, and its parts stay consistent.

promtool / amtool tests skip with a reason when the Debian packages are absent
(deploy/prometheus/install.sh installs them in CI); the structural checks always run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from services import metrics
from services.dashboards import PROMETHEUS_SERIES, promql_metric_names
from tests.prometheus_support import (
    alertmanager_alerts,
    alertmanager_binary,
    post_alerts,
    running_alertmanager,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
METRICS_DOC = ROOT / "docs" / "metrics.md"

TEAMS = {"revenue-cycle", "contracting", "platform"}
SEVERITIES = {"critical", "warning"}
EXPECTED_ALERTS = {
    "UnderpaymentSpike",
    "UnderpaymentRateHigh",
    "SCAOpportunityNew",
    "NSAWindowClosing",
    "DeadLettersRising",
    "PipelineStalled",
    "ConsumerLagHigh",
    "WorkerDown",
}
BUSINESS_TEAMS = {"revenue-cycle", "contracting"}

PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found: install the Debian package 'prometheus' (deploy/prometheus/install.sh)",
)
needs_amtool = pytest.mark.skipif(
    AMTOOL is None,
    reason="amtool not found: install the Debian package 'prometheus-alertmanager' (deploy/prometheus/install.sh)",
)


def run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def rule_groups() -> list[dict]:
    return [group for path in RULE_FILES for group in load(path)["groups"]]


def alert_rules() -> list[dict]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def recorded_names() -> set[str]:
    return {rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule}


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)


# --- the real tools ---------------------------------------------------------------------------------------
@needs_promtool
def test_promtool_check_rules():
    result = run(PROMTOOL, "check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_of_the_rules():
    assert RULE_TESTS
    result = run(PROMTOOL, "test", "rules", *RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_check_config_resolves_the_rule_files():
    result = run(PROMTOOL, "check", "config", PROMETHEUS_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_FILES)} rule files found" in result.stdout


@needs_amtool
def test_amtool_check_config():
    result = run(AMTOOL, "check-config", ALERTMANAGER_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr


def route(**labels: str) -> str:
    result = run(AMTOOL, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
                 *(f"{name}={value}" for name, value in labels.items()))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


@needs_amtool
@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"alertname": "UnderpaymentSpike", "team": "contracting", "payer_group": "acme"}, "contracting"),
        ({"alertname": "UnderpaymentRateHigh", "team": "revenue-cycle", "payer_group": "acme"}, "revenue-cycle"),
        ({"alertname": "SCAOpportunityNew", "team": "contracting", "state": "CA"}, "contracting-west"),
        ({"alertname": "SCAOpportunityNew", "team": "contracting", "state": "TX"}, "contracting"),
        ({"alertname": "NSAWindowClosing", "team": "contracting", "severity": "critical"}, "contracting"),
        ({"alertname": "WorkerDown", "team": "platform", "severity": "critical"}, "platform"),
        ({"alertname": "SomethingElse"}, "platform"),
    ],
)
def test_alertmanager_routes_by_team_and_state(labels, receiver):
    assert route(**labels) == receiver


@needs_amtool
def test_every_alert_reaches_its_teams_receiver():
    for rule in alert_rules():
        labels = {"alertname": rule["alert"], **rule["labels"]}
        if "SCA" in rule["alert"]:
            labels["state"] = "TX"
        assert route(**labels) == rule["labels"]["team"], rule["alert"]


@pytest.mark.prometheus
@pytest.mark.skipif(alertmanager_binary() is None, reason="alertmanager not found (Debian 'prometheus-alertmanager')")
def test_pipeline_alerts_inhibit_business_alerts_in_a_real_alertmanager(tmp_path):
    business = {"alertname": "UnderpaymentSpike", "team": "contracting", "severity": "critical", "payer_group": "a"}
    lag = {"alertname": "ConsumerLagHigh", "team": "platform", "severity": "warning", "job": "claimwatch"}
    stalled = {"alertname": "PipelineStalled", "team": "platform", "severity": "critical", "job": "claimwatch"}
    with running_alertmanager(tmp_path) as am:
        post_alerts(am.url, [{"labels": business}, {"labels": lag}])

        def states() -> dict[str, dict]:
            return {alert["labels"]["alertname"]: alert["status"] for alert in alertmanager_alerts(am.url)}

        before = wait_for(lambda: len(states()) == 2 and states(), timeout=15)
        assert before["UnderpaymentSpike"]["state"] == "active"
        post_alerts(am.url, [{"labels": stalled}])
        after = wait_for(
            lambda: states().get("UnderpaymentSpike", {}).get("inhibitedBy") and states(), timeout=15,
            message="PipelineStalled did not inhibit UnderpaymentSpike",
        )
        assert after["UnderpaymentSpike"]["state"] == "suppressed"
        assert after["ConsumerLagHigh"]["state"] == "active"  # platform alerts stay visible
        assert after["PipelineStalled"]["state"] == "active"


# --- structure and consistency (no tools needed) ----------------------------------------------------------
def test_prometheus_scrapes_the_workers_and_sends_to_alertmanager():
    config = load(PROMETHEUS_CONFIG)
    assert config["global"]["scrape_interval"] == "15s"
    assert config["rule_files"] == ["rules/*.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [t for static in jobs["claimwatch"]["static_configs"] for t in static["targets"]]
    assert targets == ["worker:6066"]
    alertmanagers = [
        t for am in config["alerting"]["alertmanagers"] for static in am["static_configs"] for t in static["targets"]
    ]
    assert alertmanagers == ["alertmanager:9093"]


def test_rule_groups_and_the_expected_alerts():
    assert [group["name"] for group in rule_groups()] == ["business", "pipeline"]
    assert {rule["alert"] for rule in alert_rules()} == EXPECTED_ALERTS


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: f"{rule['alert']}-{rule['labels']['severity']}")
def test_every_alert_has_labels_and_a_runbook(rule):
    assert rule["labels"]["severity"] in SEVERITIES
    assert rule["labels"]["team"] in TEAMS
    annotations = rule["annotations"]
    for key in ("summary", "description", "runbook"):
        assert annotations.get(key, "").strip(), f"{rule['alert']}: no {key}"
    assert annotations["runbook"].count(".") >= 2, "a runbook is a few sentences on what to do"
    assert annotations["dashboard"].startswith("/d/claimwatch-")


def test_business_and_pipeline_teams():
    for group in rule_groups():
        teams = {rule["labels"]["team"] for rule in group["rules"] if "alert" in rule}
        assert teams <= (BUSINESS_TEAMS if group["name"] == "business" else {"platform"}), group["name"]


def test_underpayment_spike_fires_without_delay():
    """The integration test runs a short stream: the spike rule must not wait more than a minute."""
    (spike,) = [rule for rule in alert_rules() if rule["alert"] == "UnderpaymentSpike"]
    assert seconds(spike.get("for", "0s")) <= 60


def test_rules_use_only_catalog_metrics():
    known = metrics.series_names() | PROMETHEUS_SERIES | recorded_names()
    for group in rule_groups():
        for rule in group["rules"]:
            unknown = promql_metric_names(rule["expr"]) - known
            assert not unknown, f"{rule.get('alert') or rule.get('record')}: {unknown}"


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    fires, quiet = set(), set()
    for path in RULE_TESTS:
        for case in load(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert EXPECTED_ALERTS - fires == set(), "alerts never tested firing"
    assert EXPECTED_ALERTS - quiet == set(), "alerts never tested quiet"


def test_alertmanager_has_a_receiver_per_team_and_placeholder_urls():
    config = load(ALERTMANAGER_CONFIG)
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    assert TEAMS <= set(receivers)
    for receiver in receivers.values():
        for webhook in receiver.get("webhook_configs", []):
            assert webhook["url"].startswith("http://127.0.0.1:9099/")
        assert "email_configs" not in receiver
    assert config["route"]["group_by"] == ["alertname", "payer_group", "state"]


def test_inhibition_silences_business_alerts_while_the_pipeline_is_broken():
    config = load(ALERTMANAGER_CONFIG)
    (rule,) = [r for r in config["inhibit_rules"] if "PipelineStalled" in " ".join(r["source_matchers"])]
    assert rule["source_matchers"] == ['alertname=~"PipelineStalled|WorkerDown"']
    assert rule["target_matchers"] == ['team=~"revenue-cycle|contracting"']
    named = {m for r in config["inhibit_rules"] for m in re.findall(r"[A-Z]\w+", " ".join(r["source_matchers"]))}
    assert named <= EXPECTED_ALERTS


def test_docs_list_every_alert_and_every_metric_with_its_type_and_labels():
    doc = METRICS_DOC.read_text()
    for alert in EXPECTED_ALERTS:
        assert f"`{alert}`" in doc, alert
        assert f"**`{alert}`**" in doc, f"{alert}: no runbook section"
    rows = {
        name: (kind, set(re.findall(r"`(\w+)`", labels)))
        for name, kind, labels in re.findall(r"^\| `(claimwatch_\w+)` \| (\w+) \| ([^|]*) \|", doc, re.M)
    }
    for family in (f for f in metrics.REGISTRY.collect() if f.name.startswith("claimwatch_")):
        exposed = family.name + "_total" if family.type == "counter" else family.name
        assert exposed in rows, f"{exposed} is not in the docs/metrics.md table"
        assert rows[exposed][0] == family.type, exposed
    catalog_labels = {
        metric._name: set(metric._labelnames)
        for metric in vars(metrics).values()
        if isinstance(metric, Counter | Gauge | Histogram)
    }
    for name, (_, labels) in rows.items():
        assert labels == catalog_labels[name.removesuffix("_total")], f"{name}: labels differ from the catalog"
