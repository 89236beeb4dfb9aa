"""NSA cases (services/nsa/cases.py): building, the action state machine, reminders, batching."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from schemas.nsa import CaseAction, NSACase, NSAReminder
from services.nsa.cases import (
    InvalidActionError,
    apply_action,
    batch_candidates,
    build_case,
    business_days_remaining,
    due_reminders,
    mark_sent,
    refresh,
    reminder_id,
    skip_reason,
)
from services.nsa.classify import classify
from tests.unit.test_nsa_support import (
    HAND_HOLIDAYS,
    every_day,
    hand_business_day,
    make_context,
    make_event,
    make_line,
)

D = dt.date
INITIAL = D(2025, 12, 19)  # production date of the default event (payment date 12-22)
OPEN_DEADLINE = D(2026, 2, 3)


def federal_case(**kwargs: Any) -> NSACase:
    kwargs.setdefault("facility", "23")  # emergency room: federal
    return build_case(make_event(**kwargs))


def action(kind: str, day: dt.date, action_id: str | None = None, claim_key: str | None = None) -> CaseAction:
    return CaseAction(
        action_id=action_id or f"{kind}-{day.isoformat()}",
        claim_key=claim_key or "87726|PAYER-CLM-1",
        action=kind,
        action_date=day,
    )


def sweep(case: NSACase, first: dt.date, last: dt.date, offsets=(10, 5, 1)) -> list[NSAReminder]:
    """Call due_reminders every day (as a timer would), recording what was sent; return all emitted."""
    emitted: list[NSAReminder] = []
    for today in every_day(first, last):
        case = refresh(case, today)
        due = due_reminders(case, today, offsets)
        emitted.extend(due)
        case = mark_sent(case, due)
    return emitted


def test_build_case() -> None:
    case = federal_case()
    assert case.claim_key == "87726|PAYER-CLM-1"
    assert case.classification.category == "federal"
    assert (case.initial_date, case.initial_date_basis) == (INITIAL, "production_date")
    assert case.deadlines.open_negotiation_deadline == OPEN_DEADLINE
    assert case.deadlines.idr_window_start is None
    assert case.state == "open"
    assert (case.payer_id, case.provider_npi, case.provider_tin) == ("87726", "1234567893", "123456789")
    assert case.service_codes == ["99284"]
    dumped = case.model_dump(mode="json")
    assert "patient_control_number" not in dumped and "patient_key" not in dumped
    assert NSACase.model_validate_json(case.model_dump_json()) == case


def test_build_case_with_known_receipt_date_and_context() -> None:
    event = make_event(facility="11")
    case = build_case(event, make_context(event, emergency=True), known_received=D(2025, 12, 23))
    assert (case.initial_date, case.initial_date_basis) == (D(2025, 12, 23), "remittance_received")
    assert case.classification.reason == "context_emergency"


def test_final_payment_case_is_resolved() -> None:
    case = federal_case(remarks=["N875"])
    assert case.state == "resolved"
    assert due_reminders(case, OPEN_DEADLINE) == []


def test_skip_reason() -> None:
    assert skip_reason(make_event(status="22")) == "reversal"
    assert skip_reason(make_event(status="23")) == "not_our_claim"
    assert skip_reason(make_event(status="25")) == "predetermination"
    for status in ("1", "2", "3", "4", "19", "20", "21"):
        assert skip_reason(make_event(status=status)) is None


def test_business_days_remaining() -> None:
    assert business_days_remaining(D(2026, 2, 3), D(2026, 2, 3)) == 0
    assert business_days_remaining(D(2026, 1, 30), D(2026, 2, 2)) == 1  # Friday -> Monday
    assert business_days_remaining(D(2026, 1, 31), D(2026, 2, 2)) == 1  # Saturday -> Monday
    assert business_days_remaining(D(2025, 12, 24), D(2025, 12, 26)) == 1  # over Christmas
    assert business_days_remaining(D(2026, 1, 31), D(2026, 1, 30)) == -1  # Saturday after a Friday deadline
    assert business_days_remaining(D(2026, 2, 3), D(2026, 1, 30)) == -2
    for today in every_day(INITIAL, OPEN_DEADLINE):
        remaining = business_days_remaining(today, OPEN_DEADLINE)
        # counting business days after today: today + remaining business days = the deadline
        if today.weekday() < 5 and today not in HAND_HOLIDAYS:
            assert hand_business_day(today, remaining + 1) == OPEN_DEADLINE
        else:  # day 1 is the next business day, which counts as one of the remaining days
            assert hand_business_day(today, remaining) == OPEN_DEADLINE


def test_open_negotiation_reminders_fire_once_each_on_time() -> None:
    emitted = sweep(federal_case(), INITIAL, OPEN_DEADLINE + dt.timedelta(days=10))
    assert [(r.deadline_kind, r.offset, r.business_days_remaining) for r in emitted] == [
        ("open_negotiation", 10, 10),
        ("open_negotiation", 5, 5),
        ("open_negotiation", 1, 1),
    ]
    assert len({r.reminder_id for r in emitted}) == 3
    # offset 10 fires when 10 business days remain: 10 business days before 2026-02-03
    assert emitted[0].as_of == D(2026, 1, 20)
    assert emitted[2].as_of == D(2026, 2, 2)
    for reminder in emitted:
        assert reminder.deadline_date == OPEN_DEADLINE
        assert reminder.classification == "federal"
        assert reminder.provider_npi == "1234567893" and reminder.payer_id == "87726"


def test_each_reminder_id_appears_once_with_the_sent_set() -> None:
    case = federal_case()
    sent: set[str] = set()
    seen: list[str] = []
    for today in every_day(INITIAL, OPEN_DEADLINE):
        for reminder in due_reminders(case, today, sent=sent):
            seen.append(reminder.reminder_id)
            sent.add(reminder.reminder_id)
        # calling again the same day with the sent set gives nothing new
        assert due_reminders(case, today, sent=sent) == []
    assert len(seen) == len(set(seen)) == 3


def test_late_case_fires_only_the_tightest_offset() -> None:
    case = federal_case()
    first_seen = D(2026, 1, 29)  # 3 business days before the deadline
    assert business_days_remaining(first_seen, OPEN_DEADLINE) == 3
    emitted = sweep(case, first_seen, OPEN_DEADLINE + dt.timedelta(days=3))
    assert [r.offset for r in emitted] == [5, 1]


def test_no_reminders_after_the_deadline_and_case_expires() -> None:
    case = federal_case()
    after = OPEN_DEADLINE + dt.timedelta(days=1)
    assert due_reminders(case, after) == []
    assert refresh(case, OPEN_DEADLINE).state == "open"
    assert refresh(case, after).state == "expired"


def test_negotiation_opened_moves_the_clock() -> None:
    case = federal_case()
    opened = D(2026, 1, 5)
    moved = apply_action(case, action("negotiation_opened", opened))
    assert moved.state == "negotiating"
    assert moved.deadlines.negotiation_opened == opened
    assert moved.deadlines.negotiation_period_end == hand_business_day(opened, 30)
    assert moved.deadlines.idr_window_start == hand_business_day(opened, 31)
    assert moved.deadlines.idr_window_end == hand_business_day(opened, 34)
    assert moved.deadlines.open_negotiation_deadline == OPEN_DEADLINE

    # the open-negotiation reminders stop; the IDR window reminders take over
    emitted = sweep(moved, opened, moved.deadlines.idr_window_end + dt.timedelta(days=7))
    kinds = [(r.deadline_kind, r.offset) for r in emitted]
    assert ("open_negotiation", 10) not in kinds
    assert kinds == [
        ("idr_window_start", 10),
        ("idr_window_end", 10),
        ("idr_window_start", 5),
        ("idr_window_end", 5),
        ("idr_window_start", 1),
        ("idr_window_end", 1),
    ]
    end = [r for r in emitted if r.deadline_kind == "idr_window_end"]
    assert end[-1].as_of == hand_business_day(opened, 33)
    assert refresh(moved, moved.deadlines.idr_window_end + dt.timedelta(days=1)).state == "expired"


def test_negotiation_opened_date_correction_gives_new_reminder_ids() -> None:
    case = apply_action(federal_case(), action("negotiation_opened", D(2026, 1, 5)))
    today = hand_business_day(D(2026, 1, 5), 24)
    before = due_reminders(case, today)
    corrected = apply_action(case, action("negotiation_opened", D(2026, 1, 6), action_id="fix"))
    after = due_reminders(corrected, today)
    assert before and after
    assert {r.reminder_id for r in before}.isdisjoint({r.reminder_id for r in after})


@pytest.mark.parametrize("closing", ["resolved", "not_pursuing", "idr_initiated"])
def test_closing_actions_stop_reminders(closing: str) -> None:
    case = federal_case()
    today = D(2026, 1, 20)
    assert due_reminders(case, today)
    closed = apply_action(case, action(closing, D(2026, 1, 15)))
    assert closed.state == closing
    assert due_reminders(closed, today) == []
    assert sweep(closed, INITIAL, OPEN_DEADLINE + dt.timedelta(days=60)) == []
    negotiating = apply_action(case, action("negotiation_opened", D(2026, 1, 5)))
    closed = apply_action(negotiating, action(closing, D(2026, 1, 15)))
    assert sweep(closed, D(2026, 1, 5), D(2026, 4, 30)) == []


def test_dates_recorded_by_actions() -> None:
    case = apply_action(federal_case(), action("idr_initiated", D(2026, 3, 2)))
    assert case.idr_initiated_date == D(2026, 3, 2)
    case = apply_action(case, action("resolved", D(2026, 5, 1)))
    assert (case.state, case.closed_date) == ("resolved", D(2026, 5, 1))


def test_same_action_id_twice_changes_nothing() -> None:
    case = federal_case()
    once = apply_action(case, action("negotiation_opened", D(2026, 1, 5), action_id="a1"))
    twice = apply_action(once, action("negotiation_opened", D(2026, 1, 9), action_id="a1"))
    assert twice == once
    assert once.actions_applied == ["a1"]


def test_not_pursuing_then_negotiation_opened_revives() -> None:
    case = apply_action(federal_case(), action("not_pursuing", D(2026, 1, 2)))
    case = apply_action(case, action("negotiation_opened", D(2026, 1, 5)))
    assert (case.state, case.closed_date) == ("negotiating", None)


def test_expired_case_accepts_a_late_report() -> None:
    expired = refresh(federal_case(), OPEN_DEADLINE + dt.timedelta(days=3))
    assert expired.state == "expired"
    assert due_reminders(expired, OPEN_DEADLINE + dt.timedelta(days=3)) == []
    revived = apply_action(expired, action("negotiation_opened", OPEN_DEADLINE))
    assert revived.state == "negotiating"


@pytest.mark.parametrize(
    ("setup", "bad"),
    [
        ([], action("negotiation_opened", D(2025, 12, 18))),  # before the initial date
        ([], action("resolved", D(2026, 1, 2), claim_key="87726|OTHER")),
        ([action("resolved", D(2026, 1, 2))], action("negotiation_opened", D(2026, 1, 5))),
        ([action("resolved", D(2026, 1, 2))], action("not_pursuing", D(2026, 1, 5))),
        ([action("resolved", D(2026, 1, 2))], action("idr_initiated", D(2026, 1, 5))),
        ([action("idr_initiated", D(2026, 1, 2))], action("negotiation_opened", D(2026, 1, 5))),
    ],
)
def test_invalid_actions(setup: list[CaseAction], bad: CaseAction) -> None:
    case = federal_case()
    for step in setup:
        case = apply_action(case, step)
    with pytest.raises(InvalidActionError):
        apply_action(case, bad)


def test_state_cases_get_no_reminders_unknown_cases_do() -> None:
    state_case = federal_case(remarks=["N858"])
    assert state_case.classification.category == "state"
    assert sweep(state_case, INITIAL, OPEN_DEADLINE) == []
    unknown_case = build_case(make_event(facility="11", lines=[make_line("27447")], remarks=["N884"]))
    assert unknown_case.classification.category == "unknown"
    assert [r.offset for r in sweep(unknown_case, INITIAL, OPEN_DEADLINE)] == [10, 5, 1]


def test_reminders_sent_recorded_on_the_case() -> None:
    case = federal_case()
    due = due_reminders(case, D(2026, 1, 20))
    assert len(due) == 1
    case = mark_sent(case, due)
    assert case.reminders_sent == [due[0].reminder_id]
    assert mark_sent(case, due) is case
    assert due_reminders(case, D(2026, 1, 20)) == []


def test_reminder_ids_are_deterministic() -> None:
    base = reminder_id("87726|X", "open_negotiation", 10, OPEN_DEADLINE)
    assert base == reminder_id("87726|X", "open_negotiation", 10, OPEN_DEADLINE)
    assert base != reminder_id("87726|X", "open_negotiation", 5, OPEN_DEADLINE)
    assert base != reminder_id("87726|X", "idr_window_end", 10, OPEN_DEADLINE)
    assert base != reminder_id("87726|X", "open_negotiation", 10, OPEN_DEADLINE + dt.timedelta(days=1))
    assert base != reminder_id("87726|Y", "open_negotiation", 10, OPEN_DEADLINE)


def test_reminders_carry_no_patient_data_or_amounts() -> None:
    fields = set(NSAReminder.model_fields)
    assert not {name for name in fields if "patient" in name or "amount" in name or "service" in name}


def test_custom_and_invalid_offsets() -> None:
    emitted = sweep(federal_case(), INITIAL, OPEN_DEADLINE, offsets=(3, 0))
    assert [(r.offset, r.as_of) for r in emitted] == [(3, D(2026, 1, 29)), (0, OPEN_DEADLINE)]
    with pytest.raises(ValueError):
        due_reminders(federal_case(), INITIAL, (5, -1))


def batch_case(claim: str, production: dt.date, **kwargs: Any) -> NSACase:
    kwargs.setdefault("lines", [make_line("99284")])
    return build_case(
        make_event(claim_id=claim, payer_claim_id=claim, production=production, payment_date=production,
                   facility="23", **kwargs)
    )  # fmt: skip


def test_batch_candidates() -> None:
    start = D(2026, 3, 2)
    limit = hand_business_day(start, 30)
    cases = [
        batch_case("A", start),
        batch_case("B", start + dt.timedelta(days=7), lines=[make_line("99285")]),  # same family 992
        batch_case("C", limit),  # last day of the 30-business-day span
        batch_case("D", limit + dt.timedelta(days=1)),  # outside: starts a new window (alone)
        batch_case("E", start, payer_id="60054"),  # other payer
        batch_case("F", start, lines=[make_line("27447")]),  # other service family
        batch_case("G", start, payee_tin="999999999"),  # other provider
    ]
    groups = batch_candidates(cases)
    assert len(groups) == 1
    group = groups[0]
    assert group.claim_keys == ["87726|A", "87726|B", "87726|C"]
    assert (group.provider_id, group.payer_id, group.service_family) == ("123456789", "87726", "992")
    assert (group.first_initial_date, group.last_initial_date) == (start, limit)


def test_batch_candidates_skip_closed_and_state_cases() -> None:
    start = D(2026, 3, 2)
    a = batch_case("A", start)
    b = apply_action(batch_case("B", start), action("resolved", start, claim_key="87726|B"))
    c = batch_case("C", start, remarks=["N858"])
    assert batch_candidates([a, b, c]) == []
    d = batch_case("D", start, payee_tin=None)  # provider falls back to the NPI
    e = batch_case("E", start, payee_tin=None)
    groups = batch_candidates([d, e])
    assert [g.provider_id for g in groups] == ["1234567893"]


def test_classify_and_build_agree() -> None:
    event = make_event(facility="23")
    assert build_case(event).classification == classify(event)
