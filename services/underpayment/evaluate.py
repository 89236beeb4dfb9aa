"""Underpayment evaluation (pure): expected vs allowed per line, classification, and claim netting.

What is compared, per service line:

- allowed: AMT*B6 (``reported_allowed_amount``) when the payer sent it, else paid + PR adjustments
  (``derived_allowed_amount``). When both exist and differ by more than $0.01 (after the sequestration
  rule below), ``allowed_mismatch`` is set and the reported amount is used.
- sequestration: CO-253 (2% Medicare sequestration, also taken by Medicare Advantage plans) reduces the
  *payment*, not the allowed amount, and benchmarks (% of Medicare, contracts) are pre-sequestration. So
  the compared amount is the allowed amount *before* sequestration: paid + PR + CO-253 when derived; for
  AMT*B6, the reported value when it already equals paid + PR + CO-253 (the usual case), else reported +
  CO-253 when it equals paid + PR (a payer that reported it net of sequestration).
- a line is underpaid when allowed < expected - tolerance, overpaid when allowed > expected + tolerance,
  else as expected; tolerance = max(tolerance_amount, tolerance_pct% of expected) from the payer's OON
  policy (payer_policies.csv, the payer's row or '*'), $1.00 / 0% when there is no policy.

Classification (line, in this order): reversal (CLP02=22); not_comparable for a secondary/tertiary
payer (CLP02 2, 3, 20, 21 or any OA-23), a claim not ours (23) or a predetermination (25); denied (CLP02=4,
or nothing paid and nothing allowed with a CARC other than pricing reductions); not_comparable when
there is no expected amount; else underpaid / as_expected / overpaid. The claim is underpaid when any
line is, else overpaid when any line is, else as_expected when any line is, else denied when any line is,
else not_comparable (a reversal claim is ``reversal``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

from schemas.claims import ClaimContext
from schemas.evaluation import (
    Adjudication,
    AlertLine,
    ClaimEvaluation,
    ClaimState,
    ClaimTotals,
    LineEvaluation,
    UnderpaymentAlert,
)
from schemas.remittance import Adjustment, RemittanceEvent, ServiceLine
from services.pricing.engine import ClaimPrice, LinePrice, price_claim
from services.pricing.medicare import cents
from services.pricing.reference import DEFAULT_TOLERANCE_AMOUNT, DEFAULT_TOLERANCE_PCT, PricingReference

ZERO = Decimal(0)
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
SEQUESTRATION_CARC = "253"
SECONDARY_PAYER_CARC = "23"
SECONDARY_STATUS_CODES = {"2", "3", "20", "21"}
NOT_COMPARABLE_STATUS = {"23": "not_our_claim", "25": "predetermination"}
DENIED_STATUS = "4"
REVERSAL_STATUS = "22"
# CARCs that reduce a payment without denying the service (a zero-allowed line with only these is not
# a denial): 1/2/3 deductible/coinsurance/copay, 45 fee schedule, 59 multiple procedure rules,
# 94 processed in excess of charges, 131 negotiated discount, 253 sequestration.
PRICING_REDUCTION_CARCS = frozenset({"1", "2", "3", "45", "59", "94", "131", "253"})


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def evaluation_id_for(event_id: str) -> str:
    return f"eval-{_hash('evaluation', event_id)}"


def alert_id_for(claim_key: str, revision: int) -> str:
    return f"alert-{_hash('underpayment', claim_key, str(revision))}"


def _sum(adjustments: list[Adjustment], reason: str, group: str | None = None) -> Decimal:
    return sum(
        (adj.amount for adj in adjustments if adj.reason_code == reason and (group is None or adj.group_code == group)),
        ZERO,
    )


def compared_allowed(line: ServiceLine) -> tuple[Decimal, str, bool, Decimal]:
    """(allowed before sequestration, source 'reported'|'derived', mismatch flag, CO-253 amount)."""
    sequestration = _sum(line.adjustments, SEQUESTRATION_CARC)
    derived = line.derived_allowed_amount
    reported = line.reported_allowed_amount
    if reported is None:
        return derived + sequestration, "derived", False, sequestration
    if abs(reported - (derived + sequestration)) <= CENT:
        return reported, "reported", False, sequestration
    if sequestration and abs(reported - derived) <= CENT:
        return reported + sequestration, "reported", False, sequestration
    return reported, "reported", True, sequestration


def _claim_reason(event: RemittanceEvent) -> str | None:
    status = event.status_code
    if status in SECONDARY_STATUS_CODES:
        return "secondary_payer"
    if any(adj.group_code == "OA" and adj.reason_code == SECONDARY_PAYER_CARC for adj in event.adjustments):
        return "secondary_payer"
    if any(
        adj.group_code == "OA" and adj.reason_code == SECONDARY_PAYER_CARC
        for line in event.service_lines
        for adj in line.adjustments
    ):
        return "secondary_payer"
    return NOT_COMPARABLE_STATUS.get(status)


def _is_denied_line(line: ServiceLine, allowed: Decimal) -> bool:
    if line.paid_amount != 0 or allowed != 0:
        return False
    return any(adj.reason_code not in PRICING_REDUCTION_CARCS for adj in line.adjustments)


def evaluate(
    event: RemittanceEvent,
    context: ClaimContext | None,
    reference: PricingReference,
    *,
    evaluated_at: dt.datetime | None = None,
    prices: ClaimPrice | None = None,
) -> ClaimEvaluation:
    """Price ``event`` (unless ``prices`` is given) and compare every line with its allowed amount."""
    prices = prices or price_claim(event, context, reference)
    facts = prices.facts
    payer_info = reference.payer(facts.payer_id)
    policy = reference.policy(facts.payer_id)
    tolerance_amount = policy.tolerance_amount if policy else DEFAULT_TOLERANCE_AMOUNT
    tolerance_pct = policy.tolerance_pct if policy else DEFAULT_TOLERANCE_PCT
    claim_reason = _claim_reason(event)
    reversal = event.status_code == REVERSAL_STATUS
    by_index = {price.line_index: price for price in prices.lines}

    lines: list[LineEvaluation] = []
    for line in event.service_lines:
        price = by_index[line.line_index]
        lines.append(_evaluate_line(line, price, event, claim_reason, reversal, tolerance_amount, tolerance_pct))

    status, reason = _claim_status(event, lines, claim_reason, reversal)
    notes: list[str] = []
    if not event.service_lines:
        notes.append("no service lines (SVC) in the remittance: nothing to compare")
    if any(adj.group_code == "PR" for adj in event.adjustments) and event.service_lines:
        notes.append("claim-level PR adjustments are not part of the lines' derived allowed amounts")
    if facts.place_of_service is None:
        notes.append("place of service unknown: lines priced at the non-facility rate")
    if lines:
        billed = sum((line.charge_amount for line in lines), ZERO)
        paid = sum((line.paid_amount for line in lines), ZERO)
        allowed = sum((line.allowed_amount for line in lines), ZERO)
    else:
        billed, paid = event.charge_amount, event.paid_amount
        allowed = (
            event.reported_allowed_amount
            if event.reported_allowed_amount is not None
            else (event.paid_amount + sum((adj.amount for adj in event.adjustments if adj.group_code == "PR"), ZERO))
        )
    totals = ClaimTotals(
        billed=billed,
        expected=sum((line.expected_amount for line in lines if line.expected_amount is not None), ZERO),
        allowed=allowed,
        paid=paid,
        underpaid=sum((line.underpaid_amount for line in lines), ZERO),
    )
    state = context.state if context and context.state else _state_from_zip(reference, facts, event)
    return ClaimEvaluation(
        evaluation_id=evaluation_id_for(event.event_id),
        event_id=event.event_id,
        claim_key=event.claim_key,
        payer_id=facts.payer_id,
        payer_name=(payer_info.name if payer_info else event.payer.name),
        payer_group=reference.payer_group(facts.payer_id),
        payer_claim_id=event.payer_claim_id,
        patient_control_number=event.patient_control_number,
        payee_npi=event.payee.npi,
        claim_status_code=event.status_code,
        claim_filing_indicator=event.claim_filing_indicator,
        status=status,
        reason=reason,
        state=state,
        specialty_group=context.specialty_group if context else None,
        place_of_service_code=facts.place_of_service,
        context_joined=context is not None,
        service_date_from=event.service_date_from,
        payment_date=event.payment.date,
        totals=totals,
        lines=lines,
        notes=notes,
        ingested_at=event.ingested_at,
        evaluated_at=evaluated_at or dt.datetime.now(dt.UTC),
    )


def _state_from_zip(reference: PricingReference, facts, event: RemittanceEvent) -> str | None:
    if not facts.zip_code:
        return None
    date = facts.default_date
    year = reference.medicare.years.get(date.year) if date else None
    if year is None and reference.medicare.years:
        year = reference.medicare.years[max(reference.medicare.years)]
    release = year.zip_release(date) if year else None
    entry = release.zips.get(facts.zip_code) if release else None
    return entry.state if entry else None


def _evaluate_line(
    line: ServiceLine,
    price: LinePrice,
    event: RemittanceEvent,
    claim_reason: str | None,
    reversal: bool,
    tolerance_amount: Decimal,
    tolerance_pct: Decimal,
) -> LineEvaluation:
    allowed, source, mismatch, sequestration = compared_allowed(line)
    expected = price.expected
    medicare = price.medicare
    variance = allowed - expected if expected is not None else None
    tolerance = None
    underpaid = ZERO
    reason = None
    if reversal:
        status = "reversal"
    elif claim_reason is not None:
        status, reason = "not_comparable", claim_reason
    elif event.status_code == DENIED_STATUS:
        status, reason = "denied", "claim_denied"
    elif _is_denied_line(line, allowed):
        status, reason = "denied", "denied"
    elif expected is None:
        status, reason = "not_comparable", price.reason or "missing_reference"
    else:
        tolerance = max(tolerance_amount, cents(expected * tolerance_pct / HUNDRED))
        if allowed < expected - tolerance:
            status, underpaid = "underpaid", expected - allowed
        elif allowed > expected + tolerance:
            status = "overpaid"
        else:
            status = "as_expected"
    return LineEvaluation(
        line_index=line.line_index,
        procedure_code=line.procedure_code,
        modifiers=list(line.modifiers),
        original_procedure_code=line.original_procedure_code,
        service_date=price.service_date,
        units=line.units,
        charge_amount=line.charge_amount,
        paid_amount=line.paid_amount,
        reported_allowed_amount=line.reported_allowed_amount,
        derived_allowed_amount=line.derived_allowed_amount,
        allowed_source=source,
        allowed_mismatch=mismatch,
        sequestration_amount=sequestration,
        allowed_amount=allowed,
        expected_amount=expected,
        basis=price.basis,
        rate_term=price.rate_term,
        medicare_unit_amount=medicare.amount if medicare is not None else None,
        medicare_amount=price.medicare_line_amount * (-1 if reversal else 1)
        if price.medicare_line_amount is not None
        else None,
        medicare_locality=medicare.locality_key if medicare is not None and medicare.amount is not None else None,
        facility=price.facility,
        explanation=price.explanation,
        variance=variance,
        tolerance_amount=tolerance,
        underpaid_amount=underpaid,
        status=status,
        reason=reason,
        adjustment_codes=[f"{adj.group_code}-{adj.reason_code}" for adj in line.adjustments],
    )


def _claim_status(event, lines: list[LineEvaluation], claim_reason, reversal) -> tuple[str, str | None]:
    if reversal:
        return "reversal", None
    if claim_reason is not None:
        return "not_comparable", claim_reason
    if event.status_code == DENIED_STATUS:
        return "denied", "claim_denied"
    statuses = {line.status for line in lines}
    for status in ("underpaid", "overpaid", "as_expected", "denied"):
        if status in statuses:
            return status, None
    if not lines:
        return "not_comparable", "no_service_lines"
    reasons = sorted({line.reason for line in lines if line.reason})
    return "not_comparable", reasons[0] if len(reasons) == 1 else ("mixed" if reasons else None)


# ---------------------------------------------------------------------------------------------------
# Claim state: reversals, corrections, re-deliveries, recoveries


def _adjudication(evaluation: ClaimEvaluation) -> Adjudication:
    return Adjudication(
        event_id=evaluation.event_id,
        evaluation_id=evaluation.evaluation_id,
        claim_status_code=evaluation.claim_status_code,
        billed=evaluation.totals.billed,
        allowed=evaluation.totals.allowed,
        paid=evaluation.totals.paid,
        status=evaluation.status,
    )


def _reverses(reversal: Adjudication, original: Adjudication) -> bool:
    return original.billed == -reversal.billed and original.paid == -reversal.paid


def apply_remittance(
    state: ClaimState | None, evaluation: ClaimEvaluation
) -> tuple[ClaimState, UnderpaymentAlert | None, Decimal]:
    """Fold one claim evaluation into the claim's state.

    Returns (new state, alert or None, recovered dollars added by this event (>= 0)). Rules:

    - an event already processed (same event_id) changes nothing and alerts nothing;
    - a reversal (CLP02=22) cancels the adjudication it negates (same billed and paid, negated): the most
      recent matching one; when none has arrived yet it waits in ``pending_reversals`` and cancels the
      matching adjudication when that arrives. A reversal of the current adjudication leaves the claim
      with no net adjudication (``net_status`` "reversed") until a correction arrives;
    - any other event is the payer's current adjudication of the claim and becomes ``net`` (a correction
      after a reversal, or a re-adjudication that replaces the previous one: X12 corrections always
      reverse then re-send, a bare second remit is taken as a replacement);
    - recovery: when a new adjudication allows more than the previous adjudication of the claim (the most
      recent earlier one, reversed or replaced), the increase in allowed dollars is recovered;
    - alert: when the net adjudication is underpaid and its shortfall differs from the last alerted
      shortfall. A reversal + correction with the same shortfall therefore does not alert again; a
      correction that changes the shortfall alerts with the new net amount. A net adjudication that is
      no longer underpaid clears the last alerted amount (a later underpayment alerts again).
      alert_id = hash(claim_key, revision), the revision counting net changes.
    """
    state = state or ClaimState(claim_key=evaluation.claim_key)
    if evaluation.event_id in state.processed_event_ids:
        return state, None, ZERO
    processed = [*state.processed_event_ids, evaluation.event_id]
    adjudications = list(state.adjudications)
    pending = list(state.pending_reversals)
    record = _adjudication(evaluation)
    net = state.net
    net_status = state.net_status
    revision = state.revision
    last_alerted = state.last_alerted_underpaid
    recovered = ZERO

    if evaluation.status == "reversal":
        target = next(
            (
                index
                for index in range(len(adjudications) - 1, -1, -1)
                if adjudications[index].reversed_by is None and _reverses(record, adjudications[index])
            ),
            None,
        )
        if target is None:
            pending.append(record)
        else:
            original = adjudications[target]
            adjudications[target] = original.model_copy(update={"reversed_by": record.event_id})
            if net is not None and net.event_id == original.event_id:
                net, net_status, revision = None, "reversed", revision + 1
        new_state = state.model_copy(
            update={
                "processed_event_ids": processed,
                "adjudications": adjudications,
                "pending_reversals": pending,
                "net": net,
                "net_status": net_status,
                "revision": revision,
            }
        )
        return new_state, None, ZERO

    matching_pending = next((item for item in pending if _reverses(item, record)), None)
    if matching_pending is not None:
        # The reversal of this adjudication arrived first: record both, the net position is unchanged.
        pending.remove(matching_pending)
        adjudications.append(record.model_copy(update={"reversed_by": matching_pending.event_id}))
        new_state = state.model_copy(
            update={"processed_event_ids": processed, "adjudications": adjudications, "pending_reversals": pending}
        )
        return new_state, None, ZERO

    previous = adjudications[-1] if adjudications else None
    if previous is not None and previous.allowed < record.allowed:
        recovered = record.allowed - previous.allowed
    if net is not None:
        adjudications = [
            item.model_copy(update={"superseded_by": record.event_id}) if item.event_id == net.event_id else item
            for item in adjudications
        ]
    adjudications.append(record)
    net, net_status, revision = evaluation, evaluation.status, revision + 1
    alert = None
    if evaluation.status == "underpaid":
        shortfall = evaluation.totals.underpaid
        if last_alerted is None or shortfall != last_alerted:
            alert = _alert(evaluation, revision, adjudications, last_alerted, state.recovered_total + recovered)
            last_alerted = shortfall
    elif evaluation.status in ("as_expected", "overpaid"):
        last_alerted = None
    new_state = state.model_copy(
        update={
            "processed_event_ids": processed,
            "adjudications": adjudications,
            "pending_reversals": pending,
            "net": net,
            "net_status": net_status,
            "revision": revision,
            "last_alerted_underpaid": last_alerted,
            "recovered_total": state.recovered_total + recovered,
        }
    )
    return new_state, alert, recovered


def _alert(
    evaluation: ClaimEvaluation,
    revision: int,
    adjudications: list[Adjudication],
    previously_alerted: Decimal | None,
    recovered_total: Decimal,
) -> UnderpaymentAlert:
    lines = [
        AlertLine(
            line_index=line.line_index,
            procedure_code=line.procedure_code,
            modifiers=line.modifiers,
            service_date=line.service_date,
            units=line.units,
            billed=line.charge_amount,
            expected=line.expected_amount,
            allowed=line.allowed_amount,
            paid=line.paid_amount,
            variance=line.variance,
            underpaid=line.underpaid_amount,
            status=line.status,
            basis=line.basis,
            explanation=line.explanation,
        )
        for line in evaluation.lines
    ]
    underpaid_lines = [line for line in evaluation.lines if line.status == "underpaid"]
    totals = evaluation.totals
    summary = (
        f"{evaluation.payer_name or evaluation.payer_id or 'payer'} claim {evaluation.payer_claim_id or '-'} "
        f"(provider claim {evaluation.patient_control_number}): {len(underpaid_lines)} of {len(lines)} line(s) "
        f"underpaid by {totals.underpaid} in total; expected {totals.expected}, allowed {totals.allowed}"
    )
    if previously_alerted is not None:
        summary += f" (previous alert: {previously_alerted})"
    return UnderpaymentAlert(
        alert_id=alert_id_for(evaluation.claim_key, revision),
        claim_key=evaluation.claim_key,
        revision=revision,
        evaluation_id=evaluation.evaluation_id,
        event_ids=[item.event_id for item in adjudications],
        payer_id=evaluation.payer_id,
        payer_group=evaluation.payer_group,
        payer_claim_id=evaluation.payer_claim_id,
        patient_control_number=evaluation.patient_control_number,
        state=evaluation.state,
        specialty_group=evaluation.specialty_group,
        service_date_from=evaluation.service_date_from,
        billed=totals.billed,
        expected=totals.expected,
        allowed=totals.allowed,
        paid=totals.paid,
        underpaid_amount=totals.underpaid,
        previously_alerted_amount=previously_alerted,
        recovered_total=recovered_total,
        lines=lines,
        summary=summary,
        created_at=evaluation.evaluated_at,
    )
