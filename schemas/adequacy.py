"""The SCA-opportunity alert topic: one SCAOpportunity per payer + specialty + region + rule + period.

An opportunity is updated (merged) as evidence grows; ``revision`` counts the updates. It names claims by
the payer's claim control number (CLP07) only: no patient data (no member id, name, ZIP5 or birth date).
Money is Decimal (a JSON string). Evidence is a JSON object whose content depends on the rule
(docs/reference-network.md lists it); money inside evidence is written as decimal strings, miles as
numbers rounded to 0.1.

The internal topic ``adequacy.observations`` carries AdequacyObservation (one claim, keyed payer | specialty |
region) and ValueObservation (evaluated lines, keyed value | period start) from the remittance handler to the
opportunity tracker (services/adequacy/agent.py).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from schemas.common import Model, Money

SCHEMA_VERSION = 1

Rule = Literal[
    "distance_gap",
    "count_gap",
    "denial_gap",
    "medicare_advantage_access",
    "recurrence",
    "value",
]
RULES: tuple[str, ...] = (
    "distance_gap",
    "count_gap",
    "denial_gap",
    "medicare_advantage_access",
    "recurrence",
    "value",
)


class ClaimRef(Model):
    """One claim behind an opportunity, by the payer's claim id, with its dollars."""

    payer_claim_id: str = Field(description="CLP07 (CLP01 when the payer sent no CLP07).")
    billed: Money = Field(description="CLP03 charge.")
    paid: Money = Field(description="CLP04 paid.")
    expected: Money | None = Field(None, description="Expected reimbursement when an evaluation gave one.")
    medicare: Money | None = Field(None, description="Medicare PFS amount of the claim when known.")


class NegotiationAnchors(Model):
    """The seed's SCA checklist, in numbers."""

    billed_amount: Money
    opening_ask_low: Money = Field(description="80% of billed (seed: open at 80-90% of billed charges).")
    opening_ask_high: Money = Field(description="90% of billed.")
    opening_ask_basis: str = "80-90% of billed charges"
    medicare_amount: Money | None = Field(None, description="Medicare amount of the claims, when known for all.")
    expected_counter_low: Money | None = Field(None, description="110% of Medicare; null without a Medicare amount.")
    expected_counter_high: Money | None = Field(None, description="150% of Medicare; null without a Medicare amount.")
    expected_counter_basis: str = "110-150% of Medicare"
    cited_gap: str = Field(description="The network gap to cite, in one sentence.")
    gap_exception: bool = Field(
        False, description="HMO/EPO/Medicare Advantage coverage: the member needs a gap exception for OON care."
    )
    checklist: list[str] = Field(default_factory=list, description="The seed's SCA checklist steps.")


class SCAOpportunity(Model):
    schema_version: int = SCHEMA_VERSION
    event_type: Literal["sca_opportunity"] = "sca_opportunity"
    opportunity_id: str = Field(description="Deterministic: hash of payer + specialty + region + rule + period.")
    payer_id: str
    payer_name: str | None = None
    payer_group: str = Field(
        "other", description="Short payer label from the reference folder's payers.csv ('other' when unknown)."
    )
    product_line: str | None = Field(
        None,
        description="Coverage of the claims, from the claim context product type or CLP06: hmo, epo, ppo, pos, "
        "medicare_advantage, medicaid, commercial...; 'mixed' when the merged claims differ.",
    )
    specialty_group: str = Field(description="Adequacy specialty group (normalized), or 'all' for the value rule.")
    region: str = Field(description="'TX-48201' (state + county FIPS), 'TX-752xx' (state + ZIP3) or 'TX' (state).")
    state: str | None = None
    county_fips: str | None = None
    rule: Rule
    period: str = Field(description="'YYYY-MM-DD..YYYY-MM-DD': the dedup period (calendar quarter by default).")
    period_start: dt.date
    period_end: dt.date
    first_claim_date: dt.date | None = None
    last_claim_date: dt.date | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    citations: list[str] = Field(default_factory=list)
    caveats: list[str] = Field(default_factory=list)
    claims: list[ClaimRef] = Field(default_factory=list, description="The most recent claims (bounded, 50 by default).")
    claim_count: int = Field(0, description="Distinct claims merged into the opportunity (not bounded).")
    billed_amount: Money
    paid_amount: Money
    expected_amount: Money | None = Field(None, description="Sum of expected over the claims that have one.")
    expected_claim_count: int = 0
    medicare_amount: Money | None = Field(None, description="Sum of Medicare over the claims that have one.")
    medicare_claim_count: int = 0
    anchors: NegotiationAnchors
    revision: int = Field(1, description="1 when first found; +1 at every update that changed it.")

    @property
    def alert_key(self) -> str:
        """Key of the alert topic: payer | specialty | region | rule."""
        return f"{self.payer_id}|{self.specialty_group}|{self.region}|{self.rule}"


# ------------------------------------------------------------------ internal topic adequacy.observations


class ObservedRegion(Model):
    """The region of a claim (services.adequacy.rules.Region)."""

    code: str = Field(description="'TX-48201', 'TX-752xx' or 'TX'.")
    state: str | None = None
    county_fips: str | None = None
    zip3: str | None = None
    basis: str = Field("patient_zip", description="patient_zip, service_zip or state.")


class ObservedClaim(Model):
    """What the recurrence rule needs of one claim (services.adequacy.rules.ClaimFacts without the patient's
    and the place of service's ZIP: the region is carried instead)."""

    claim_key: str
    payer_id: str
    payer_claim_id: str
    claim_date: dt.date = Field(description="First service date (else payment / production date).")
    status_code: str
    billed: Money
    paid: Money
    payer_name: str | None = None
    filing_indicator: str | None = None
    product_type: str | None = None
    specialty_group: str | None = None
    state: str | None = None
    denial_codes: list[str] = Field(default_factory=list)
    denied_amount: Money = Decimal(0)
    expected: Money | None = None
    medicare: Money | None = None
    payer_group: str = "other"


class AdequacyObservation(Model):
    """Internal: one assessable claim, re-keyed by its recurrence key (payer | specialty | region).

    Carries the claim-level opportunities of the claim (distance, count, denial, Medicare Advantage access)
    and the claim itself, which the opportunity tracker counts in its 90-day windows (by ``claim_date``).
    """

    schema_version: int = SCHEMA_VERSION
    event_type: Literal["adequacy_observation"] = "adequacy_observation"
    event_id: str = Field(description="RemittanceEvent.event_id observed.")
    recurrence_key: str = Field(description="payer | specialty | region: the key of the message.")
    claim_date: dt.date = Field(description="The date that places the claim in the recurrence windows.")
    region: ObservedRegion
    claim: ObservedClaim
    opportunities: list[SCAOpportunity] = Field(default_factory=list)


class ObservedLine(Model):
    """One evaluated service line, the value rule's input (services.adequacy.rules.LineOutcome)."""

    payer_id: str
    code: str
    status: str = Field(description="Line status of the evaluation (underpaid, as_expected, ..., reversal).")
    service_date: dt.date
    billed: Money
    paid: Money
    expected: Money | None = None
    allowed: Money | None = None
    payer_claim_id: str | None = None
    medicare: Money | None = None
    state: str | None = None
    payer_name: str | None = None
    payer_group: str | None = None
    claim_key: str | None = None
    line_index: int | None = None


class ValueObservation(Model):
    """Internal: the evaluated lines that fall in one dedup period, of the remittances of one batch of the
    remittances agent (one message per period and batch, not per claim), keyed ``value|<period start>`` so
    that one partition sees the whole period (the group's top codes are ranked over all payers)."""

    schema_version: int = SCHEMA_VERSION
    event_type: Literal["value_observation"] = "value_observation"
    event_id: str = Field(
        description="RemittanceEvent.event_id of the last remittance whose lines are included (a line without a "
        "claim key carries its own remittance's event id as claim key)."
    )
    period_start: dt.date
    period_end: dt.date
    lines: list[ObservedLine]
