"""The remittances topic: one RemittanceEvent per CLP loop of an 835, plus provider-level adjustments.

Field names are a contract (PRODUCT.md, issue 3). Patient names never reach these models; the member
id is replaced by ``patient_key`` (HMAC-SHA256 of payer id + member id with the configured key).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from schemas.common import Model, Money, Quantity

SCHEMA_VERSION = 1


class SourceLocation(Model):
    """Where a piece of an 835 came from."""

    file: str = Field(description="File name (no directory).")
    interchange_control_number: str | None = Field(None, description="ISA13.")
    transaction_control_number: str | None = Field(None, description="ST02.")
    segment_index: int = Field(description="1-based position of the segment within the file (CLP for claims).")
    line: int | None = Field(None, description="1-based text line of that segment, when the file has lines.")


class Payment(Model):
    amount: Money = Field(description="BPR02 total actual provider payment.")
    credit_debit: str | None = Field(None, description="BPR03 C or D.")
    method: str | None = Field(None, description="BPR04 payment method (ACH, CHK, NON, FWT, BOP).")
    date: dt.date | None = Field(None, description="BPR16 payment effective date.")
    trace_number: str | None = Field(None, description="TRN02 check or EFT trace number.")
    trace_originator: str | None = Field(None, description="TRN03 payer identifier of the trace.")


class Payer(Model):
    id: str | None = Field(None, description="N1*PR04 payer identifier (or TRN03 when N1 has none).")
    name: str | None = Field(None, description="N1*PR02 payer name.")


class Payee(Model):
    name: str | None = Field(None, description="N1*PE02 payee name (an organisation or provider, not a patient).")
    npi: str | None = Field(None, description="N1*PE04 when qualifier XX.")
    tax_id: str | None = Field(None, description="N1*PE04 when FI, or REF*TJ.")


class Adjustment(Model):
    group_code: str = Field(description="CAS01: CO, PR, OA, PI, CR.")
    reason_code: str = Field(description="CARC.")
    amount: Money
    quantity: Quantity | None = None


class ServiceLine(Model):
    line_index: int = Field(description="0-based position of the SVC within the claim.")
    procedure_qualifier: str = Field(description="SVC01-1: HC, AD, ER, IV, N4, NU, WK, ZZ...")
    procedure_code: str = Field(description="SVC01-2.")
    modifiers: list[str] = Field(default_factory=list, max_length=4, description="SVC01-3..6.")
    original_procedure_code: str | None = Field(None, description="SVC06-2 when the payer recoded the line.")
    charge_amount: Money = Field(description="SVC02.")
    paid_amount: Money = Field(description="SVC03.")
    revenue_code: str | None = Field(None, description="SVC04 (institutional).")
    units: Quantity = Field(description="SVC05 units paid (1 when absent).")
    original_units: Quantity | None = Field(None, description="SVC07 original units of service.")
    service_date: dt.date | None = Field(None, description="DTM*472 (or the start of DTM*150).")
    line_control_number: str | None = Field(None, description="REF*6R provider line item control number.")
    reported_allowed_amount: Money | None = Field(None, description="AMT*B6; null when the payer did not send it.")
    derived_allowed_amount: Money = Field(description="paid + sum of PR adjustments (provider convention).")
    adjustments: list[Adjustment] = Field(default_factory=list)
    remark_codes: list[str] = Field(default_factory=list, description="LQ*HE remark codes.")
    amounts: dict[str, Money] = Field(default_factory=dict, description="Every line AMT by qualifier.")


class BalanceIssue(Model):
    rule: Literal["line", "claim", "transaction"]
    line_index: int | None = None
    expected: Money = Field(description="What the rule says the amount should be.")
    actual: Money = Field(description="What the remittance reports.")
    message: str


class RemittanceEvent(Model):
    schema_version: int = SCHEMA_VERSION
    event_type: Literal["remittance"] = "remittance"
    event_id: str = Field(description="Deterministic: the same file content gives the same ids.")
    source: SourceLocation
    payment: Payment
    payer: Payer
    payee: Payee
    rendering_provider_npi: str | None = Field(None, description="NM1*82 id (XX qualifier).")
    patient_control_number: str = Field(description="CLP01, the provider's claim id (CLM01 of the 837).")
    status_code: str = Field(description="CLP02: 1, 2, 3, 4, 19-23, 25.")
    charge_amount: Money = Field(description="CLP03.")
    paid_amount: Money = Field(description="CLP04.")
    patient_responsibility_amount: Money | None = Field(None, description="CLP05.")
    claim_filing_indicator: str | None = Field(None, description="CLP06.")
    payer_claim_id: str | None = Field(None, description="CLP07 payer claim control number.")
    facility_type_code: str | None = Field(None, description="CLP08 (place of service for professional claims).")
    frequency_code: str | None = Field(None, description="CLP09.")
    drg_code: str | None = Field(None, description="CLP11.")
    claim_received_date: dt.date | None = Field(None, description="DTM*050.")
    production_date: dt.date | None = Field(None, description="DTM*405 of the transaction header.")
    service_date_from: dt.date | None = Field(None, description="DTM*232 or the earliest line date.")
    service_date_to: dt.date | None = Field(None, description="DTM*233 or the latest line date.")
    patient_key: str | None = Field(None, description="HMAC-SHA256 hex of payer id + member id.")
    adjustments: list[Adjustment] = Field(default_factory=list, description="Claim-level CAS.")
    remark_codes: list[str] = Field(default_factory=list, description="MIA/MOA remark codes.")
    reported_allowed_amount: Money | None = Field(None, description="Claim-level AMT*B6 when present.")
    amounts: dict[str, Money] = Field(default_factory=dict, description="Every claim-level AMT by qualifier.")
    service_lines: list[ServiceLine] = Field(default_factory=list)
    balance_issues: list[BalanceIssue] = Field(default_factory=list)
    ingested_at: dt.datetime | None = Field(
        None, description="When claimwatch ingest published the event (UTC); drives latency metrics."
    )

    @property
    def claim_key(self) -> str:
        """Identity of a claim across reversals and corrections: payer + CLP07 (DOMAIN.md)."""
        payer = self.payer.id or self.payment.trace_originator or "unknown-payer"
        return f"{payer}|{self.payer_claim_id or self.patient_control_number}"

    @property
    def partition_key(self) -> str:
        """Key shared with the claim context (claims topic): payee + CLP01."""
        return partition_key(self.payee.npi or self.payee.tax_id, self.patient_control_number)

    @property
    def is_reversal(self) -> bool:
        return self.status_code == "22"


class ProviderAdjustment(Model):
    reason_code: str = Field(description="PLB03-1 (e.g. WO, L6, CV, FB).")
    reference_id: str | None = Field(None, description="PLB03-2 (e.g. the claim id of a WO).")
    amount: Money = Field(description="Positive reduces the payment.")


class ProviderAdjustmentEvent(Model):
    """One PLB segment: provider-level adjustments of a payment."""

    schema_version: int = SCHEMA_VERSION
    event_type: Literal["provider_adjustment"] = "provider_adjustment"
    event_id: str
    source: SourceLocation
    payment: Payment
    payer: Payer
    payee: Payee
    provider_id: str = Field(description="PLB01.")
    fiscal_period_date: dt.date | None = Field(None, description="PLB02.")
    adjustments: list[ProviderAdjustment]


def partition_key(payee_id: str | None, patient_control_number: str) -> str:
    return f"{payee_id or 'unknown-payee'}|{patient_control_number}"
