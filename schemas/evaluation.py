"""The evaluations and alerts.underpayment topics, and the per-claim state of the underpayment agent.

A ClaimEvaluation is what the pure core says about ONE remittance event: per service line the expected
amount (with its basis and a human-readable explanation), the allowed amount it was compared with, the
variance and a status. ClaimState nets successive events of the same claim (reversal, correction,
recovery) and UnderpaymentAlert is emitted from that net view. None of these models carries patient
data: no patient key, no names (patient_control_number is the provider's own claim id).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import Field

from schemas.common import Model, Money, Quantity

SCHEMA_VERSION = 1

Status = Literal["underpaid", "as_expected", "overpaid", "denied", "not_comparable", "reversal"]
Basis = Literal["sca", "contract", "oon_policy"]
RateType = Literal["fixed", "pct_billed", "pct_medicare", "pct_ucr", "benchmark"]
AllowedSource = Literal["reported", "derived"]

STATUSES: tuple[str, ...] = ("underpaid", "as_expected", "overpaid", "denied", "not_comparable", "reversal")


class RateTerm(Model):
    """The term that produced an expected amount, as written in the reference file."""

    source: str = Field(description="Reference file and line, e.g. fee_schedules.csv:12 (or scas.csv:3 (SCA-7)).")
    rate_type: RateType
    rate: Quantity | None = Field(None, description="Dollars for fixed; percent (140 = 140%) for pct_* types.")
    ucr_percentile: int | None = None
    lesser_of_billed: bool = False
    escalator_pct: Quantity | None = Field(None, description="Annual escalator in percent.")
    escalator_base_date: dt.date | None = None
    escalated_rate: Quantity | None = Field(None, description="Rate after the escalator at the date of service.")
    benchmark: str | None = Field(None, description="Payer OON benchmark expression (rate_type benchmark).")
    sca_id: str | None = None
    description: str = Field(description="e.g. '140% of Medicare', 'fixed 250.00, +3%/year from 2023-01-01'.")


class LineEvaluation(Model):
    line_index: int
    procedure_code: str
    modifiers: list[str] = Field(default_factory=list)
    original_procedure_code: str | None = Field(None, description="SVC06 when the payer recoded the line.")
    service_date: dt.date | None = None
    units: Quantity
    charge_amount: Money = Field(description="SVC02 line charge (billed).")
    paid_amount: Money = Field(description="SVC03 line paid.")
    reported_allowed_amount: Money | None = Field(None, description="AMT*B6 when the payer sent it.")
    derived_allowed_amount: Money = Field(description="paid + PR adjustments (provider convention).")
    allowed_source: AllowedSource = Field(description="reported (AMT*B6) when present, else derived.")
    allowed_mismatch: bool = Field(False, description="AMT*B6 and paid + PR (+ CO-253) disagree by more than $0.01.")
    sequestration_amount: Money = Field(Decimal(0), description="CO-253 on this line (added back before comparing).")
    allowed_amount: Money = Field(
        description="What is compared with expected: the allowed amount before sequestration (see docs)."
    )
    expected_amount: Money | None = Field(None, description="Null when there is no basis to compute one (never 0).")
    basis: Basis | None = None
    rate_term: RateTerm | None = None
    medicare_unit_amount: Money | None = Field(
        None, description="Medicare PFS amount for one unit (OPPS cap applied), when there is one."
    )
    medicare_amount: Money | None = Field(
        None,
        description="What Medicare would allow for the whole line: the unit amount with units, bilateral, "
        "assistant and multiple-procedure rules (the denominator of 'allowed as % of Medicare').",
    )
    medicare_locality: str | None = Field(None, description="carrier-locality of the Medicare amount, e.g. 01182-17.")
    facility: bool | None = Field(None, description="Priced at the facility rate (place of service).")
    explanation: str = Field(description="How the expected amount was computed, with every input.")
    variance: Money | None = Field(None, description="allowed_amount - expected_amount (negative = shortfall).")
    tolerance_amount: Money | None = Field(None, description="Shortfall tolerated before a line is underpaid.")
    underpaid_amount: Money = Field(Decimal(0), description="expected - allowed when status is underpaid, else 0.")
    status: Status
    reason: str | None = Field(
        None,
        description="Why not comparable/denied: missing_reference, no_medicare_amount, no_terms, secondary_payer, "
        "not_our_claim, predetermination, denied, claim_denied, not_payable.",
    )
    adjustment_codes: list[str] = Field(default_factory=list, description="Line CAS as GROUP-CARC, e.g. CO-45.")


class ClaimTotals(Model):
    billed: Money
    expected: Money = Field(description="Sum of the lines' expected amounts that could be computed.")
    allowed: Money = Field(description="Sum of the lines' compared allowed amounts (before sequestration).")
    paid: Money
    underpaid: Money = Field(description="Sum of the shortfalls of underpaid lines.")


class ClaimEvaluation(Model):
    schema_version: int = SCHEMA_VERSION
    event_type: Literal["claim_evaluation"] = "claim_evaluation"
    evaluation_id: str = Field(description="Deterministic from the remittance event id.")
    event_id: str = Field(description="RemittanceEvent.event_id that was evaluated.")
    claim_key: str = Field(description="payer | CLP07: identity across reversals and corrections.")
    payer_id: str | None = None
    payer_name: str | None = None
    payer_group: str = Field(description="Short payer label from payers.csv ('other' when unknown).")
    payer_claim_id: str | None = None
    patient_control_number: str = Field(description="CLP01: the provider's claim id (not patient data).")
    payee_npi: str | None = None
    claim_status_code: str = Field(description="CLP02.")
    claim_filing_indicator: str | None = None
    status: Status
    reason: str | None = None
    state: str | None = Field(None, description="Two-letter state of the place of service.")
    specialty_group: str | None = None
    place_of_service_code: str | None = None
    context_joined: bool = Field(description="A ClaimContext was joined to the remittance.")
    service_date_from: dt.date | None = None
    payment_date: dt.date | None = None
    totals: ClaimTotals
    lines: list[LineEvaluation]
    notes: list[str] = Field(default_factory=list)
    ingested_at: dt.datetime | None = Field(None, description="Passthrough of RemittanceEvent.ingested_at.")
    evaluated_at: dt.datetime


class AlertLine(Model):
    line_index: int
    procedure_code: str
    modifiers: list[str] = Field(default_factory=list)
    service_date: dt.date | None = None
    units: Quantity
    billed: Money
    expected: Money | None
    allowed: Money
    paid: Money
    variance: Money | None
    underpaid: Money
    status: Status
    basis: Basis | None
    explanation: str


class UnderpaymentAlert(Model):
    schema_version: int = SCHEMA_VERSION
    event_type: Literal["underpayment_alert"] = "underpayment_alert"
    alert_id: str = Field(description="Deterministic: hash of claim key and net revision.")
    claim_key: str
    revision: int = Field(description="Net revision of the claim this alert describes.")
    evaluation_id: str = Field(description="The evaluation that is the claim's current (net) adjudication.")
    event_ids: list[str] = Field(description="Remittance events that made up the net position, in order.")
    payer_id: str | None = None
    payer_group: str
    payer_claim_id: str | None = None
    patient_control_number: str
    state: str | None = None
    specialty_group: str | None = None
    service_date_from: dt.date | None = None
    billed: Money
    expected: Money
    allowed: Money
    paid: Money
    underpaid_amount: Money = Field(description="Net shortfall of the claim's underpaid lines.")
    previously_alerted_amount: Money | None = Field(None, description="Shortfall of the previous alert, if any.")
    recovered_total: Money = Field(Decimal(0), description="Allowed dollars recovered on this claim so far.")
    lines: list[AlertLine]
    summary: str
    created_at: dt.datetime = Field(description="evaluated_at of the evaluation (deterministic).")


class Adjudication(Model):
    """One remittance event of a claim, as remembered by the claim state."""

    event_id: str
    evaluation_id: str
    claim_status_code: str
    billed: Money
    allowed: Money
    paid: Money
    status: Status
    reversed_by: str | None = Field(None, description="event id of the reversal that cancelled it.")
    superseded_by: str | None = Field(None, description="event id of a later adjudication that replaced it.")


class ClaimState(Model):
    """Per claim_key state of the underpayment agent (a Faust table value; JSON via pydantic)."""

    schema_version: int = SCHEMA_VERSION
    claim_key: str
    revision: int = Field(0, description="Incremented each time the claim's net position changes.")
    processed_event_ids: list[str] = Field(default_factory=list)
    adjudications: list[Adjudication] = Field(default_factory=list)
    pending_reversals: list[Adjudication] = Field(
        default_factory=list, description="Reversals that arrived before the adjudication they reverse."
    )
    net: ClaimEvaluation | None = Field(None, description="The current adjudication; None when reversed.")
    net_status: Status | Literal["reversed"] | None = None
    last_alerted_underpaid: Money | None = None
    recovered_total: Money = Decimal(0)
