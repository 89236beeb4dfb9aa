"""Builders shared by the adequacy tests: remittances, contexts, a hand-made geography and reference.

Geography of the tests (StaticGeography, hand-computed distances on the meridian 100 W, where one degree
of latitude is 3958.8 * pi / 180 = 69.0934 miles):
    patient ZIP 90001 at 35.0000 N (county 40001, metro by override)
    patient ZIP 90002 at 35.0000 N, 101 W (county 40003, rural by override)
    provider ZIP 91001 at 35.5000 N  -> 34.5 miles from 90001 (0.5 degree)
    provider ZIP 91002 at 36.0000 N  -> 69.1 miles from 90001 (1 degree)
    provider ZIP 91003 at 35.2895 N  -> 20.0 miles from 90001 (exactly the metro cardiology standard)
    provider ZIP 91004 at 35.2902 N  -> 20.1 miles from 90001 (just beyond it)
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from schemas.claims import ClaimContext
from schemas.remittance import Adjustment, Payee, Payer, Payment, RemittanceEvent, ServiceLine, SourceLocation
from services.adequacy.geography import StaticGeography, ZipLocation
from services.adequacy.reference import NetworkReference, load_network_reference

PATIENT_METRO = ZipLocation("90001", 35.0, -100.0, "OK", "40001", "reference")
PATIENT_RURAL = ZipLocation("90002", 35.0, -101.0, "OK", "40003", "reference")
PROVIDER_34 = ZipLocation("91001", 35.5, -100.0, "OK", "40005", "reference")
PROVIDER_69 = ZipLocation("91002", 36.0, -100.0, "OK", "40007", "reference")
PROVIDER_20_0 = ZipLocation("91003", 35.2895, -100.0, "OK", "40001", "reference")
PROVIDER_20_1 = ZipLocation("91004", 35.2902, -100.0, "OK", "40001", "reference")

GEOGRAPHY = StaticGeography([PATIENT_METRO, PATIENT_RURAL, PROVIDER_34, PROVIDER_69, PROVIDER_20_0, PROVIDER_20_1])

COUNTY_TYPES_CSV = b"zip,county_fips,county_type\n90001,,metro\n,40003,rural\n"

VALID_NPI = "1234567893"  # the CMS example NPI (Luhn check digit with the 80840 prefix)


def reference(directory: str, *, extra: dict[str, bytes] | None = None) -> NetworkReference:
    files = {"network/directory.csv": directory.encode(), "network/county_types.csv": COUNTY_TYPES_CSV}
    files.update(extra or {})
    return load_network_reference(files, geography=GEOGRAPHY)


def remittance(
    claim_id: str = "PCN1",
    *,
    payer_claim_id: str | None = None,
    payer_id: str = "PAYER1",
    service_date: dt.date = dt.date(2025, 2, 10),
    filing: str | None = "HM",
    status: str = "1",
    charge: str = "1000.00",
    paid: str = "200.00",
    claim_adjustments: list[tuple[str, str, str]] | None = None,
    line_adjustments: list[tuple[str, str, str]] | None = None,
    payee_npi: str = "1999999992",
) -> RemittanceEvent:
    line = ServiceLine(
        line_index=0,
        procedure_qualifier="HC",
        procedure_code="93000",
        charge_amount=Decimal(charge),
        paid_amount=Decimal(paid),
        units=Decimal(1),
        service_date=service_date,
        derived_allowed_amount=Decimal(paid),
        adjustments=[Adjustment(group_code=g, reason_code=r, amount=Decimal(a)) for g, r, a in line_adjustments or []],
    )
    return RemittanceEvent(
        event_id=f"evt-{claim_id}-{status}",
        source=SourceLocation(file="test.835", segment_index=1),
        payment=Payment(amount=Decimal(paid), date=service_date + dt.timedelta(days=30)),
        payer=Payer(id=payer_id, name="Test Health Plan"),
        payee=Payee(name="Test Cardiology Group", npi=payee_npi),
        patient_control_number=claim_id,
        status_code=status,
        charge_amount=Decimal(charge),
        paid_amount=Decimal(paid),
        claim_filing_indicator=filing,
        payer_claim_id=payer_claim_id or f"PCID-{claim_id}",
        service_date_from=service_date,
        patient_key="a" * 64,
        adjustments=[Adjustment(group_code=g, reason_code=r, amount=Decimal(a)) for g, r, a in claim_adjustments or []],
        service_lines=[line],
    )


def context(
    claim_id: str = "PCN1",
    *,
    patient_zip: str | None = "90001",
    specialty: str | None = "cardiology",
    product: str | None = None,
    payer_id: str = "PAYER1",
    payee_npi: str = "1999999992",
    **extra: Any,
) -> ClaimContext:
    return ClaimContext(
        payee_id=payee_npi,
        patient_control_number=claim_id,
        payer_id=payer_id,
        patient_zip=patient_zip,
        specialty_group=specialty,
        product_type=product,
        state="OK",
        **extra,
    )
