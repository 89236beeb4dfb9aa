"""Shared builders for the NSA tests (no tests here), and the independent business-day count.

The independent count does not use ``holidays`` or services.nsa: it loops over days against the federal
holidays as OPM publishes them (observed dates, Monday-Friday only), typed in by hand for 2025-2028.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from schemas.claims import ClaimContext
from schemas.remittance import RemittanceEvent

D = dt.date

OPM_FEDERAL_HOLIDAYS: dict[int, tuple[dt.date, ...]] = {
    2025: (
        D(2025, 1, 1), D(2025, 1, 20), D(2025, 2, 17), D(2025, 5, 26), D(2025, 6, 19), D(2025, 7, 4),
        D(2025, 9, 1), D(2025, 10, 13), D(2025, 11, 11), D(2025, 11, 27), D(2025, 12, 25),
    ),
    2026: (
        D(2026, 1, 1), D(2026, 1, 19), D(2026, 2, 16), D(2026, 5, 25), D(2026, 6, 19),
        D(2026, 7, 3),  # Independence Day (Saturday) observed Friday
        D(2026, 9, 7), D(2026, 10, 12), D(2026, 11, 11), D(2026, 11, 26), D(2026, 12, 25),
    ),
    2027: (
        D(2027, 1, 1), D(2027, 1, 18), D(2027, 2, 15), D(2027, 5, 31),
        D(2027, 6, 18),  # Juneteenth (Saturday) observed Friday
        D(2027, 7, 5),  # Independence Day (Sunday) observed Monday
        D(2027, 9, 6), D(2027, 10, 11), D(2027, 11, 11), D(2027, 11, 25),
        D(2027, 12, 24),  # Christmas (Saturday) observed Friday
        D(2027, 12, 31),  # New Year's Day 2028 (Saturday) observed Friday 2027-12-31
    ),
    2028: (
        D(2028, 1, 17), D(2028, 2, 21), D(2028, 5, 29), D(2028, 6, 19), D(2028, 7, 4), D(2028, 9, 4),
        D(2028, 10, 9),
        D(2028, 11, 10),  # Veterans Day (Saturday) observed Friday
        D(2028, 11, 23), D(2028, 12, 25),
    ),
}  # fmt: skip
HAND_HOLIDAYS = frozenset(day for days in OPM_FEDERAL_HOLIDAYS.values() for day in days)
HAND_FIRST = D(2025, 1, 1)
HAND_LAST = D(2028, 12, 31)


def hand_business_day(start: dt.date, n: int) -> dt.date:
    """Business day n counting start as day 1 when it is a business day: a plain loop over days."""
    count = 0
    day = start
    while True:
        assert HAND_FIRST <= day <= HAND_LAST, f"{day} is outside the hand-typed holiday list"
        if day.weekday() < 5 and day not in HAND_HOLIDAYS:
            count += 1
            if count == n:
                return day
        day += dt.timedelta(days=1)


def every_day(first: dt.date, last: dt.date):
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)


def make_line(code: str = "99284", **overrides: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "line_index": 0,
        "procedure_qualifier": "HC",
        "procedure_code": code,
        "charge_amount": "1000.00",
        "paid_amount": "400.00",
        "units": "1",
        "derived_allowed_amount": "450.00",
        "remark_codes": [],
    }
    line.update(overrides)
    return line


def make_event_data(
    *,
    claim_id: str = "PCN1",
    payer_claim_id: str | None = "PAYER-CLM-1",
    payer_id: str = "87726",
    payee_npi: str | None = "1234567893",
    payee_tin: str | None = "123456789",
    status: str = "1",
    filing: str | None = "12",
    facility: str | None = "11",
    remarks: list[str] | None = None,
    lines: list[dict[str, Any]] | None = None,
    production: dt.date | None = D(2025, 12, 19),
    payment_date: dt.date | None = D(2025, 12, 22),
    event_id: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "event_id": event_id or f"evt-{claim_id}-{payer_claim_id}-{status}",
        "source": {"file": "sample.835", "segment_index": 10},
        "payment": {
            "amount": "400.00",
            "method": "ACH",
            "date": payment_date.isoformat() if payment_date else None,
            "trace_number": "TRACE1",
            "trace_originator": "1" + payer_id,
        },
        "payer": {"id": payer_id, "name": "Example Health Plan"},
        "payee": {"name": "Example Emergency Physicians", "npi": payee_npi, "tax_id": payee_tin},
        "rendering_provider_npi": "1987654326",
        "patient_control_number": claim_id,
        "status_code": status,
        "charge_amount": "1000.00",
        "paid_amount": "400.00",
        "claim_filing_indicator": filing,
        "payer_claim_id": payer_claim_id,
        "facility_type_code": facility,
        "production_date": production.isoformat() if production else None,
        "service_date_from": "2025-11-20",
        "remark_codes": list(remarks or []),
        "service_lines": lines if lines is not None else [make_line()],
    }
    data.update(overrides)
    return data


def make_event(**kwargs: Any) -> RemittanceEvent:
    return RemittanceEvent.model_validate(make_event_data(**kwargs))


def make_context(event: RemittanceEvent | None = None, **overrides: Any) -> ClaimContext:
    data: dict[str, Any] = {
        "payee_id": (event.payee.npi if event else None) or "1234567893",
        "patient_control_number": event.patient_control_number if event else "PCN1",
    }
    data.update(overrides)
    return ClaimContext.model_validate(data)


MONEY_ZERO = Decimal("0")
