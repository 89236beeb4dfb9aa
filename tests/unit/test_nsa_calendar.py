"""The federal business-day calendar (services/nsa/calendar.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from services.nsa.calendar import (
    DEFAULT_CALENDAR,
    FederalBusinessCalendar,
    business_day_number_n,
    is_business_day,
)
from tests.unit.test_nsa_support import HAND_HOLIDAYS, OPM_FEDERAL_HOLIDAYS, every_day, hand_business_day

D = dt.date


@pytest.mark.parametrize(
    "day",
    [
        D(2027, 12, 24),  # Christmas 2027 (Saturday) observed Friday
        D(2027, 12, 31),  # New Year's Day 2028 (Saturday) observed Friday of the year before
        D(2026, 7, 3),  # July 4th 2026 (Saturday) observed Friday
        D(2021, 12, 31),  # New Year's Day 2022 (Saturday) observed Friday 2021-12-31
        D(2021, 12, 24),
        D(2021, 6, 18),  # first Juneteenth (Saturday) observed Friday
        D(2027, 6, 18),
        D(2027, 7, 5),  # July 4th 2027 (Sunday) observed Monday
        D(2028, 11, 10),  # Veterans Day 2028 (Saturday) observed Friday
        D(2022, 12, 26),  # Christmas 2022 (Sunday) observed Monday
        D(2023, 1, 2),  # New Year's Day 2023 (Sunday) observed Monday
        D(2025, 1, 20),  # MLK Day (and Inauguration Day)
        D(2025, 11, 27),  # Thanksgiving
        D(2025, 12, 25),
    ],
)
def test_observed_federal_holidays_are_not_business_days(day: dt.date) -> None:
    assert day.weekday() < 5
    assert DEFAULT_CALENDAR.is_holiday(day)
    assert not is_business_day(day)


@pytest.mark.parametrize(
    "day",
    [
        D(2021, 1, 20),  # Inauguration Day: DC-area only
        D(2025, 1, 9),  # executive-order closure (National Day of Mourning): not a legal public holiday
        D(2025, 12, 24),  # executive-order closure
        D(2025, 12, 26),  # executive-order closure
        D(2025, 11, 28),  # the day after Thanksgiving
        D(2025, 4, 18),  # Good Friday
        D(2020, 6, 19),  # Juneteenth before it became a federal holiday (2021)
        D(2025, 12, 31),
    ],
)
def test_days_that_stay_business_days(day: dt.date) -> None:
    assert is_business_day(day)


def test_weekends_are_never_business_days() -> None:
    for day in every_day(D(2025, 1, 1), D(2028, 12, 31)):
        if day.weekday() >= 5:
            assert not is_business_day(day)


def test_hand_list_is_weekdays_only_and_complete() -> None:
    for year, days in OPM_FEDERAL_HOLIDAYS.items():
        assert all(day.weekday() < 5 for day in days), year
    assert len(OPM_FEDERAL_HOLIDAYS[2025]) == 11
    assert len(OPM_FEDERAL_HOLIDAYS[2026]) == 11
    assert len(OPM_FEDERAL_HOLIDAYS[2027]) == 12  # Dec 31 stands for New Year's Day 2028
    assert len(OPM_FEDERAL_HOLIDAYS[2028]) == 10


def test_library_agrees_with_the_hand_list_2025_2028() -> None:
    for day in every_day(D(2025, 1, 1), D(2028, 12, 31)):
        if day.weekday() < 5:
            assert is_business_day(day) == (day not in HAND_HOLIDAYS), day


def test_executive_closures_are_opt_in() -> None:
    calendar = FederalBusinessCalendar(include_executive_closures=True)
    for day in (D(2024, 12, 24), D(2025, 1, 9), D(2025, 12, 24), D(2025, 12, 26)):
        assert not calendar.is_business_day(day)
        assert DEFAULT_CALENDAR.is_business_day(day)
    assert calendar.is_business_day(D(2021, 1, 20))


def test_extra_closed_dates() -> None:
    closure = D(2026, 3, 10)
    calendar = FederalBusinessCalendar(extra_closed_dates=[closure])
    assert not calendar.is_business_day(closure)
    assert closure in calendar.holidays_in(2026)
    assert calendar.business_day_number_n(D(2026, 3, 9), 2) == D(2026, 3, 11)


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (D(2025, 12, 19), 1, D(2025, 12, 19)),  # Friday business day: itself is day 1
        (D(2025, 12, 20), 1, D(2025, 12, 22)),  # Saturday: Monday is day 1
        (D(2025, 12, 25), 1, D(2025, 12, 26)),  # Christmas: next business day is day 1
        (D(2025, 12, 24), 2, D(2025, 12, 26)),  # across Christmas
        (D(2025, 12, 31), 2, D(2026, 1, 2)),  # across New Year's Day
        (D(2027, 12, 23), 2, D(2027, 12, 27)),  # across observed Christmas (Fri) and the weekend
        (D(2027, 12, 30), 2, D(2028, 1, 3)),  # across observed New Year (Fri 2027-12-31) and the weekend
        (D(2026, 7, 2), 2, D(2026, 7, 6)),  # across observed July 4th (Fri 2026-07-03)
        (D(2025, 11, 26), 2, D(2025, 11, 28)),  # day before Thanksgiving
    ],
)
def test_business_day_number_n(start: dt.date, n: int, expected: dt.date) -> None:
    assert business_day_number_n(start, n) == expected
    assert hand_business_day(start, n) == expected


def test_business_day_number_must_be_positive() -> None:
    with pytest.raises(ValueError):
        business_day_number_n(D(2025, 1, 2), 0)


def test_business_days_between() -> None:
    calendar = DEFAULT_CALENDAR
    assert calendar.business_days_between(D(2025, 12, 19), D(2025, 12, 19)) == 0
    assert calendar.business_days_between(D(2025, 12, 19), D(2025, 12, 22)) == 1
    assert calendar.business_days_between(D(2025, 12, 24), D(2025, 12, 26)) == 1
    assert calendar.business_days_between(D(2025, 12, 26), D(2025, 12, 24)) == 0


def test_number_n_matches_hand_count_for_every_start_2025_2027() -> None:
    for start in every_day(D(2025, 1, 1), D(2027, 12, 31)):
        for n in (1, 2, 5, 30, 31, 34):
            assert business_day_number_n(start, n) == hand_business_day(start, n), (start, n)
