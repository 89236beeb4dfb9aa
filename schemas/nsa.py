"""No Surprises Act (NSA) models: the case table, user actions (cases topic) and reminders (NSA alert topic).

Counting rules and the meaning of every date are in ../shared/docs/DOMAIN.md ("No Surprises Act") and in
``services/nsa/clock.py``; the classification rules are in ``services/nsa/classify.py``.

PHI: nothing here carries patient data. A case names the claim by its claim key (payer | CLP07), the
payer and the provider (NPI / TIN) only; a reminder carries even less (no amounts, no service codes).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, get_args

from pydantic import Field

from schemas.common import Model, Money

SCHEMA_VERSION = 1

Category = Literal["federal", "state", "not_applicable", "unknown"]
"""federal = the federal NSA process governs (open negotiation + federal IDR); state = a specified state
law / All-Payer Model sets the amount (state process); not_applicable = outside the NSA; unknown = the
evidence is missing or contradictory (tracked like federal so that no window is missed)."""

Reason = Literal[
    # not_applicable
    "excluded_program",
    "excepted_benefit",
    "rarc_nsa_not_applicable",
    "notice_and_consent",
    "no_nsa_signal",
    # state
    "rarc_state_process",
    "context_state_law",
    # federal
    "rarc_federal_process",
    "rarc_open_negotiation_notice",
    "rarc_qpa_cost_share",
    "rarc_final_payment",
    "rarc_nsa_scope",
    "context_emergency",
    "context_air_ambulance",
    "context_in_network_facility",
    "emergency_place_of_service",
    "emergency_service_code",
    "air_ambulance_service",
    # unknown
    "rarc_nsa_may_apply",
    "conflict_excluded_program",
    "conflict_not_applicable",
    "conflict_state_federal",
    "conflict_state_context",
]
"""Bounded set: the reason is a metric label."""

REASONS: tuple[str, ...] = get_args(Reason)

CaseState = Literal["open", "negotiating", "idr_initiated", "resolved", "not_pursuing", "expired"]
"""open = waiting for open negotiation to be started; negotiating = open negotiation notice sent;
idr_initiated = IDR started; resolved / not_pursuing = closed by the user (or by a final-payment RARC);
expired = the window in force passed with no action recorded."""

ActionKind = Literal["negotiation_opened", "idr_initiated", "resolved", "not_pursuing"]

DeadlineKind = Literal["open_negotiation", "idr_window_start", "idr_window_end"]

InitialDateBasis = Literal["remittance_received", "production_date", "payment_date"]


class Deadlines(Model):
    """Every NSA date of a case, counted in federal business days (day 1 = the start day when it is a
    business day, else the next business day)."""

    initial_date: dt.date = Field(description="Day the initial payment / notice of denial was received.")
    open_negotiation_deadline: dt.date = Field(description="Business day 30 counted from initial_date.")
    negotiation_opened: dt.date | None = Field(None, description="Day the open negotiation notice was sent.")
    negotiation_period_end: dt.date | None = Field(None, description="Business day 30 from negotiation_opened.")
    idr_window_start: dt.date | None = Field(None, description="Business day 31 from negotiation_opened.")
    idr_window_end: dt.date | None = Field(None, description="Business day 34 from negotiation_opened.")


class NSAClassification(Model):
    category: Category
    reason: Reason = Field(description="Bounded reason code (metric label).")
    evidence: list[str] = Field(
        default_factory=list,
        description="Codes behind it: RARCs (N859...), CLP06=MC, POS=23, REV=0450, CPT=99284, context.*",
    )
    detail: str = Field("", description="One human-readable sentence.")


class NSACase(Model):
    """One claim's NSA case: what the live agent keeps in its table and ``nsa-cases`` prints."""

    schema_version: int = SCHEMA_VERSION
    event_type: Literal["nsa_case"] = "nsa_case"
    claim_key: str = Field(description="payer | CLP07 (RemittanceEvent.claim_key).")
    payer_id: str | None = None
    payer_name: str | None = None
    provider_npi: str | None = Field(None, description="Payee NPI (N1*PE).")
    provider_tin: str | None = Field(None, description="Payee tax id (N1*PE FI or REF*TJ).")
    rendering_npi: str | None = None
    service_codes: list[str] = Field(default_factory=list, description="Sorted distinct procedure codes.")
    service_date: dt.date | None = Field(None, description="First date of service.")
    claim_status_code: str = Field(description="CLP02 of the initial determination (4 = denial).")
    charge_amount: Money
    paid_amount: Money
    classification: NSAClassification
    initial_date: dt.date
    initial_date_basis: InitialDateBasis = Field(description="Which date stood for 'received' (DOMAIN.md).")
    deadlines: Deadlines
    state: CaseState = "open"
    idr_initiated_date: dt.date | None = None
    closed_date: dt.date | None = Field(None, description="Date of the resolved / not_pursuing action.")
    reminders_sent: list[str] = Field(default_factory=list, description="Sorted reminder ids already emitted.")
    actions_applied: list[str] = Field(default_factory=list, description="Action ids applied (idempotence).")
    source_event_id: str = Field(description="RemittanceEvent.event_id the case was built from.")


class CaseAction(Model):
    """A user action on a case (cases topic, keyed by claim key)."""

    schema_version: int = SCHEMA_VERSION
    event_type: Literal["nsa_case_action"] = "nsa_case_action"
    action_id: str = Field(description="Unique id of the action; applying the same id twice changes nothing.")
    claim_key: str
    action: ActionKind
    action_date: dt.date = Field(
        description="When it happened; for negotiation_opened, the day the open negotiation notice was sent."
    )
    note: str | None = Field(None, max_length=2000, description="Free text. Put no patient data here.")


class NSAReminder(Model):
    """A deadline reminder (NSA alert topic). No patient data, no amounts."""

    schema_version: int = SCHEMA_VERSION
    event_type: Literal["nsa_reminder"] = "nsa_reminder"
    reminder_id: str = Field(description="Deterministic: hash of claim key, deadline kind, offset, deadline date.")
    claim_key: str
    deadline_kind: DeadlineKind
    deadline_date: dt.date
    as_of: dt.date = Field(description="The day the reminder was found due.")
    business_days_remaining: int = Field(description="Business days after as_of up to the deadline (0 = today).")
    offset: int = Field(description="The configured offset (business days) this reminder stands for.")
    classification: Category
    case_state: CaseState
    payer_id: str | None = None
    provider_npi: str | None = None
    provider_tin: str | None = None


class NSABatchCandidate(Model):
    """Cases that could go to IDR together (same provider, same payer, similar service, 30 business days)."""

    provider_id: str = Field(description="TIN when known, else NPI.")
    payer_id: str
    service_family: str = Field(description="First 3 characters of the procedure code.")
    claim_keys: list[str]
    first_initial_date: dt.date
    last_initial_date: dt.date


class ClockTick(Model):
    """Internal clock message of the NSA case agent: 'today is this date, check the reminders'.

    The worker's timer sends one per partition of ``nsa.case-updates``; tests send their own to control
    the clock. A tick is acknowledged only after the reminders it emits and the case updates are flushed.
    """

    schema_version: int = SCHEMA_VERSION
    event_type: Literal["clock_tick"] = "clock_tick"
    today: dt.date
    partition: int = Field(ge=0, description="The partition this tick checks.")
