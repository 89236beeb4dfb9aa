"""Builders shared by the pricing / underpayment tests (no tests here).

The Medicare part comes from the demo reference shipped with the package (a real CMS 2025 subset), so
these tests never need ../shared. Pricing CSVs are written per test.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from schemas.claims import ClaimContext
from schemas.remittance import RemittanceEvent
from services.pricing.reference import PricingReference, load_pricing_reference
from services.reference.files import read_folder

DEMO_DIR = Path(__file__).resolve().parents[2] / "services" / "reference" / "demo"
PAYEE_NPI = "1234567893"
HOUSTON_ZIP = "77030"  # carrier 04412 locality 18
DOS = "2025-03-04"


@lru_cache(maxsize=1)
def demo_files() -> dict[str, bytes]:
    return read_folder(DEMO_DIR)


@lru_cache(maxsize=1)
def demo_medicare_files() -> dict[str, bytes]:
    return {name: content for name, content in demo_files().items() if name.startswith("medicare/")}


def reference(**csv_files: str) -> PricingReference:
    """Demo Medicare + the given pricing CSVs, e.g. reference(payer_policies="payer_id,benchmark\\n*,140% medicare")."""
    files = dict(demo_medicare_files())
    for name, text in csv_files.items():
        files[f"{name}.csv"] = text.encode()
    return load_pricing_reference(files)


def policy(benchmark: str = "100% medicare", tolerance_amount: str = "0", tolerance_pct: str = "0") -> str:
    return f'payer_id,benchmark,tolerance_amount,tolerance_pct\n*,"{benchmark}",{tolerance_amount},{tolerance_pct}\n'


def adjustment(group: str, reason: str, amount: str) -> dict[str, str]:
    return {"group_code": group, "reason_code": reason, "amount": amount}


def line(
    index: int = 0,
    code: str = "99214",
    *,
    charge: str = "300.00",
    paid: str = "100.00",
    pr: str = "0",
    modifiers: list[str] | None = None,
    units: str = "1",
    allowed: str | None = None,
    adjustments: list[dict[str, str]] | None = None,
    service_date: str | None = DOS,
) -> dict[str, Any]:
    adjustments = list(adjustments or [])
    if Decimal(pr):
        adjustments.append(adjustment("PR", "2", pr))
    return {
        "line_index": index,
        "procedure_qualifier": "HC",
        "procedure_code": code,
        "modifiers": modifiers or [],
        "charge_amount": charge,
        "paid_amount": paid,
        "units": units,
        "service_date": service_date,
        "derived_allowed_amount": str(Decimal(paid) + Decimal(pr)),
        "reported_allowed_amount": allowed,
        "adjustments": adjustments,
    }


def event(
    lines: list[dict[str, Any]],
    *,
    event_id: str = "evt-1",
    payer_id: str = "ACME1",
    status: str = "1",
    payer_claim_id: str | None = "CLM-1",
    pcn: str = "PCN-1",
    patient_key: str | None = None,
    claim_adjustments: list[dict[str, str]] | None = None,
    facility_type_code: str | None = None,
    sign: int = 1,
) -> RemittanceEvent:
    if sign < 0:
        lines = [
            dict(
                item,
                charge_amount=str(-Decimal(item["charge_amount"])),
                paid_amount=str(-Decimal(item["paid_amount"])),
                derived_allowed_amount=str(-Decimal(item["derived_allowed_amount"])),
                reported_allowed_amount=(
                    str(-Decimal(item["reported_allowed_amount"])) if item["reported_allowed_amount"] else None
                ),
                adjustments=[dict(adj, amount=str(-Decimal(adj["amount"]))) for adj in item["adjustments"]],
            )
            for item in lines
        ]
    return RemittanceEvent.model_validate(
        {
            "event_id": event_id,
            "source": {"file": "test.835", "segment_index": 1},
            "payment": {"amount": "0", "date": "2025-03-20"},
            "payer": {"id": payer_id, "name": "Test Payer"},
            "payee": {"npi": PAYEE_NPI},
            "patient_control_number": pcn,
            "status_code": status,
            "charge_amount": str(sum((Decimal(item["charge_amount"]) for item in lines), Decimal(0))),
            "paid_amount": str(sum((Decimal(item["paid_amount"]) for item in lines), Decimal(0))),
            "payer_claim_id": payer_claim_id,
            "patient_key": patient_key,
            "facility_type_code": facility_type_code,
            "adjustments": claim_adjustments or [],
            "service_lines": lines,
        }
    )


def context(
    *,
    pos: str | None = "11",
    zip_code: str | None = HOUSTON_ZIP,
    pcn: str = "PCN-1",
    product: str | None = None,
    authorization: str | None = None,
    state: str | None = None,
) -> ClaimContext:
    return ClaimContext(
        payee_id=PAYEE_NPI,
        patient_control_number=pcn,
        place_of_service_code=pos,
        place_of_service_zip=zip_code,
        product_type=product,
        authorization_number=authorization,
        state=state,
        specialty_group="orthopedic surgery",
    )


def medicare(ref: PricingReference, code: str, modifier: str = "", *, facility: bool = False, zip_code=HOUSTON_ZIP):
    from services.pricing.medicare import medicare_amount

    result = medicare_amount(
        ref.medicare, code, modifier, date=dt.date.fromisoformat(DOS), facility=facility, zip_code=zip_code
    )
    assert result.amount is not None, result.detail
    return result.amount
