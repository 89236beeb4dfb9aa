"""No Surprises Act deadline tracking: the pure core (no Kafka, no Faust).

- ``calendar``: federal business days (weekends + US federal holidays as observed, from ``holidays``);
- ``clock``: open-negotiation deadline, negotiation period end, IDR window, the "received" date rule;
- ``classify``: federal / state / not_applicable / unknown from RARCs, CLP06, place of service, context;
- ``cases``: the case state machine, due reminders, batching candidates;
- ``cli``: ``claimwatch nsa-clock`` and ``claimwatch nsa-cases``.
"""

from services.nsa.calendar import (
    DEFAULT_CALENDAR,
    FederalBusinessCalendar,
    business_day_number_n,
    is_business_day,
)
from services.nsa.cases import (
    DEFAULT_OFFSETS,
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
from services.nsa.clock import (
    NoReceivedDateError,
    compute_deadlines,
    idr_window,
    negotiation_period_end,
    open_negotiation_deadline,
    received_date_for,
)

__all__ = [
    "DEFAULT_CALENDAR",
    "DEFAULT_OFFSETS",
    "FederalBusinessCalendar",
    "InvalidActionError",
    "NoReceivedDateError",
    "apply_action",
    "batch_candidates",
    "build_case",
    "business_day_number_n",
    "business_days_remaining",
    "classify",
    "compute_deadlines",
    "due_reminders",
    "idr_window",
    "is_business_day",
    "mark_sent",
    "negotiation_period_end",
    "open_negotiation_deadline",
    "received_date_for",
    "refresh",
    "reminder_id",
    "skip_reason",
]
