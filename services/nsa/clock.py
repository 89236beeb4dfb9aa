"""The No Surprises Act clock, exactly as DOMAIN.md counts it. Pure functions of dates.

- open negotiation may be started during the 30-business-day period beginning on the day the initial
  payment or notice of denial is received: ``open_negotiation_deadline`` = business day 30;
- open negotiation runs the 30-business-day period beginning on the day the notice is sent:
  ``negotiation_period_end`` = business day 30;
- IDR may be started during the 4-business-day period beginning on the 31st business day after the
  start of open negotiation: ``idr_window`` = (business day 31, business day 34);
in every count the start day is business day 1 when it is a business day, else the next business day is.

Which date stands for "received" (``received_date_for``): the date the remittance was received when
known; else the earlier of the production date (DTM*405) and the payment date (BPR16): an early start
gives an early, safe deadline. The basis is returned so that it is recorded with the case.
"""

from __future__ import annotations

import datetime as dt

from schemas.nsa import Deadlines, InitialDateBasis
from schemas.remittance import RemittanceEvent
from services.nsa.calendar import DEFAULT_CALENDAR, FederalBusinessCalendar

OPEN_NEGOTIATION_DAYS = 30
NEGOTIATION_PERIOD_DAYS = 30
IDR_WINDOW_FIRST_DAY = 31
IDR_WINDOW_LAST_DAY = 34

__all__ = [
    "Deadlines",
    "NoReceivedDateError",
    "compute_deadlines",
    "idr_window",
    "negotiation_period_end",
    "open_negotiation_deadline",
    "received_date_for",
]


class NoReceivedDateError(ValueError):
    """The remittance carries neither a production date nor a payment date, and no receipt date is known."""


def open_negotiation_deadline(initial_date: dt.date, calendar: FederalBusinessCalendar | None = None) -> dt.date:
    return (calendar or DEFAULT_CALENDAR).business_day_number_n(initial_date, OPEN_NEGOTIATION_DAYS)


def negotiation_period_end(opened_date: dt.date, calendar: FederalBusinessCalendar | None = None) -> dt.date:
    return (calendar or DEFAULT_CALENDAR).business_day_number_n(opened_date, NEGOTIATION_PERIOD_DAYS)


def idr_window(opened_date: dt.date, calendar: FederalBusinessCalendar | None = None) -> tuple[dt.date, dt.date]:
    """(first, last) day on which IDR may be initiated: business days 31 and 34 from the opened day."""
    calendar = calendar or DEFAULT_CALENDAR
    return (
        calendar.business_day_number_n(opened_date, IDR_WINDOW_FIRST_DAY),
        calendar.business_day_number_n(opened_date, IDR_WINDOW_LAST_DAY),
    )


def compute_deadlines(
    initial_date: dt.date,
    negotiation_opened: dt.date | None = None,
    calendar: FederalBusinessCalendar | None = None,
) -> Deadlines:
    """Every deadline of a case; the negotiation and IDR dates only once negotiation was opened."""
    calendar = calendar or DEFAULT_CALENDAR
    fields: dict[str, dt.date | None] = {
        "initial_date": initial_date,
        "open_negotiation_deadline": open_negotiation_deadline(initial_date, calendar),
    }
    if negotiation_opened is not None:
        start, end = idr_window(negotiation_opened, calendar)
        fields.update(
            negotiation_opened=negotiation_opened,
            negotiation_period_end=negotiation_period_end(negotiation_opened, calendar),
            idr_window_start=start,
            idr_window_end=end,
        )
    return Deadlines(**fields)


def received_date_for(
    event: RemittanceEvent, known_received: dt.date | None = None
) -> tuple[dt.date, InitialDateBasis]:
    """The day the initial payment / notice of denial counts as received, and the basis of that choice.

    ``known_received``: when the remittance was received (e.g. the 835 file's arrival), if known. Else the
    earlier of DTM*405 (``production_date``) and BPR16 (``payment.date``); on a tie the production date is
    named. Raises NoReceivedDateError when there is no date at all.
    """
    if known_received is not None:
        return known_received, "remittance_received"
    production = event.production_date
    payment = event.payment.date
    if production is not None and (payment is None or production <= payment):
        return production, "production_date"
    if payment is not None:
        return payment, "payment_date"
    raise NoReceivedDateError(
        "no receipt date known and the remittance has neither a production date (DTM*405) nor a payment date (BPR16)"
    )
