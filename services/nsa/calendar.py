"""Federal business days: Monday to Friday except US federal holidays as observed by the federal government.

Holiday source: the ``holidays`` library, ``holidays.US(categories=(PUBLIC,))`` with observed dates and
no subdivision. That is the list of legal public holidays of 5 U.S.C. 6103(a) with the federal
employees' observance rule (a Saturday holiday is observed on the Friday before, a Sunday holiday on the
Monday after; so New Year's Day 2028 is observed on Friday 2027-12-31). Juneteenth counts from 2021.
Inauguration Day is a holiday only for the Washington DC area (a subdivision in ``holidays``), so it
is not one here.

One-off closures by executive order (e.g. 2024-12-24, 2025-01-09, 2025-12-24, 2025-12-26) are not
legal public holidays. They are left out by default: counting a day as a business day that the
Departments may treat as a closure moves every deadline earlier or keeps it, never later, which is the
safe side for the deadlines a provider must meet (DOMAIN.md: "an early start gives an early, safe
deadline"). ``FederalBusinessCalendar(include_executive_closures=True)`` adds them (the library's
``government`` category) and ``extra_closed_dates`` adds any other day.

Speed: holidays are computed once per year and kept in a frozenset, so a lookup is a set membership.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache

import holidays

ONE_DAY = dt.timedelta(days=1)


@lru_cache(maxsize=256)
def _federal_holidays(year: int, include_executive_closures: bool) -> frozenset[dt.date]:
    category = holidays.GOVERNMENT if include_executive_closures else holidays.PUBLIC
    # Neighbouring years too: an observed date can fall in the year before its holiday (2027-12-31).
    table = holidays.US(years=(year - 1, year, year + 1), categories=(category,), observed=True)
    return frozenset(day for day in table if day.year == year)


class FederalBusinessCalendar:
    """Business-day arithmetic over the federal calendar. Instances are cheap; holiday sets are shared."""

    def __init__(self, *, include_executive_closures: bool = False, extra_closed_dates: Iterable[dt.date] = ()) -> None:
        self.include_executive_closures = include_executive_closures
        self.extra_closed_dates = frozenset(extra_closed_dates)

    def holidays_in(self, year: int) -> frozenset[dt.date]:
        """Federal holidays (actual and observed dates, weekend dates included) of one calendar year."""
        base = _federal_holidays(year, self.include_executive_closures)
        extra = {day for day in self.extra_closed_dates if day.year == year}
        return base | extra if extra else base

    def is_holiday(self, day: dt.date) -> bool:
        return day in _federal_holidays(day.year, self.include_executive_closures) or (day in self.extra_closed_dates)

    def is_business_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and not self.is_holiday(day)

    def next_business_day(self, day: dt.date) -> dt.date:
        """``day`` itself when it is a business day, else the first business day after it."""
        while not self.is_business_day(day):
            day += ONE_DAY
        return day

    def business_day_number_n(self, start: dt.date, n: int) -> dt.date:
        """The date of business day ``n`` of a period beginning on ``start``.

        ``start`` is business day 1 when it is a business day, else the next business day is day 1.
        """
        if n < 1:
            raise ValueError(f"business day number must be >= 1, got {n}")
        day = self.next_business_day(start)
        count = 1
        while count < n:
            day += ONE_DAY
            if self.is_business_day(day):
                count += 1
        return day

    def business_days_between(self, after: dt.date, until: dt.date) -> int:
        """Business days ``d`` with ``after < d <= until`` (0 when ``until <= after``)."""
        count = 0
        day = after + ONE_DAY
        while day <= until:
            if self.is_business_day(day):
                count += 1
            day += ONE_DAY
        return count


DEFAULT_CALENDAR = FederalBusinessCalendar()


def is_business_day(day: dt.date, calendar: FederalBusinessCalendar | None = None) -> bool:
    return (calendar or DEFAULT_CALENDAR).is_business_day(day)


def business_day_number_n(start: dt.date, n: int, calendar: FederalBusinessCalendar | None = None) -> dt.date:
    """Date of business day ``n`` counting ``start`` as day 1 when it is a business day (see the class)."""
    return (calendar or DEFAULT_CALENDAR).business_day_number_n(start, n)
