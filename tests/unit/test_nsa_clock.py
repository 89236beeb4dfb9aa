"""The NSA clock (services/nsa/clock.py) and ``claimwatch nsa-clock`` against an independent count."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from services import cli
from services.nsa.clock import (
    NoReceivedDateError,
    compute_deadlines,
    idr_window,
    negotiation_period_end,
    open_negotiation_deadline,
    received_date_for,
)
from tests.unit.test_nsa_support import every_day, hand_business_day, make_event

D = dt.date


@pytest.fixture
def nsa_only_cli(monkeypatch: pytest.MonkeyPatch):
    """``claimwatch`` with only the NSA subcommands (other areas may not be importable in unit tests)."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("services.nsa.cli",))
    return cli.main


def test_nsa_cli_is_registered() -> None:
    assert "services.nsa.cli" in cli.COMMAND_MODULES


@pytest.mark.parametrize(
    ("initial", "deadline"),
    [
        (D(2025, 12, 19), D(2026, 2, 3)),  # Friday before Christmas / New Year / MLK Day
        (D(2025, 12, 25), D(2026, 2, 9)),  # Christmas: day 1 is Friday 12-26
        (D(2025, 12, 20), D(2026, 2, 4)),  # Saturday: day 1 is Monday 12-22
        (D(2025, 11, 26), D(2026, 1, 9)),  # day before Thanksgiving
        (D(2026, 7, 3), D(2026, 8, 14)),  # observed July 4th: day 1 is Monday 07-06
        (D(2027, 12, 24), D(2028, 2, 8)),  # observed Christmas, then observed New Year 12-31, MLK Day
        (D(2027, 12, 31), D(2028, 2, 14)),  # observed New Year's Day 2028
    ],
)
def test_open_negotiation_deadline_examples(initial: dt.date, deadline: dt.date) -> None:
    assert open_negotiation_deadline(initial) == deadline
    assert hand_business_day(initial, 30) == deadline


def test_negotiation_and_idr_window_example() -> None:
    opened = D(2025, 12, 19)
    assert negotiation_period_end(opened) == D(2026, 2, 3)
    assert idr_window(opened) == (D(2026, 2, 4), D(2026, 2, 9))
    # IDR window opening the day after the period ends, 4 business days long
    opened = D(2026, 6, 1)
    end = negotiation_period_end(opened)
    start, last = idr_window(opened)
    assert hand_business_day(end, 2) == start
    assert hand_business_day(start, 4) == last


def test_compute_deadlines() -> None:
    deadlines = compute_deadlines(D(2025, 12, 19))
    assert deadlines.open_negotiation_deadline == D(2026, 2, 3)
    assert deadlines.negotiation_opened is None and deadlines.idr_window_end is None
    deadlines = compute_deadlines(D(2025, 12, 19), D(2026, 1, 5))
    assert deadlines.negotiation_opened == D(2026, 1, 5)
    assert deadlines.negotiation_period_end == hand_business_day(D(2026, 1, 5), 30)
    assert deadlines.idr_window_start == hand_business_day(D(2026, 1, 5), 31)
    assert deadlines.idr_window_end == hand_business_day(D(2026, 1, 5), 34)


def test_received_date_rule() -> None:
    event = make_event(production=D(2025, 12, 19), payment_date=D(2025, 12, 22))
    assert received_date_for(event, D(2025, 12, 23)) == (D(2025, 12, 23), "remittance_received")
    assert received_date_for(event) == (D(2025, 12, 19), "production_date")
    event = make_event(production=D(2025, 12, 23), payment_date=D(2025, 12, 22))
    assert received_date_for(event) == (D(2025, 12, 22), "payment_date")
    event = make_event(production=D(2025, 12, 22), payment_date=D(2025, 12, 22))
    assert received_date_for(event) == (D(2025, 12, 22), "production_date")
    assert received_date_for(make_event(production=None)) == (D(2025, 12, 22), "payment_date")
    assert received_date_for(make_event(payment_date=None)) == (D(2025, 12, 19), "production_date")
    with pytest.raises(NoReceivedDateError):
        received_date_for(make_event(production=None, payment_date=None))


def _run(main, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_nsa_clock_output_shape(nsa_only_cli, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(nsa_only_cli, capsys, "nsa-clock", "--initial-date", "2025-12-19")
    assert code == 0
    assert json.loads(out) == {"open_negotiation_deadline": "2026-02-03"}
    code, out, _ = _run(
        nsa_only_cli,
        capsys,
        "nsa-clock",
        "--initial-date",
        "2025-12-19",
        "--negotiation-opened",
        "2025-12-19",
    )
    assert code == 0
    assert json.loads(out) == {
        "open_negotiation_deadline": "2026-02-03",
        "negotiation_period_end": "2026-02-03",
        "idr_window_start": "2026-02-04",
        "idr_window_end": "2026-02-09",
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["nsa-clock", "--initial-date", "2025-13-01"],
        ["nsa-clock", "--initial-date", "2025-02-30"],
        ["nsa-clock", "--initial-date", "20250101"],
        ["nsa-clock", "--initial-date", "yesterday"],
        ["nsa-clock", "--initial-date", "2025-01-02", "--negotiation-opened", "2025-1-5"],
        ["nsa-clock", "--initial-date", "2025-01-02", "--negotiation-opened", "2025-01-01"],
        ["nsa-clock", "--initial-date", "9999-12-30"],
    ],
)
def test_nsa_clock_bad_dates(nsa_only_cli, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = _run(nsa_only_cli, capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("claimwatch nsa-clock: ")
    assert "Traceback" not in err


def test_nsa_clock_warns_when_negotiation_opened_late(nsa_only_cli, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(
        nsa_only_cli,
        capsys,
        "nsa-clock",
        "--initial-date",
        "2025-01-02",
        "--negotiation-opened",
        "2025-06-02",
    )
    assert code == 0
    assert "negotiation_period_end" in json.loads(out)
    assert "warning" in err


def test_nsa_clock_every_date_2025_2027_against_independent_count(
    nsa_only_cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """Done-when of issue 6: with and without --negotiation-opened, every date of 2025-2027."""
    checked = 0
    for day in every_day(D(2025, 1, 1), D(2027, 12, 31)):
        iso = day.isoformat()
        code, out, _ = _run(nsa_only_cli, capsys, "nsa-clock", "--initial-date", iso)
        assert code == 0
        assert json.loads(out) == {"open_negotiation_deadline": hand_business_day(day, 30).isoformat()}, iso

        code, out, _ = _run(nsa_only_cli, capsys, "nsa-clock", "--initial-date", iso, "--negotiation-opened", iso)
        assert code == 0
        assert json.loads(out) == {
            "open_negotiation_deadline": hand_business_day(day, 30).isoformat(),
            "negotiation_period_end": hand_business_day(day, 30).isoformat(),
            "idr_window_start": hand_business_day(day, 31).isoformat(),
            "idr_window_end": hand_business_day(day, 34).isoformat(),
        }, iso
        checked += 1
    assert checked == 365 * 3


def test_negotiation_opened_later_than_initial_every_date(nsa_only_cli, capsys: pytest.CaptureFixture[str]) -> None:
    """The negotiation dates depend on the opened day only: opened 10 calendar days after the initial date."""
    for opened in every_day(D(2025, 1, 11), D(2027, 12, 31)):
        initial = opened - dt.timedelta(days=10)
        code, out, _ = _run(
            nsa_only_cli, capsys, "nsa-clock", "--initial-date", initial.isoformat(),
            "--negotiation-opened", opened.isoformat(),
        )  # fmt: skip
        assert code == 0
        result = json.loads(out)
        assert result["open_negotiation_deadline"] == hand_business_day(initial, 30).isoformat()
        assert result["negotiation_period_end"] == hand_business_day(opened, 30).isoformat()
        assert result["idr_window_start"] == hand_business_day(opened, 31).isoformat()
        assert result["idr_window_end"] == hand_business_day(opened, 34).isoformat()
