"""The live underpayment path: remittance -> claim context + pricing reference -> evaluation -> alert.

The claim state is written only after the broker acknowledged the evaluation and the alert (services.streams.
Batch): a crash in between replays the remittance, which re-sends the same alert (same alert id). A
re-delivered remittance (same event id, e.g. the same file ingested twice) is recognised by the claim
state and produces nothing.
"""

from __future__ import annotations

from decimal import Decimal

import faust

from schemas.claims import ClaimContext
from schemas.evaluation import ClaimEvaluation, ClaimState, UnderpaymentAlert
from schemas.remittance import RemittanceEvent
from services import metrics
from services.app import bytes_table
from services.pricing.reference import load_pricing_reference
from services.reference.live import register_builder
from services.streams import Batch
from services.underpayment.evaluate import apply_remittance

register_builder("pricing", load_pricing_reference)
claim_states = bytes_table("claim-states")


async def on_remittance(
    batch: Batch,
    event: faust.EventT,
    remittance: RemittanceEvent,
    context: ClaimContext | None,
    evaluation: ClaimEvaluation,
) -> None:
    key = remittance.claim_key.encode("utf-8")
    raw_state = batch.get(claim_states, key)
    state = ClaimState.model_validate_json(raw_state) if raw_state else None
    if state is not None and remittance.event_id in state.processed_event_ids:
        return
    new_state, alert, recovered = apply_remittance(state, evaluation)
    await batch.send("evaluations", remittance.claim_key, evaluation)
    if alert is not None:
        await batch.send("alerts.underpayment", remittance.claim_key, alert)
    batch.set(claim_states, key, new_state.model_dump_json().encode("utf-8"))
    batch.after(lambda: record_metrics(evaluation, alert, recovered))


def record_metrics(evaluation: ClaimEvaluation, alert: UnderpaymentAlert | None, recovered: Decimal) -> None:
    """Counters for one evaluation. Reversals count as claims only: their negated dollars would make a
    counter go down; the correction that follows is counted like any adjudication."""
    labels = metrics.claim_labels(evaluation.payer_group, evaluation.state, evaluation.specialty_group)
    metrics.claims_evaluated.labels(**labels, status=metrics.status_label(evaluation.status)).inc()
    if evaluation.ingested_at is not None:
        latency = (evaluation.evaluated_at - evaluation.ingested_at).total_seconds()
        metrics.remittance_to_alert_latency.observe(max(latency, 0.0))
    if recovered:
        metrics.recovered_dollars.labels(**labels).inc(metrics.dollars(recovered))
    if alert is not None:
        metrics.underpayment_alerts.labels(**labels).inc()
    if evaluation.status == "reversal":
        return
    totals = evaluation.totals
    metrics.billed_dollars.labels(**labels).inc(metrics.dollars(max(totals.billed, 0)))
    metrics.paid_dollars.labels(**labels).inc(metrics.dollars(max(totals.paid, 0)))
    metrics.underpaid_dollars.labels(**labels).inc(metrics.dollars(max(totals.underpaid, 0)))
    payer_group = metrics.payer_group_label(evaluation.payer_group)
    for line in evaluation.lines:
        metrics.lines_evaluated.labels(
            **labels, basis=metrics.basis_label(line.basis or "none"), status=metrics.status_label(line.status)
        ).inc()
        comparable = line.expected_amount is not None and line.status in {"underpaid", "as_expected", "overpaid"}
        if comparable and line.expected_amount > 0 and line.allowed_amount >= 0:
            metrics.expected_dollars.labels(**labels).inc(metrics.dollars(line.expected_amount))
            metrics.allowed_dollars.labels(**labels).inc(metrics.dollars(line.allowed_amount))
            metrics.paid_to_expected_ratio.labels(payer_group=payer_group).observe(
                metrics.dollars(line.allowed_amount / line.expected_amount)
            )
        if line.medicare_amount is not None and line.medicare_amount > 0 and line.status != "denied":
            metrics.medicare_benchmark_dollars.labels(**labels).inc(metrics.dollars(line.medicare_amount))
            metrics.medicare_compared_allowed_dollars.labels(**labels).inc(metrics.dollars(max(line.allowed_amount, 0)))
