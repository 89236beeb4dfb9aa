"""NSA cases: build a case from a remittance, move it with user actions, find the reminders that are due.

Everything here is pure: a case (``schemas.nsa.NSACase``, immutable) goes in, a new case comes out. The
live agent keeps the cases in a table keyed by claim key and persists ``reminders_sent`` with the case,
which is what makes each reminder fire once even across restarts.

States and actions (``apply_action``):

=================  ====================================================  =========================
action             allowed from                                          result
=================  ====================================================  =========================
negotiation_opened open, negotiating (date correction), expired,         negotiating; deadlines
                   not_pursuing                                          recomputed from the date
idr_initiated      open, negotiating, expired, not_pursuing,             idr_initiated
                   idr_initiated (no-op)
resolved           any                                                   resolved
not_pursuing       open, negotiating, expired, idr_initiated,            not_pursuing
                   not_pursuing (no-op)
=================  ====================================================  =========================

Anything else raises InvalidActionError (the live agent dead-letters it). An action whose id was already
applied changes nothing. ``negotiation_opened`` must not be dated before the initial date.

Reminders (``due_reminders``): only for federal and unknown cases (a state process has its own clock);
in state open the deadline is the open-negotiation deadline; in state negotiating, the first and the last
day of the IDR window (the start only until it arrives). A reminder for offset ``k`` is due when at most
``k`` business days remain (remaining = business days after today up to and including the deadline; 0 =
the deadline is today; passed deadlines give none). When several offsets are due at once (a case seen
late) only the tightest one fires: one reminder per threshold, never a burst of stale ones.

Batching (``batch_candidates``): federal/unknown cases still open, same provider (TIN when known, else
NPI), same payer id, same service family = first 3 characters of a procedure code (an approximation of
"similar service": CPT codes sharing their first three characters sit in the same section), initial
dates within the 30-business-day period beginning on the earliest one. A case with several code
families may appear in several groups.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence

from schemas.claims import ClaimContext
from schemas.nsa import (
    CaseAction,
    CaseState,
    DeadlineKind,
    NSABatchCandidate,
    NSACase,
    NSAClassification,
    NSAReminder,
)
from schemas.remittance import RemittanceEvent
from services.nsa.calendar import DEFAULT_CALENDAR, FederalBusinessCalendar
from services.nsa.classify import classify, is_final_payment
from services.nsa.clock import compute_deadlines, received_date_for

__all__ = [
    "DEFAULT_OFFSETS",
    "REMINDER_CATEGORIES",
    "CaseAction",
    "InvalidActionError",
    "NSACase",
    "NSAReminder",
    "active_deadlines",
    "apply_action",
    "batch_candidates",
    "build_case",
    "business_days_remaining",
    "due_reminders",
    "mark_sent",
    "refresh",
    "reminder_id",
    "skip_reason",
]

DEFAULT_OFFSETS: tuple[int, ...] = (10, 5, 1)
REMINDER_CATEGORIES = frozenset({"federal", "unknown"})
CLOSED_STATES = frozenset({"resolved", "not_pursuing"})
BATCH_SPAN_BUSINESS_DAYS = 30
NOT_INITIAL_DETERMINATION = {"22": "reversal", "23": "not_our_claim", "25": "predetermination"}


class InvalidActionError(ValueError):
    """A case action that does not fit the case (wrong claim, wrong state, impossible date)."""


def skip_reason(event: RemittanceEvent) -> str | None:
    """Why a remittance cannot start an NSA clock (reversal, not our claim, predetermination), or None."""
    return NOT_INITIAL_DETERMINATION.get(event.status_code.strip())


def _service_codes(event: RemittanceEvent) -> list[str]:
    return sorted(
        {
            line.procedure_code.strip().upper()
            for line in event.service_lines
            if line.procedure_qualifier.upper() != "NU" and line.procedure_code.strip()
        }
    )


def build_case(
    event: RemittanceEvent,
    context: ClaimContext | None = None,
    *,
    known_received: dt.date | None = None,
    classification: NSAClassification | None = None,
    calendar: FederalBusinessCalendar | None = None,
) -> NSACase:
    """A new case from the initial payment / denial. Raises clock.NoReceivedDateError without any date."""
    initial_date, basis = received_date_for(event, known_received)
    classification = classification or classify(event, context)
    line_dates = [line.service_date for line in event.service_lines if line.service_date]
    return NSACase(
        claim_key=event.claim_key,
        payer_id=event.payer.id or event.payment.trace_originator,
        payer_name=event.payer.name,
        provider_npi=event.payee.npi,
        provider_tin=event.payee.tax_id,
        rendering_npi=event.rendering_provider_npi,
        service_codes=_service_codes(event),
        service_date=event.service_date_from or (min(line_dates) if line_dates else None),
        claim_status_code=event.status_code,
        charge_amount=event.charge_amount,
        paid_amount=event.paid_amount,
        classification=classification,
        initial_date=initial_date,
        initial_date_basis=basis,
        deadlines=compute_deadlines(initial_date, calendar=calendar),
        state="resolved" if is_final_payment(classification) else "open",
        source_event_id=event.event_id,
    )


def business_days_remaining(today: dt.date, deadline: dt.date, calendar: FederalBusinessCalendar | None = None) -> int:
    """Business days after ``today`` up to and including ``deadline``: 0 when the deadline is today (or
    only non-business days lie between), negative when it has passed (-1 at least)."""
    calendar = calendar or DEFAULT_CALENDAR
    if today <= deadline:
        return calendar.business_days_between(today, deadline)
    return -max(1, calendar.business_days_between(deadline, today))


def apply_action(case: NSACase, action: CaseAction, calendar: FederalBusinessCalendar | None = None) -> NSACase:
    """The case after a user action (table in the module docstring). Idempotent per action id."""
    if action.claim_key != case.claim_key:
        raise InvalidActionError(f"action {action.action_id} is for {action.claim_key!r}, not {case.claim_key!r}")
    if action.action_id in case.actions_applied:
        return case
    state = case.state
    update: dict[str, object] = {}
    if action.action == "negotiation_opened":
        if state in {"idr_initiated", "resolved"}:
            raise InvalidActionError(f"negotiation_opened on a case in state {state}")
        if action.action_date < case.initial_date:
            raise InvalidActionError(
                f"negotiation opened {action.action_date} before the initial date {case.initial_date}"
            )
        update = {
            "state": "negotiating",
            "deadlines": compute_deadlines(case.initial_date, action.action_date, calendar),
            "closed_date": None,
        }
    elif action.action == "idr_initiated":
        if state == "resolved":
            raise InvalidActionError("idr_initiated on a resolved case")
        if state != "idr_initiated":
            update = {"state": "idr_initiated", "idr_initiated_date": action.action_date, "closed_date": None}
    elif action.action == "resolved":
        if state != "resolved":
            update = {"state": "resolved", "closed_date": action.action_date}
    elif action.action == "not_pursuing":
        if state == "resolved":
            raise InvalidActionError("not_pursuing on a resolved case")
        if state != "not_pursuing":
            update = {"state": "not_pursuing", "closed_date": action.action_date}
    update["actions_applied"] = [*case.actions_applied, action.action_id]
    return case.model_copy(update=update)


def active_deadlines(case: NSACase) -> list[tuple[DeadlineKind, dt.date]]:
    """The deadlines reminders are about in the case's current state."""
    deadlines = case.deadlines
    if case.state == "open":
        return [("open_negotiation", deadlines.open_negotiation_deadline)]
    if case.state == "negotiating" and deadlines.idr_window_start and deadlines.idr_window_end:
        return [
            ("idr_window_start", deadlines.idr_window_start),
            ("idr_window_end", deadlines.idr_window_end),
        ]
    return []


def refresh(case: NSACase, today: dt.date) -> NSACase:
    """The case with ``state`` = expired when the window in force has passed with no action recorded."""
    deadlines = case.deadlines
    passed = (case.state == "open" and today > deadlines.open_negotiation_deadline) or (
        case.state == "negotiating" and deadlines.idr_window_end is not None and today > deadlines.idr_window_end
    )
    new_state: CaseState = "expired" if passed else case.state
    return case if new_state == case.state else case.model_copy(update={"state": new_state})


def reminder_id(claim_key: str, deadline_kind: str, offset: int, deadline: dt.date) -> str:
    text = f"{claim_key}|{deadline_kind}|{offset}|{deadline.isoformat()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def due_reminders(
    case: NSACase,
    today: dt.date,
    offsets: Sequence[int] = DEFAULT_OFFSETS,
    *,
    sent: Collection[str] = (),
    calendar: FederalBusinessCalendar | None = None,
) -> list[NSAReminder]:
    """Reminders due on ``today`` and not yet sent (``case.reminders_sent`` plus ``sent``)."""
    if any(offset < 0 for offset in offsets):
        raise ValueError(f"reminder offsets must be >= 0 business days, got {list(offsets)}")
    if case.classification.category not in REMINDER_CATEGORIES or not offsets:
        return []
    already = set(case.reminders_sent).union(sent)
    reminders = []
    for kind, deadline in active_deadlines(case):
        remaining = business_days_remaining(today, deadline, calendar)
        if remaining < 0:
            continue
        qualifying = [offset for offset in offsets if remaining <= offset]
        if not qualifying:
            continue
        offset = min(qualifying)
        identifier = reminder_id(case.claim_key, kind, offset, deadline)
        if identifier in already:
            continue
        reminders.append(
            NSAReminder(
                reminder_id=identifier,
                claim_key=case.claim_key,
                deadline_kind=kind,
                deadline_date=deadline,
                as_of=today,
                business_days_remaining=remaining,
                offset=offset,
                classification=case.classification.category,
                case_state=case.state,
                payer_id=case.payer_id,
                provider_npi=case.provider_npi,
                provider_tin=case.provider_tin,
            )
        )
    return reminders


def mark_sent(case: NSACase, reminders: Iterable[NSAReminder | str]) -> NSACase:
    """The case with these reminder ids recorded as sent."""
    ids = {item if isinstance(item, str) else item.reminder_id for item in reminders}
    if ids <= set(case.reminders_sent):
        return case
    return case.model_copy(update={"reminders_sent": sorted(set(case.reminders_sent) | ids)})


def batch_candidates(
    cases: Iterable[NSACase], calendar: FederalBusinessCalendar | None = None
) -> list[NSABatchCandidate]:
    """Groups of two or more cases that could be batched for IDR (rules in the module docstring)."""
    calendar = calendar or DEFAULT_CALENDAR
    by_key: dict[tuple[str, str, str], list[NSACase]] = defaultdict(list)
    for case in cases:
        if case.classification.category not in REMINDER_CATEGORIES or case.state in CLOSED_STATES:
            continue
        provider = case.provider_tin or case.provider_npi
        if not provider or not case.payer_id:
            continue
        for family in sorted({code[:3] for code in case.service_codes if code}):
            by_key[(provider, case.payer_id, family)].append(case)
    groups: list[NSABatchCandidate] = []
    for (provider, payer, family), members in sorted(by_key.items()):
        members.sort(key=lambda case: (case.initial_date, case.claim_key))
        window: list[NSACase] = []
        limit: dt.date | None = None
        for case in [*members, None]:
            if case is not None and limit is not None and case.initial_date <= limit:
                window.append(case)
                continue
            if len({member.claim_key for member in window}) >= 2:
                groups.append(
                    NSABatchCandidate(
                        provider_id=provider,
                        payer_id=payer,
                        service_family=family,
                        claim_keys=list(dict.fromkeys(member.claim_key for member in window)),
                        first_initial_date=window[0].initial_date,
                        last_initial_date=window[-1].initial_date,
                    )
                )
            if case is not None:
                window = [case]
                limit = calendar.business_day_number_n(case.initial_date, BATCH_SPAN_BUSINESS_DAYS)
    return groups
