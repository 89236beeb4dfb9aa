"""Every Prometheus metric of claimwatch, declared once (the metrics catalog).

Conventions:
- Names are ``claimwatch_<what>_<unit>``; money counters are ``*_dollars_total`` in US dollars. Amounts are
  Decimal everywhere in claimwatch; they become floats only here, at the exposition boundary, because the
  Prometheus text format has no decimal type. Exact amounts live in the evaluation/alert topics.
- Labels are bounded: ``payer_group``, ``state``, ``specialty_group``, ``basis``, ``status``, ``rule``,
  ``classification``, ``deadline``, ``days_remaining``, ``stage``, ``reason``, ``topic``. Every label value
  passes through a LabelGuard that folds unknown or excess values into ``other``. Claim, patient and trace
  ids are never labels.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)
OTHER = "other"
UNKNOWN = "unknown"

US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND "
    "OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR VI GU AS MP".split()
)
SPECIALTY_GROUPS = frozenset(
    {
        "primary_care", "cardiology", "general_surgery", "ophthalmology", "orthopedic_surgery", "dermatology",
        "gastroenterology", "neurology", "oncology", "podiatry", "psychiatry", "pulmonology", "urology",
        "allergy_immunology", "chiropractic", "ent", "ob_gyn", "nephrology", "physiatry",
        "cardiothoracic_surgery", "endocrinology", "infectious_diseases", "neurosurgery", "plastic_surgery",
        "radiation_oncology", "rheumatology", "vascular_surgery", "emergency_medicine", "radiology",
        "anesthesiology", "behavioral_health",
    }
)
BASES = frozenset({"sca", "contract", "oon_policy", "none"})
STATUSES = frozenset({"underpaid", "as_expected", "overpaid", "denied", "not_comparable", "reversal"})
RULES = frozenset({"distance_gap", "count_gap", "denial_gap", "ma_access", "recurrence", "value"})
CLASSIFICATIONS = frozenset({"federal", "state", "not_applicable", "unknown"})
DEADLINES = frozenset({"open_negotiation", "negotiation_period_end", "idr_window_start", "idr_window_end"})
DAYS_REMAINING_BUCKETS = ("overdue", "0-1", "2-5", "6-10", "11-30", "31+")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")


@dataclass
class LabelGuard:
    """Bounds the values of one label: a fixed allow-list, or the first ``max_values`` safe values seen."""

    name: str
    allowed: frozenset[str] | None = None
    max_values: int = 40
    _seen: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, value: object) -> str:
        if value is None or value == "":
            return UNKNOWN
        text = str(value)
        if self.allowed is not None:
            return text if text in self.allowed else OTHER
        if not _SAFE_VALUE.match(text):
            return OTHER
        with self._lock:
            if text in self._seen:
                return text
            if len(self._seen) >= self.max_values:
                return OTHER
            self._seen.add(text)
            return text


payer_group_label = LabelGuard("payer_group", max_values=40)
state_label = LabelGuard("state", allowed=US_STATES)
specialty_label = LabelGuard("specialty_group", allowed=SPECIALTY_GROUPS)
basis_label = LabelGuard("basis", allowed=BASES)
status_label = LabelGuard("status", allowed=STATUSES)
rule_label = LabelGuard("rule", allowed=RULES)
classification_label = LabelGuard("classification", allowed=CLASSIFICATIONS)
deadline_label = LabelGuard("deadline", allowed=DEADLINES)
stage_label = LabelGuard("stage", max_values=20)
reason_label = LabelGuard("reason", max_values=60)
topic_label = LabelGuard("topic", max_values=30)
days_before_label = LabelGuard("days_before", max_values=10)

CLAIM_LABELS = ("payer_group", "state", "specialty_group")


def days_remaining_bucket(days: int) -> str:
    if days < 0:
        return "overdue"
    if days <= 1:
        return "0-1"
    if days <= 5:
        return "2-5"
    if days <= 10:
        return "6-10"
    if days <= 30:
        return "11-30"
    return "31+"


def dollars(amount: Decimal | int | None) -> float:
    """Convert an exact amount to the float Prometheus stores (the only place money becomes a float)."""
    return 0.0 if amount is None else float(amount)  # float ok: Prometheus exposition boundary


# --- pipeline health -------------------------------------------------------------------------------
events_in = Counter(
    "claimwatch_events_in_total", "Messages consumed, by topic.", ["topic"], registry=REGISTRY
)
events_out = Counter(
    "claimwatch_events_out_total", "Messages produced, by topic.", ["topic"], registry=REGISTRY
)
dead_letters = Counter(
    "claimwatch_dead_letters_total", "Rejected inputs sent to the dead-letter topic.", ["stage", "reason"],
    registry=REGISTRY,
)
consumer_lag = Gauge(
    "claimwatch_consumer_lag_messages", "Messages not yet consumed by this worker, by topic.", ["topic"],
    registry=REGISTRY,
)
reference_files = Gauge(
    "claimwatch_reference_files", "Reference files currently loaded by this worker, by topic.", ["topic"],
    registry=REGISTRY,
)
reference_updated = Gauge(
    "claimwatch_reference_last_update_timestamp_seconds", "When this worker last rebuilt its reference data.",
    registry=REGISTRY,
)
worker_up = Gauge("claimwatch_worker_up", "1 while the worker runs its agents.", registry=REGISTRY)

# --- underpayment ----------------------------------------------------------------------------------
claims_evaluated = Counter(
    "claimwatch_claims_evaluated_total", "Claims evaluated, by outcome.", [*CLAIM_LABELS, "status"],
    registry=REGISTRY,
)
lines_evaluated = Counter(
    "claimwatch_lines_evaluated_total", "Service lines evaluated, by basis and outcome.",
    [*CLAIM_LABELS, "basis", "status"], registry=REGISTRY,
)
billed_dollars = Counter(
    "claimwatch_billed_dollars_total", "Billed (charge) dollars of evaluated claims.", CLAIM_LABELS,
    registry=REGISTRY,
)
expected_dollars = Counter(
    "claimwatch_expected_dollars_total", "Expected allowed dollars of comparable lines.", CLAIM_LABELS,
    registry=REGISTRY,
)
allowed_dollars = Counter(
    "claimwatch_allowed_dollars_total", "Allowed dollars of comparable lines.", CLAIM_LABELS, registry=REGISTRY
)
paid_dollars = Counter(
    "claimwatch_paid_dollars_total", "Paid dollars of evaluated claims.", CLAIM_LABELS, registry=REGISTRY
)
underpaid_dollars = Counter(
    "claimwatch_underpaid_dollars_total", "Shortfall dollars (expected - allowed) of underpaid lines.",
    CLAIM_LABELS, registry=REGISTRY,
)
recovered_dollars = Counter(
    "claimwatch_recovered_dollars_total", "Dollars recovered by later remittances of an underpaid claim.",
    CLAIM_LABELS, registry=REGISTRY,
)
medicare_benchmark_dollars = Counter(
    "claimwatch_medicare_benchmark_dollars_total",
    "Medicare PFS amount of lines where one is known (denominator of 'allowed as % of Medicare').",
    CLAIM_LABELS, registry=REGISTRY,
)
medicare_compared_allowed_dollars = Counter(
    "claimwatch_medicare_compared_allowed_dollars_total",
    "Allowed dollars of the same lines (numerator of 'allowed as % of Medicare').",
    CLAIM_LABELS, registry=REGISTRY,
)
underpayment_alerts = Counter(
    "claimwatch_underpayment_alerts_total", "Underpayment alerts emitted.", CLAIM_LABELS, registry=REGISTRY
)
paid_to_expected_ratio = Histogram(
    "claimwatch_paid_to_expected_ratio", "Allowed / expected per comparable line.", ["payer_group"],
    buckets=(0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 2.0), registry=REGISTRY,
)
remittance_to_alert_latency = Histogram(
    "claimwatch_remittance_to_alert_latency_seconds",
    "From ingest (event ingested_at) to the evaluation being emitted by the worker.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0), registry=REGISTRY,
)

# --- SCA opportunities -----------------------------------------------------------------------------
sca_opportunities = Counter(
    "claimwatch_sca_opportunities_total", "SCA opportunities emitted or updated.",
    ["rule", "state", "specialty_group"], registry=REGISTRY,
)
sca_opportunities_open = Gauge(
    "claimwatch_sca_opportunities_open", "Distinct open SCA opportunities held by this worker.",
    ["rule", "state", "specialty_group"], registry=REGISTRY,
)
sca_opportunity_dollars = Gauge(
    "claimwatch_sca_opportunity_billed_dollars", "Billed dollars behind open SCA opportunities.",
    ["rule", "state", "specialty_group"], registry=REGISTRY,
)

# --- No Surprises Act ------------------------------------------------------------------------------
nsa_cases_open = Gauge(
    "claimwatch_nsa_cases_open", "Open NSA cases by classification, next deadline and business days remaining.",
    ["classification", "deadline", "days_remaining"], registry=REGISTRY,
)
nsa_reminders = Counter(
    "claimwatch_nsa_reminders_total", "NSA deadline reminders emitted.", ["deadline", "days_before"],
    registry=REGISTRY,
)
nsa_claims_classified = Counter(
    "claimwatch_nsa_claims_classified_total", "Remittances classified for the No Surprises Act.",
    ["classification"], registry=REGISTRY,
)


def claim_labels(payer_group: object, state: object, specialty_group: object) -> dict[str, str]:
    return {
        "payer_group": payer_group_label(payer_group),
        "state": state_label(state),
        "specialty_group": specialty_label(specialty_group),
    }


def metric_names() -> list[str]:
    """Every metric family name in the catalog (as Prometheus exposes it, without suffixes)."""
    return sorted({metric.name for metric in REGISTRY.collect() if metric.name.startswith("claimwatch_")})


def series_names() -> set[str]:
    """Every sample name the registry can expose (with _total, _bucket, _sum, _count suffixes)."""
    names: set[str] = set()
    for family in _families():
        if not family.name.startswith("claimwatch_"):
            continue
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


def _families() -> Iterable:
    return REGISTRY.collect()
