"""Builders of remittance events and claim contexts for integration tests (no parser involved)."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

from schemas.claims import ClaimContext
from schemas.remittance import RemittanceEvent

PAYEE_NPI = "1234567893"
DEMO_REFERENCE = "services/reference/demo"


def remittance(
    claim_id: str,
    code: str,
    charge: Decimal,
    allowed: Decimal,
    *,
    payer_id: str = "ACME1",
    status: str = "1",
    units: int = 1,
    service_date: dt.date = dt.date(2025, 11, 3),
    sequence: int = 0,
    sign: int = 1,
) -> RemittanceEvent:
    """One claim with one line paid at ``allowed`` (no patient responsibility), AMT*B6 = allowed."""
    paid = allowed * sign
    charge = charge * sign
    adjustment = charge - paid
    event_id = hashlib.sha256(f"{claim_id}|{status}|{sequence}".encode()).hexdigest()[:32]
    line = {
        "line_index": 0,
        "procedure_qualifier": "HC",
        "procedure_code": code,
        "charge_amount": str(charge),
        "paid_amount": str(paid),
        "units": str(units),
        "service_date": service_date.isoformat(),
        "reported_allowed_amount": str(allowed * sign),
        "derived_allowed_amount": str(paid),
        "adjustments": [{"group_code": "CO", "reason_code": "45", "amount": str(adjustment)}] if adjustment else [],
    }
    return RemittanceEvent.model_validate(
        {
            "event_id": event_id,
            "source": {"file": "integration.835", "segment_index": 10 + sequence},
            "payment": {
                "amount": str(paid),
                "method": "ACH",
                "date": (service_date + dt.timedelta(days=20)).isoformat(),
            },
            "payer": {"id": payer_id, "name": "Demo payer"},
            "payee": {"name": "Demo Group", "npi": PAYEE_NPI},
            "patient_control_number": claim_id,
            "status_code": status,
            "charge_amount": str(charge),
            "paid_amount": str(paid),
            "patient_responsibility_amount": "0",
            "claim_filing_indicator": "12",
            "payer_claim_id": f"PCC-{claim_id}",
            "facility_type_code": "11",
            "service_date_from": service_date.isoformat(),
            "production_date": (service_date + dt.timedelta(days=19)).isoformat(),
            "service_lines": [line],
            "ingested_at": dt.datetime.now(dt.UTC).isoformat(),
        }
    )


def context(claim_id: str, *, payer_id: str = "ACME1", zip_code: str = "77030", state: str = "TX") -> ClaimContext:
    return ClaimContext(
        payee_id=PAYEE_NPI,
        patient_control_number=claim_id,
        payer_id=payer_id,
        place_of_service_code="11",
        place_of_service_zip=zip_code,
        state=state,
        specialty_group="cardiology",
        product_type="PPO",
        patient_zip=zip_code,
    )
