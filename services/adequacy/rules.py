"""The pure adequacy core: network-gap triggers and SCA opportunities (no Kafka, no Faust, no I/O).

One claim at a time (a RemittanceEvent joined with its ClaimContext):

    facts = claim_facts(event, context, reference)          # raises NotAssessable with a reason
    assessment = evaluate_claim(facts, reference, config)   # distance, count, denial, MA access
    for opportunity in assessment.opportunities: ...
    key = assessment.recurrence_key                         # payer|specialty|region, or None

Recurrence (N or more OON claims for payer + specialty + region within a rolling window) can be counted
either by the caller (a windowed table) and handed to ``recurrence_trigger(count, claims, region, ...)``,
or by ``RecurrenceState.observe(facts, config)`` (incremental, one state per key, serialisable), or over
a whole list with ``find_recurrences``. All three call ``recurrence_trigger``.

The value rule takes minimal line summaries (LineOutcome) of evaluated claims: ``value_triggers``.

Every trigger returns an SCAOpportunity whose id is deterministic (payer + specialty + region + rule +
period); ``merge_opportunity`` / ``OpportunityBook`` keep one per id, updated as evidence grows.

Rules (docs/reference-network.md lists the evidence of each):
- distance_gap: the nearest in-network provider of the specialty (payer directory, matching product) is
  farther from the patient's ZIP than the max miles of the standard for the county type;
- count_gap: in-network providers of the specialty in the patient's county below the minimum;
- denial_gap: CARC 242/243/279 on an HMO/EPO/MA claim (CLP06 HM, 14, 16) where a distance/count gap holds;
- medicare_advantage_access: CLP06 16 (HMO Medicare risk) where a gap holds: 42 CFR 422.112(a)(1)(iii);
- recurrence: N (default 3) or more OON claims for payer + specialty + region within 90 days;
- value: >= M (default 3) underpaid lines of one payer on one of the group's top K (default 10) codes
  within the period: negotiate a contract, not claim by claim.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from schemas.adequacy import ClaimRef, NegotiationAnchors, SCAOpportunity
from schemas.claims import ClaimContext
from schemas.remittance import RemittanceEvent
from services.adequacy.geography import (
    DISTANCE_CAVEAT,
    DISTANCE_METHOD,
    Geography,
    ZipLocation,
    normalize_zip,
    round_miles,
    state_of_county,
)
from services.adequacy.reference import (
    CountyTypeResolution,
    NetworkReference,
    ResolvedStandard,
    normalize_product,
    normalize_specialty,
)

CENTS = Decimal("0.01")
ZERO = Decimal("0")

DENIAL_CARCS = frozenset({"242", "243", "279"})
"""242/243 services not provided / not authorized by network providers; 279 not by preferred providers."""
GAP_FILING_INDICATORS = frozenset({"HM", "14", "16"})
"""CLP06 of HMO, EPO and HMO Medicare risk (Medicare Advantage) claims."""
MA_FILING_INDICATOR = "16"
GAP_PRODUCTS = frozenset({"HMO", "EPO", "MA"})
NO_NETWORK_FILING_INDICATORS = frozenset({"MA", "MB"})
"""Traditional Medicare Part A / Part B: no network, so no adequacy question."""

FILING_TO_PRODUCT = {
    "HM": "HMO",
    "14": "EPO",
    "16": "MA",
    "12": "PPO",
    "13": "POS",
    "15": "INDEMNITY",
    "MC": "MEDICAID",
}
PRODUCT_TO_GROUP = {
    "HMO": "hmo",
    "EPO": "epo",
    "MA": "medicare_advantage",
    "PPO": "ppo",
    "POS": "pos",
    "INDEMNITY": "indemnity",
    "MEDICAID": "medicaid",
}
FILING_TO_GROUP = {"CI": "commercial", "BL": "commercial"}

CITATION_422_116 = (
    "42 CFR 422.116 (Medicare Advantage network adequacy): maximum time and distance to a provider of each "
    "specialty by county type (Large Metro, Metro, Micro, Rural, CEAC) and minimum provider counts; 90% of "
    "enrollees must be within the standard (85% in Micro, Rural and CEAC counties)."
)
CITATION_422_112 = (
    "42 CFR 422.112(a)(1)(iii): when network providers are unavailable or inadequate to meet an enrollee's "
    "medical needs, the Medicare Advantage plan must cover the services out of network at in-network cost "
    "sharing."
)
BENCHMARK_CAVEAT = (
    "The time/distance standard is the Medicare Advantage standard (42 CFR 422.116) used as a benchmark; "
    "commercial and Medicaid products answer to state and marketplace standards."
)
COARSE_COUNTY_TYPE_CAVEAT = (
    "County type derived from the CMS ZIP5 rural indicator (urban -> metro, R -> rural, B -> CEAC): a coarse "
    "stand-in for the CMS county designation; supply network/county_types.csv for the real one."
)

SCA_CHECKLIST = (
    "Verify the patient's out-of-network benefits; HMO, EPO and Medicare Advantage coverage needs a gap exception.",
    "Document why no in-network provider can do it: distance, wait time, specialized skill.",
    "Open at 80-90% of billed charges.",
    "Expect a counter at 110-150% of Medicare; don't flinch.",
    "Cite the network gap: the payer's network is inadequate for this case.",
)
VALUE_CHECKLIST = (
    "Negotiate a contract for the top codes rather than dispute claim by claim.",
    "Bring the numbers: underpaid lines, expected vs allowed, dollars left on the table.",
    "Open at 80-90% of billed charges; expect a counter at 110-150% of Medicare.",
    "Ask for annual escalators and a fee schedule that names the codes.",
)

PeriodKind = Literal["month", "quarter", "year"]


@dataclass(frozen=True)
class AdequacyConfig:
    recurrence_min_claims: int = 3
    recurrence_window_days: int = 90
    """A window is this many consecutive calendar days, both ends included (day 0 and day 89 are in one)."""
    period: PeriodKind = "quarter"
    """Dedup period of opportunities: one per payer + specialty + region + rule per calendar period."""
    value_min_underpaid_lines: int = 3
    value_top_codes: int = 10
    max_claim_refs: int = 50
    opening_ask_low: Decimal = Decimal("0.80")
    opening_ask_high: Decimal = Decimal("0.90")
    counter_low: Decimal = Decimal("1.10")
    counter_high: Decimal = Decimal("1.50")
    assumed_county_type: str | None = None
    """County type used when no override and no ZIP5 rural indicator covers a ZIP; None: skip the gap rules."""

    def __post_init__(self) -> None:
        if self.recurrence_min_claims < 1:
            raise ValueError("recurrence_min_claims must be >= 1")
        if self.recurrence_window_days < 1:
            raise ValueError("recurrence_window_days must be >= 1")
        if self.value_min_underpaid_lines < 1 or self.value_top_codes < 1:
            raise ValueError("value thresholds must be >= 1")
        if self.max_claim_refs < 1:
            raise ValueError("max_claim_refs must be >= 1")


DEFAULT_CONFIG = AdequacyConfig()


def money(value: Decimal) -> Decimal:
    return value.quantize(CENTS, rounding=ROUND_HALF_UP)


def _money_text(value: Decimal | None) -> str | None:
    return None if value is None else str(money(value))


def _number(value: Decimal | None) -> int | float | None:
    """A standard's miles as a JSON number (int when whole)."""
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)  # float ok: miles, not money


# ------------------------------------------------------------------------------------------ periods


def period_bounds(day: dt.date, kind: PeriodKind = "quarter") -> tuple[dt.date, dt.date]:
    if kind == "month":
        start = day.replace(day=1)
        following = (start + dt.timedelta(days=32)).replace(day=1)
    elif kind == "quarter":
        start = dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        following = (start + dt.timedelta(days=93)).replace(day=1)
    elif kind == "year":
        start = dt.date(day.year, 1, 1)
        following = dt.date(day.year + 1, 1, 1)
    else:
        raise ValueError(f"unknown period kind {kind!r}")
    return start, following - dt.timedelta(days=1)


def opportunity_id(payer_id: str, specialty: str, region: str, rule: str, start: dt.date, end: dt.date) -> str:
    raw = "|".join((payer_id, specialty, region, rule, start.isoformat(), end.isoformat()))
    return "sca-" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:24]


# ------------------------------------------------------------------------------------ claim facts


class NotAssessable(ValueError):
    """A claim the adequacy rules cannot look at; ``reason`` is a short code for counters."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ClaimFacts:
    """What the adequacy rules need of one OON claim (remittance + claim context), and no patient identity.

    ``patient_zip`` is used for geography only and never copied into an opportunity.
    """

    claim_key: str
    payer_id: str
    payer_claim_id: str
    claim_date: dt.date
    status_code: str
    billed: Decimal
    paid: Decimal
    payer_name: str | None = None
    filing_indicator: str | None = None
    product_type: str | None = None
    specialty_group: str | None = None
    patient_zip: str | None = None
    service_zip: str | None = None
    state: str | None = None
    denial_codes: tuple[str, ...] = ()
    """GROUP-CARC of 242/243/279 adjustments (claim or line level), e.g. ('CO-242',)."""
    denied_amount: Decimal = ZERO
    expected: Decimal | None = None
    medicare: Decimal | None = None
    payer_group: str = "other"
    """Short payer label from payers.csv ('other' when unknown)."""

    @property
    def product_line(self) -> str | None:
        """Coverage class: hmo, epo, medicare_advantage, ppo, pos, indemnity, medicaid, commercial..."""
        if self.product_type in PRODUCT_TO_GROUP:
            return PRODUCT_TO_GROUP[self.product_type]
        if self.filing_indicator in FILING_TO_PRODUCT:
            return PRODUCT_TO_GROUP[FILING_TO_PRODUCT[self.filing_indicator]]
        if self.filing_indicator in FILING_TO_GROUP:
            return FILING_TO_GROUP[self.filing_indicator]
        return self.product_type.lower() if self.product_type else None

    @property
    def needs_gap_exception(self) -> bool:
        return self.filing_indicator in GAP_FILING_INDICATORS or (
            self.filing_indicator is None and self.product_type in GAP_PRODUCTS
        )

    @property
    def is_medicare_advantage(self) -> bool:
        return self.filing_indicator == MA_FILING_INDICATOR or (
            self.filing_indicator is None and self.product_type == "MA"
        )

    def claim_ref(self) -> ClaimRef:
        return ClaimRef(
            payer_claim_id=self.payer_claim_id,
            billed=self.billed,
            paid=self.paid,
            expected=self.expected,
            medicare=self.medicare,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (money as strings, dates ISO) for a state store."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, dt.date):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClaimFacts:
        values = dict(data)
        values["claim_date"] = dt.date.fromisoformat(values["claim_date"])
        for name in ("billed", "paid", "denied_amount", "expected", "medicare"):
            if values.get(name) is not None:
                values[name] = Decimal(values[name])
        values["denial_codes"] = tuple(values.get("denial_codes") or ())
        return cls(**values)


def claim_date(event: RemittanceEvent) -> dt.date | None:
    """The date that places a claim in windows and periods: first service date, else payment/production."""
    line_dates = [line.service_date for line in event.service_lines if line.service_date]
    for candidate in (event.service_date_from, min(line_dates) if line_dates else None, event.service_date_to):
        if candidate is not None:
            return candidate
    return event.payment.date or event.production_date


def claim_facts(
    event: RemittanceEvent,
    context: ClaimContext | None,
    reference: NetworkReference | None = None,
    *,
    expected: Decimal | None = None,
    medicare: Decimal | None = None,
) -> ClaimFacts:
    """Join a remittance with its claim context (and the roster) into ClaimFacts, or raise NotAssessable."""
    if event.status_code == "22":
        raise NotAssessable("reversal", "reversal (CLP02 22): not a new out-of-network claim")
    if event.status_code in ("23", "25"):
        raise NotAssessable("not_a_claim_payment", f"CLP02 {event.status_code}: not a payment of our claim")
    filing = (event.claim_filing_indicator or "").strip().upper() or None
    if filing in NO_NETWORK_FILING_INDICATORS:
        raise NotAssessable("traditional_medicare", f"CLP06 {filing}: traditional Medicare has no network")
    payer_id = event.payer.id or event.payment.trace_originator or (context.payer_id if context else None)
    if not payer_id:
        raise NotAssessable("no_payer_id", "no payer id (N1*PR04, TRN03 or claim context)")
    day = claim_date(event)
    if day is None:
        raise NotAssessable("no_date", "no service, payment or production date")

    roster_entry = None
    if reference is not None and reference.roster:
        npi = (context.rendering_npi if context else None) or event.rendering_provider_npi
        roster_entry = reference.roster.get(npi) if npi else None
        if roster_entry is None and context is not None and context.taxonomy_code:
            roster_entry = reference.roster_by_taxonomy(context.taxonomy_code.strip().upper())
    specialty = normalize_specialty(context.specialty_group if context else None)
    if specialty is None and roster_entry is not None:
        specialty = roster_entry.specialty_group
    product = normalize_product(context.product_type if context else None) or FILING_TO_PRODUCT.get(filing or "")
    state = (context.state.strip().upper() if context and context.state else None) or (
        roster_entry.state if roster_entry else None
    )

    denial_codes: set[str] = set()
    denied = ZERO
    adjustments = list(event.adjustments) + [adj for line in event.service_lines for adj in line.adjustments]
    for adjustment in adjustments:
        if adjustment.reason_code.strip() in DENIAL_CARCS:
            denial_codes.add(f"{adjustment.group_code.strip()}-{adjustment.reason_code.strip()}")
            denied += adjustment.amount

    return ClaimFacts(
        claim_key=event.claim_key,
        payer_id=payer_id,
        payer_claim_id=event.payer_claim_id or event.patient_control_number,
        claim_date=day,
        status_code=event.status_code,
        billed=event.charge_amount,
        paid=event.paid_amount,
        payer_name=event.payer.name,
        filing_indicator=filing,
        product_type=product,
        specialty_group=specialty,
        patient_zip=normalize_zip(context.patient_zip if context else None),
        service_zip=normalize_zip(context.place_of_service_zip if context else None)
        or (roster_entry.practice_zip if roster_entry else None),
        state=state,
        denial_codes=tuple(sorted(denial_codes)),
        denied_amount=denied,
        expected=expected,
        medicare=medicare,
        payer_group=reference.payer_group(payer_id) if reference is not None else "other",
    )


# ----------------------------------------------------------------------------------------- regions


@dataclass(frozen=True)
class Region:
    """Where the demand is: the patient's county (state + county FIPS), else their ZIP3, else the state.

    Code formats: ``TX-48201`` (county), ``TX-752xx`` (ZIP3, county unknown), ``TX`` (state only).
    The patient's ZIP is the basis; the place-of-service ZIP stands in when the patient's is unknown.
    """

    code: str
    state: str | None
    county_fips: str | None = None
    zip3: str | None = None
    basis: str = "patient_zip"


def resolve_region(facts: ClaimFacts, geography: Geography) -> tuple[Region | None, ZipLocation | None]:
    """The claim's region and the located ZIP it rests on (patient ZIP first, then place of service)."""
    for zip5, basis in ((facts.patient_zip, "patient_zip"), (facts.service_zip, "service_zip")):
        if not zip5:
            continue
        location = geography.locate(zip5)
        if location is not None and location.county_fips:
            state = state_of_county(location.county_fips) or location.state
            return Region(f"{state}-{location.county_fips}", state, location.county_fips, zip5[:3], basis), location
        state = (location.state if location else None) or facts.state
        return Region(f"{state or '??'}-{zip5[:3]}xx", state, None, zip5[:3], basis), location
    if facts.state:
        return Region(facts.state, facts.state, None, None, "state"), None
    return None, None


# ------------------------------------------------------------------------------------- gap checks


@dataclass(frozen=True)
class GapCheck:
    rule: str
    holds: bool
    evidence: dict[str, Any] = field(default_factory=dict)
    cited_gap: str = ""
    note: str | None = None
    """Why the rule could not be evaluated (None when it was)."""
    caveats: tuple[str, ...] = ()


def _standard_evidence(standard: ResolvedStandard) -> dict[str, Any]:
    return {
        "specialty_group": standard.specialty_group,
        "county_type": standard.county_type,
        "max_miles": _number(standard.max_miles),
        "max_minutes": standard.max_minutes,
        "min_providers": standard.min_providers,
        "sources": list(standard.sources),
        "basis": "42 CFR 422.116 defaults (replaceable data)"
        if standard.is_default
        else "network/adequacy_standards.csv",
    }


def _county_type(
    reference: NetworkReference, location: ZipLocation | None, zip5: str | None, config: AdequacyConfig
) -> CountyTypeResolution | None:
    resolved = reference.county_types.resolve(zip5, location.county_fips if location else None)
    if resolved is None and config.assumed_county_type:
        return CountyTypeResolution(config.assumed_county_type, "assumed (--assume-county-type)", coarse=True)
    return resolved


def _waits(reference: NetworkReference, state: str | None, specialty: str) -> list[dict[str, Any]]:
    """Appointment-wait standards that also support the case (when in-network waits exceed them)."""
    return [standard.as_evidence() for standard in reference.waits.applicable(state, specialty)]


def _for(facts: ClaimFacts) -> str:
    return f" for product {facts.product_type}" if facts.product_type else ""


def _label(specialty: str) -> str:
    return specialty.replace("_", " ")


def check_distance(facts: ClaimFacts, reference: NetworkReference, config: AdequacyConfig = DEFAULT_CONFIG) -> GapCheck:
    rule = "distance_gap"
    specialty = facts.specialty_group
    if specialty is None:
        return GapCheck(rule, False, note="no specialty group (claim context or roster)")
    if not reference.directory.covers(facts.payer_id, facts.product_type):
        return GapCheck(rule, False, note=f"payer {facts.payer_id} is not in network/directory.csv{_for(facts)}")
    if not facts.patient_zip:
        return GapCheck(rule, False, note="no patient ZIP in the claim context")
    patient = reference.geography.locate(facts.patient_zip)
    if patient is None:
        return GapCheck(rule, False, note="patient ZIP not found in the ZIP geography")
    county_type = _county_type(reference, patient, facts.patient_zip, config)
    if county_type is None:
        return GapCheck(rule, False, note="no county type for the patient's ZIP (no override, no ZIP5 rural indicator)")
    standard = reference.standards.lookup(specialty, county_type.county_type, patient.county_fips)
    if standard is None or standard.max_miles is None:
        return GapCheck(
            rule, False, note=f"no max-miles standard for {specialty} in a {county_type.county_type} county"
        )
    locations, unlocated, nearest = reference.directory.nearest_location(
        facts.payer_id, specialty, facts.product_type, patient, reference.geography
    )
    if not locations and reference.directory.has_counts(facts.payer_id, specialty):
        return GapCheck(
            rule, False, note="the directory has county counts, not locations, for this payer and specialty"
        )
    if locations and nearest is None:
        return GapCheck(rule, False, note="no in-network provider ZIP of the directory could be located")
    max_miles = float(standard.max_miles)  # float ok: miles
    nearest_miles = round_miles(nearest[0]) if nearest else None
    holds = nearest_miles is None or nearest_miles > max_miles
    product = facts.product_type or "any product"
    evidence: dict[str, Any] = {
        "specialty_group": specialty,
        "product_type": facts.product_type,
        "county_fips": patient.county_fips,
        "county_type": county_type.county_type,
        "county_type_source": county_type.source,
        "standard": _standard_evidence(standard),
        "nearest_in_network_miles": nearest_miles,
        "nearest_in_network_zip": nearest[1] if nearest else None,
        "nearest_miles_min": nearest_miles,
        "nearest_miles_max": nearest_miles,
        "excess_miles_max": round_miles(nearest_miles - max_miles) if nearest_miles is not None else None,
        "in_network_locations_considered": locations - unlocated,
        "unlocated_provider_zips": unlocated,
        "no_in_network_location": nearest is None,
        "distance_method": DISTANCE_METHOD,
        "caveat": DISTANCE_CAVEAT,
        "citation": CITATION_422_116,
        "appointment_wait_standards": _waits(reference, facts.state or patient.state, specialty),
    }
    kind = county_type.county_type.replace("_", " ")
    limit = _number(standard.max_miles)
    if nearest is None:
        cited = (
            f"The payer's directory lists no in-network {_label(specialty)} provider ({product}); "
            f"the standard for a {kind} county is {limit} miles (42 CFR 422.116)."
        )
    else:
        cited = (
            f"The nearest in-network {_label(specialty)} provider ({product}) is {nearest_miles} miles "
            f"from the patient's ZIP in straight line, beyond the {limit}-mile standard for a {kind} county "
            f"(42 CFR 422.116); road distance is longer."
        )
    caveats = [DISTANCE_CAVEAT]
    if county_type.coarse:
        caveats.append(COARSE_COUNTY_TYPE_CAVEAT)
    if standard.is_default and facts.product_line != "medicare_advantage":
        caveats.append(BENCHMARK_CAVEAT)
    return GapCheck(rule, holds, evidence, cited, caveats=tuple(caveats))


def check_count(
    facts: ClaimFacts,
    reference: NetworkReference,
    region: Region | None,
    location: ZipLocation | None,
    config: AdequacyConfig = DEFAULT_CONFIG,
) -> GapCheck:
    rule = "count_gap"
    specialty = facts.specialty_group
    if specialty is None:
        return GapCheck(rule, False, note="no specialty group (claim context or roster)")
    if not reference.directory.covers(facts.payer_id, facts.product_type):
        return GapCheck(rule, False, note=f"payer {facts.payer_id} is not in network/directory.csv{_for(facts)}")
    if region is None or region.county_fips is None:
        return GapCheck(rule, False, note="the patient's county is unknown")
    zip5 = facts.patient_zip if region.basis == "patient_zip" else facts.service_zip
    county_type = _county_type(reference, location, zip5, config)
    if county_type is None:
        return GapCheck(rule, False, note="no county type for the county (no override, no ZIP5 rural indicator)")
    standard = reference.standards.lookup(specialty, county_type.county_type, region.county_fips)
    if standard is None or standard.min_providers is None:
        return GapCheck(rule, False, note=f"no minimum provider count for {specialty} in this county (min_providers)")
    count, basis = reference.directory.county_count(
        facts.payer_id, specialty, facts.product_type, region.county_fips, reference.geography
    )
    holds = count < standard.min_providers
    evidence: dict[str, Any] = {
        "specialty_group": specialty,
        "product_type": facts.product_type,
        "county_fips": region.county_fips,
        "region_basis": region.basis,
        "county_type": county_type.county_type,
        "county_type_source": county_type.source,
        "standard": _standard_evidence(standard),
        "in_network_providers": count,
        "min_providers": standard.min_providers,
        "shortfall": max(0, standard.min_providers - count),
        "count_basis": basis,
        "citation": CITATION_422_116,
        "appointment_wait_standards": _waits(reference, region.state or facts.state, specialty),
    }
    cited = (
        f"The payer lists {count} in-network {_label(specialty)} provider{'s' if count != 1 else ''} in county "
        f"{region.county_fips} ({facts.product_type or 'any product'}); the minimum is {standard.min_providers} "
        f"(42 CFR 422.116)."
    )
    caveats = [COARSE_COUNTY_TYPE_CAVEAT] if county_type.coarse else []
    return GapCheck(rule, holds, evidence, cited, caveats=tuple(caveats))


# ----------------------------------------------------------------------------------- opportunities


def _anchors(
    billed: Decimal,
    medicare: Decimal | None,
    cited_gap: str,
    gap_exception: bool,
    config: AdequacyConfig,
    checklist: Sequence[str] = SCA_CHECKLIST,
) -> NegotiationAnchors:
    return NegotiationAnchors(
        billed_amount=money(billed),
        opening_ask_low=money(billed * config.opening_ask_low),
        opening_ask_high=money(billed * config.opening_ask_high),
        opening_ask_basis=f"{config.opening_ask_low * 100:.0f}-{config.opening_ask_high * 100:.0f}% of billed charges",
        medicare_amount=money(medicare) if medicare is not None else None,
        expected_counter_low=money(medicare * config.counter_low) if medicare is not None else None,
        expected_counter_high=money(medicare * config.counter_high) if medicare is not None else None,
        expected_counter_basis=f"{config.counter_low * 100:.0f}-{config.counter_high * 100:.0f}% of Medicare",
        cited_gap=cited_gap,
        gap_exception=gap_exception,
        checklist=list(checklist),
    )


def build_opportunity(
    *,
    rule: str,
    payer_id: str,
    specialty: str,
    region: Region,
    period_day: dt.date,
    claims: Sequence[ClaimRef],
    claim_dates: Sequence[dt.date],
    evidence: dict[str, Any],
    cited_gap: str,
    config: AdequacyConfig,
    payer_name: str | None = None,
    payer_group: str = "other",
    product_line: str | None = None,
    citations: Sequence[str] = (),
    caveats: Sequence[str] = (),
    gap_exception: bool = False,
    claim_count: int | None = None,
    checklist: Sequence[str] = SCA_CHECKLIST,
) -> SCAOpportunity:
    """An opportunity from its parts; dollars are the sums over ``claims``."""
    expected_refs = [ref.expected for ref in claims if ref.expected is not None]
    medicare_refs = [ref.medicare for ref in claims if ref.medicare is not None]
    return _opportunity_from_totals(
        rule=rule,
        payer_id=payer_id,
        specialty=specialty,
        region=region,
        period_day=period_day,
        refs=list(claims)[-config.max_claim_refs :],
        totals=ClaimTotals(
            count=len(claims),
            billed=sum((ref.billed for ref in claims), ZERO),
            paid=sum((ref.paid for ref in claims), ZERO),
            expected=sum(expected_refs, ZERO),
            expected_count=len(expected_refs),
            medicare=sum(medicare_refs, ZERO),
            medicare_count=len(medicare_refs),
        ),
        first_claim_date=min(claim_dates) if claim_dates else None,
        last_claim_date=max(claim_dates) if claim_dates else None,
        evidence=evidence,
        cited_gap=cited_gap,
        config=config,
        payer_name=payer_name,
        payer_group=payer_group,
        product_line=product_line,
        citations=citations,
        caveats=caveats,
        gap_exception=gap_exception,
        claim_count=claim_count,
        checklist=checklist,
    )


@dataclass(frozen=True)
class ClaimTotals:
    """The dollars of an opportunity's claims: what build_opportunity sums over its claim refs."""

    count: int
    billed: Decimal
    paid: Decimal
    expected: Decimal
    """The sum of the claims that have an expected amount (``expected_count`` of them)."""
    expected_count: int
    medicare: Decimal
    """The sum of the claims that have a Medicare amount (``medicare_count`` of them)."""
    medicare_count: int


def _opportunity_from_totals(
    *,
    rule: str,
    payer_id: str,
    specialty: str,
    region: Region,
    period_day: dt.date,
    refs: Sequence[ClaimRef],
    totals: ClaimTotals,
    first_claim_date: dt.date | None,
    last_claim_date: dt.date | None,
    evidence: dict[str, Any],
    cited_gap: str,
    config: AdequacyConfig,
    payer_name: str | None,
    payer_group: str,
    product_line: str | None,
    citations: Sequence[str],
    caveats: Sequence[str],
    gap_exception: bool,
    claim_count: int | None,
    checklist: Sequence[str],
) -> SCAOpportunity:
    """build_opportunity from the sums over its claims and the claim refs listed (the last
    ``max_claim_refs`` claims): the recurrence rule's live path has the sums without the claims."""
    start, end = period_bounds(period_day, config.period)
    medicare_total = totals.medicare if totals.medicare_count else None
    count = max(claim_count or 0, totals.count)
    anchor_medicare = medicare_total if totals.medicare_count and totals.medicare_count == count else None
    return SCAOpportunity(
        opportunity_id=opportunity_id(payer_id, specialty, region.code, rule, start, end),
        payer_id=payer_id,
        payer_name=payer_name,
        payer_group=payer_group,
        product_line=product_line,
        specialty_group=specialty,
        region=region.code,
        state=region.state,
        county_fips=region.county_fips,
        rule=rule,  # type: ignore[arg-type]
        period=f"{start.isoformat()}..{end.isoformat()}",
        period_start=start,
        period_end=end,
        first_claim_date=first_claim_date,
        last_claim_date=last_claim_date,
        evidence=evidence,
        citations=list(dict.fromkeys(citations)),
        caveats=list(dict.fromkeys(caveats)),
        claims=list(refs),
        claim_count=count,
        billed_amount=money(totals.billed),
        paid_amount=money(totals.paid),
        expected_amount=money(totals.expected) if totals.expected_count else None,
        expected_claim_count=totals.expected_count,
        medicare_amount=money(medicare_total) if medicare_total is not None else None,
        medicare_claim_count=totals.medicare_count,
        anchors=_anchors(totals.billed, anchor_medicare, cited_gap, gap_exception, config, checklist),
    )


def _claim_opportunity(
    rule: str,
    facts: ClaimFacts,
    region: Region,
    evidence: dict[str, Any],
    cited_gap: str,
    citations: Sequence[str],
    caveats: Sequence[str],
    config: AdequacyConfig,
) -> SCAOpportunity:
    assert facts.specialty_group is not None
    return build_opportunity(
        rule=rule,
        payer_id=facts.payer_id,
        specialty=facts.specialty_group,
        region=region,
        period_day=facts.claim_date,
        claims=[facts.claim_ref()],
        claim_dates=[facts.claim_date],
        evidence=evidence,
        cited_gap=cited_gap,
        config=config,
        payer_name=facts.payer_name,
        payer_group=facts.payer_group,
        product_line=facts.product_line,
        citations=citations,
        caveats=caveats,
        gap_exception=facts.needs_gap_exception,
    )


@dataclass(frozen=True)
class ClaimAssessment:
    facts: ClaimFacts
    region: Region | None
    opportunities: tuple[SCAOpportunity, ...]
    checks: tuple[GapCheck, ...]
    notes: tuple[str, ...]
    """Why a rule could not be evaluated for this claim (for debug logs and counters)."""

    @property
    def recurrence_key(self) -> str | None:
        return recurrence_key(self.facts, self.region)

    @property
    def gaps(self) -> tuple[GapCheck, ...]:
        return tuple(check for check in self.checks if check.holds)


def evaluate_claim(
    facts: ClaimFacts, reference: NetworkReference, config: AdequacyConfig = DEFAULT_CONFIG
) -> ClaimAssessment:
    """Distance, count, denial and Medicare Advantage rules for one claim (recurrence is separate)."""
    region, location = resolve_region(facts, reference.geography)
    distance = check_distance(facts, reference, config)
    count = check_count(facts, reference, region, location, config)
    checks = (distance, count)
    notes = tuple(f"{check.rule}: {check.note}" for check in checks if check.note)
    opportunities: list[SCAOpportunity] = []
    gaps = [check for check in checks if check.holds]
    if region is None or not gaps:
        return ClaimAssessment(facts, region, (), checks, notes)

    for gap in gaps:
        opportunities.append(
            _claim_opportunity(
                gap.rule, facts, region, gap.evidence, gap.cited_gap, [CITATION_422_116], gap.caveats, config
            )
        )
    gap_evidence = {gap.rule: gap.evidence for gap in gaps}
    gap_caveats = [caveat for gap in gaps for caveat in gap.caveats]
    cited = " ".join(gap.cited_gap for gap in gaps)

    if facts.denial_codes and facts.filing_indicator in GAP_FILING_INDICATORS:
        evidence = {
            "denial_codes_seen": list(facts.denial_codes),
            "denied_amount_total": _money_text(facts.denied_amount),
            "filing_indicator": facts.filing_indicator,
            "gap_exception": "HMO/EPO/Medicare Advantage: ask for a gap exception (in-network benefits for an "
            "out-of-network provider) because no adequate in-network provider exists.",
            "gaps": gap_evidence,
        }
        opportunities.append(
            _claim_opportunity(
                "denial_gap",
                facts,
                region,
                evidence,
                f"The payer denied the claim as out of network ({', '.join(facts.denial_codes)}) although its network "
                f"is inadequate: {cited}",
                [CITATION_422_116] + ([CITATION_422_112] if facts.filing_indicator == MA_FILING_INDICATOR else []),
                gap_caveats,
                config,
            )
        )
    if facts.is_medicare_advantage:
        evidence = {
            "filing_indicator": facts.filing_indicator,
            "product_type": facts.product_type,
            "rule_text": CITATION_422_112,
            "citation": "42 CFR 422.112(a)(1)(iii)",
            "denial_codes_seen": list(facts.denial_codes),
            "gaps": gap_evidence,
        }
        opportunities.append(
            _claim_opportunity(
                "medicare_advantage_access",
                facts,
                region,
                evidence,
                f"Medicare Advantage plan with an inadequate network: it must cover this care at in-network cost "
                f"sharing (42 CFR 422.112(a)(1)(iii)). {cited}",
                [CITATION_422_112, CITATION_422_116],
                gap_caveats,
                config,
            )
        )
    return ClaimAssessment(facts, region, tuple(opportunities), checks, notes)


def adequacy_triggers(
    facts: ClaimFacts, reference: NetworkReference, config: AdequacyConfig = DEFAULT_CONFIG
) -> list[SCAOpportunity]:
    """The claim-level opportunities (distance, count, denial, MA access) of one claim."""
    return list(evaluate_claim(facts, reference, config).opportunities)


# -------------------------------------------------------------------------------------- recurrence


def recurrence_key(facts: ClaimFacts, region: Region | None) -> str | None:
    """``payer|specialty|region``: the unit of counting; None when specialty or region is unknown."""
    if facts.specialty_group is None or region is None:
        return None
    return f"{facts.payer_id}|{facts.specialty_group}|{region.code}"


def window_start_for(window_end: dt.date, days: int) -> dt.date:
    return window_end - dt.timedelta(days=days - 1)


def claims_in_window(claims: Iterable[ClaimFacts], window_end: dt.date, days: int) -> list[ClaimFacts]:
    """Distinct claims (by claim key, the latest version wins) dated within [end - days + 1, end]."""
    start = window_start_for(window_end, days)
    distinct: dict[str, ClaimFacts] = {}
    for facts in claims:
        if start <= facts.claim_date <= window_end:
            distinct[facts.claim_key] = facts
    return sorted(distinct.values(), key=lambda facts: (facts.claim_date, facts.claim_key))


def recurrence_trigger(
    count: int,
    claims: Sequence[ClaimFacts],
    region: Region,
    *,
    window_start: dt.date,
    window_end: dt.date,
    config: AdequacyConfig = DEFAULT_CONFIG,
) -> SCAOpportunity | None:
    """An opportunity when ``count`` >= N, else None.

    ``count`` is the number of distinct OON claims for one payer + specialty + region in the window
    [window_start, window_end]; ``claims`` are those claims or a sample of them (a windowed table may keep
    only the most recent): the dollars and claim list come from ``claims``, the count from ``count``.
    """
    if count < config.recurrence_min_claims or not claims:
        return None
    return recurrence_opportunity(
        count,
        ClaimsSummary.of(claims),
        [facts.claim_ref() for facts in claims[-config.max_claim_refs :]],
        region,
        window_start=window_start,
        window_end=window_end,
        claim_dates=(min(facts.claim_date for facts in claims), max(facts.claim_date for facts in claims)),
        config=config,
    )


def recurrence_opportunity(
    count: int,
    summary: ClaimsSummary,
    refs: Sequence[ClaimRef],
    region: Region,
    *,
    window_start: dt.date,
    window_end: dt.date,
    claim_dates: tuple[dt.date, dt.date] | None = None,
    config: AdequacyConfig = DEFAULT_CONFIG,
) -> SCAOpportunity | None:
    """recurrence_trigger from the summary of the window's claims rather than the claims: ``refs`` are the
    claim refs of the last ``max_claim_refs`` claims (in order), ``claim_dates`` the first and last claim
    dates (by default those of the summary's first and last claims)."""
    if count < config.recurrence_min_claims or summary.first is None or summary.last is None:
        return None
    _, _, payer_id, specialty = summary.first
    assert specialty is not None
    first_date, last_date = claim_dates or (summary.first[0], summary.last[0])
    evidence = {
        "claims_in_window": count,
        "max_claims_in_window_max": count,
        "threshold": config.recurrence_min_claims,
        "window_days": config.recurrence_window_days,
        "window_start": window_start.isoformat(),
        "window_end": window_end.isoformat(),
        "billed_in_window": _money_text(summary.billed),
        "paid_in_window": _money_text(summary.paid),
        "claims_listed": summary.count,
        "region_basis": region.basis,
        "product_types_seen": sorted(summary.product_types),
        "denial_codes_seen": sorted(summary.denial_codes),
    }
    cited = (
        f"{count} out-of-network {_label(specialty)} claims for this payer's members in "
        f"{region.code} within {config.recurrence_window_days} days "
        f"({window_start.isoformat()} to {window_end.isoformat()}): members keep "
        f"needing care the network does not supply."
    )
    lines_of_business = list(summary.product_lines)
    return _opportunity_from_totals(
        rule="recurrence",
        payer_id=payer_id,
        specialty=specialty,
        region=region,
        period_day=window_end,
        refs=list(refs)[-config.max_claim_refs :],
        totals=ClaimTotals(
            count=summary.count,
            billed=summary.billed,
            paid=summary.paid,
            expected=summary.expected,
            expected_count=summary.expected_count,
            medicare=summary.medicare,
            medicare_count=summary.medicare_count,
        ),
        first_claim_date=first_date,
        last_claim_date=last_date,
        evidence=evidence,
        cited_gap=cited,
        config=config,
        payer_name=summary.named[2] if summary.named is not None else None,
        payer_group=summary.last[2],
        product_line=lines_of_business[0] if len(lines_of_business) == 1 else "mixed",
        citations=(),
        caveats=(),
        gap_exception=summary.gap_exceptions > 0,
        claim_count=count,
        checklist=SCA_CHECKLIST,
    )


def _bump(counts: dict[Any, int], key: Any, sign: int) -> None:
    """Add ``sign`` to a multiset; a key whose count reaches 0 leaves it."""
    total = counts.get(key, 0) + sign
    if total:
        counts[key] = total
    else:
        del counts[key]


@dataclass
class ClaimsSummary:
    """What recurrence_trigger reads of a list of distinct claims, without the claims: counts, sums,
    multisets, and the claims it picks by position (the first one's payer and specialty, the last one's
    payer group, the last payer name). Kept per 1-day pane of the live tracker, updated as claims are added
    and removed, and combined over the panes of a window (``combine_summaries``), so that a claim costs the
    panes of its window rather than their claims.

    ``add`` and ``remove`` keep the picks of the claims ordered by (claim_date, claim_key), the order of
    ``claims_in_window``: after any sequence of them, the summary equals ``ClaimsSummary.of`` over the
    remaining claims in that order. Money is summed exactly (Decimal, within its 28 digits), so a sum
    reached by adding and subtracting equals the sum from scratch; the exponent may differ (1.50 - 0.25 + 0.25
    is 1.50 where 1.5 alone is 1.5), which ``money`` removes.
    """

    count: int = 0
    billed: Decimal = ZERO
    paid: Decimal = ZERO
    expected: Decimal = ZERO
    """Sum over the ``expected_count`` claims that have an expected amount."""
    expected_count: int = 0
    medicare: Decimal = ZERO
    """Sum over the ``medicare_count`` claims that have a Medicare amount."""
    medicare_count: int = 0
    gap_exceptions: int = 0
    """Claims that need a gap exception (ClaimFacts.needs_gap_exception)."""
    product_types: dict[str, int] = field(default_factory=dict)
    """Non-empty product type -> claims."""
    denial_codes: dict[str, int] = field(default_factory=dict)
    """Denial code -> occurrences in the claims' denial_codes."""
    product_lines: dict[str | None, int] = field(default_factory=dict)
    """Product line (None included) -> claims."""
    first: tuple[dt.date, str, str, str | None] | None = None
    """(claim_date, claim_key, payer_id, specialty_group) of the first claim."""
    last: tuple[dt.date, str, str] | None = None
    """(claim_date, claim_key, payer_group) of the last claim."""
    named: tuple[dt.date, str, str] | None = None
    """(claim_date, claim_key, payer_name) of the last claim with a payer name."""

    @classmethod
    def of(cls, claims: Iterable[ClaimFacts]) -> ClaimsSummary:
        """The summary of ``claims`` taken in the order given (recurrence_trigger's picks are positional)."""
        summary = cls()
        for facts in claims:
            summary._tally(facts, 1)
            if summary.first is None:
                summary.first = _first_pick(facts)
            summary.last = (facts.claim_date, facts.claim_key, facts.payer_group)
            if facts.payer_name:
                summary.named = (facts.claim_date, facts.claim_key, facts.payer_name)
        return summary

    def copy(self) -> ClaimsSummary:
        return ClaimsSummary(
            count=self.count,
            billed=self.billed,
            paid=self.paid,
            expected=self.expected,
            expected_count=self.expected_count,
            medicare=self.medicare,
            medicare_count=self.medicare_count,
            gap_exceptions=self.gap_exceptions,
            product_types=dict(self.product_types),
            denial_codes=dict(self.denial_codes),
            product_lines=dict(self.product_lines),
            first=self.first,
            last=self.last,
            named=self.named,
        )

    def add(self, facts: ClaimFacts) -> None:
        """Add a claim whose claim key the summary does not hold."""
        self._tally(facts, 1)
        order = (facts.claim_date, facts.claim_key)
        if self.first is None or order < self.first[:2]:
            self.first = _first_pick(facts)
        if self.last is None or order > self.last[:2]:
            self.last = (facts.claim_date, facts.claim_key, facts.payer_group)
        if facts.payer_name and (self.named is None or order > self.named[:2]):
            self.named = (facts.claim_date, facts.claim_key, facts.payer_name)

    def remove(self, facts: ClaimFacts, rest: Callable[[], Iterable[ClaimFacts]]) -> None:
        """Remove a claim the summary holds (the version that was added). ``rest`` gives the remaining claims
        in (claim_date, claim_key) order; it is read only when the claim removed was one of the picks."""
        self._tally(facts, -1)
        picks = (self.first, self.last, self.named)
        if any(pick is not None and pick[1] == facts.claim_key for pick in picks):
            repicked = ClaimsSummary.of(rest())
            self.first, self.last, self.named = repicked.first, repicked.last, repicked.named

    def _tally(self, facts: ClaimFacts, sign: int) -> None:
        self.count += sign
        self.billed += sign * facts.billed
        self.paid += sign * facts.paid
        if facts.expected is not None:
            self.expected += sign * facts.expected
            self.expected_count += sign
        if facts.medicare is not None:
            self.medicare += sign * facts.medicare
            self.medicare_count += sign
        if facts.needs_gap_exception:
            self.gap_exceptions += sign
        if facts.product_type:
            _bump(self.product_types, facts.product_type, sign)
        for code in facts.denial_codes:
            _bump(self.denial_codes, code, sign)
        _bump(self.product_lines, facts.product_line, sign)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (money as strings, dates ISO) for a state store."""
        return {
            "count": self.count,
            "billed": str(self.billed),
            "paid": str(self.paid),
            "expected": str(self.expected),
            "expected_count": self.expected_count,
            "medicare": str(self.medicare),
            "medicare_count": self.medicare_count,
            "gap_exceptions": self.gap_exceptions,
            "product_types": dict(self.product_types),
            "denial_codes": dict(self.denial_codes),
            "product_lines": [[line, count] for line, count in self.product_lines.items()],
            "first": _pick_to_json(self.first),
            "last": _pick_to_json(self.last),
            "named": _pick_to_json(self.named),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClaimsSummary:
        return cls(
            count=data["count"],
            billed=Decimal(data["billed"]),
            paid=Decimal(data["paid"]),
            expected=Decimal(data["expected"]),
            expected_count=data["expected_count"],
            medicare=Decimal(data["medicare"]),
            medicare_count=data["medicare_count"],
            gap_exceptions=data["gap_exceptions"],
            product_types=dict(data["product_types"]),
            denial_codes=dict(data["denial_codes"]),
            product_lines={line: count for line, count in data["product_lines"]},
            first=_pick_from_json(data["first"]),  # type: ignore[arg-type]
            last=_pick_from_json(data["last"]),  # type: ignore[arg-type]
            named=_pick_from_json(data["named"]),  # type: ignore[arg-type]
        )


def _first_pick(facts: ClaimFacts) -> tuple[dt.date, str, str, str | None]:
    return (facts.claim_date, facts.claim_key, facts.payer_id, facts.specialty_group)


def _pick_to_json(pick: tuple[Any, ...] | None) -> list[Any] | None:
    return None if pick is None else [pick[0].isoformat(), *pick[1:]]


def _pick_from_json(data: Sequence[Any] | None) -> tuple[Any, ...] | None:
    return None if data is None else (dt.date.fromisoformat(data[0]), *data[1:])


def combine_summaries(summaries: Iterable[ClaimsSummary]) -> ClaimsSummary:
    """The summary of consecutive groups of claims, given in order (every claim of a group before every claim
    of the next one, as the 1-day panes of a window): sums and multisets added, the picks of the first and
    last groups that have them."""
    combined = ClaimsSummary()
    for summary in summaries:
        combined.count += summary.count
        combined.billed += summary.billed
        combined.paid += summary.paid
        combined.expected += summary.expected
        combined.expected_count += summary.expected_count
        combined.medicare += summary.medicare
        combined.medicare_count += summary.medicare_count
        combined.gap_exceptions += summary.gap_exceptions
        for target, counts in (
            (combined.product_types, summary.product_types),
            (combined.denial_codes, summary.denial_codes),
            (combined.product_lines, summary.product_lines),
        ):
            for key, count in counts.items():
                _bump(target, key, count)
        if combined.first is None:
            combined.first = summary.first
        if summary.last is not None:
            combined.last = summary.last
        if summary.named is not None:
            combined.named = summary.named
    return combined


def claim_ref_from_dict(data: Mapping[str, Any]) -> ClaimRef:
    """``ClaimFacts.from_dict(data).claim_ref()`` without building the ClaimFacts (the live tracker lists the
    last claims of a window from their stored dicts)."""
    expected, medicare = data.get("expected"), data.get("medicare")
    return ClaimRef(
        payer_claim_id=data["payer_claim_id"],
        billed=Decimal(data["billed"]),
        paid=Decimal(data["paid"]),
        expected=Decimal(expected) if expected is not None else None,
        medicare=Decimal(medicare) if medicare is not None else None,
    )


@dataclass
class RecurrenceState:
    """Incremental recurrence counting for one key (payer|specialty|region); serialisable for a table.

    ``observe`` adds a claim (a later version of the same claim key replaces the earlier one) and returns
    the trigger of the fullest window that contains the claim's date, when it reaches N. Claims older than
    two windows before the latest date seen are dropped.
    """

    region: Region
    claims: dict[str, ClaimFacts] = field(default_factory=dict)

    def observe(self, facts: ClaimFacts, config: AdequacyConfig = DEFAULT_CONFIG) -> SCAOpportunity | None:
        self.claims[facts.claim_key] = facts
        days = config.recurrence_window_days
        latest = max(item.claim_date for item in self.claims.values())
        horizon = latest - dt.timedelta(days=2 * days)
        self.claims = {key: item for key, item in self.claims.items() if item.claim_date >= horizon}
        if facts.claim_date < horizon:
            return None
        ordered = sorted(self.claims.values(), key=lambda item: (item.claim_date, item.claim_key))
        dates = [item.claim_date for item in ordered]
        best: tuple[int, dt.date] | None = None
        # windows containing the claim's date end between that date and date + days - 1; the fullest one
        # ends on some claim's date (or on the claim's own date).
        low = bisect_left(dates, facts.claim_date)
        high = bisect_right(dates, facts.claim_date + dt.timedelta(days=days - 1))
        for end in sorted({facts.claim_date, *dates[low:high]}):
            start = window_start_for(end, days)
            count = bisect_right(dates, end) - bisect_left(dates, start)
            if best is None or count > best[0]:
                best = (count, end)
        assert best is not None
        count, end = best
        if count < config.recurrence_min_claims:
            return None
        window = claims_in_window(ordered, end, days)
        return recurrence_trigger(
            len(window), window, self.region, window_start=window_start_for(end, days), window_end=end, config=config
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": {
                "code": self.region.code,
                "state": self.region.state,
                "county_fips": self.region.county_fips,
                "zip3": self.region.zip3,
                "basis": self.region.basis,
            },
            "claims": [facts.to_dict() for facts in self.claims.values()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecurrenceState:
        claims = [ClaimFacts.from_dict(item) for item in data.get("claims", [])]
        return cls(region=Region(**data["region"]), claims={facts.claim_key: facts for facts in claims})


def find_recurrences(
    observations: Iterable[tuple[ClaimFacts, Region]], config: AdequacyConfig = DEFAULT_CONFIG
) -> list[SCAOpportunity]:
    """Every recurrence opportunity in a list of (claim, region), deduplicated (offline / batch)."""
    by_key: dict[str, list[tuple[ClaimFacts, Region]]] = defaultdict(list)
    for facts, region in observations:
        key = recurrence_key(facts, region)
        if key is not None:
            by_key[key].append((facts, region))
    book = OpportunityBook(config=config)
    for key in sorted(by_key):
        items = sorted(by_key[key], key=lambda item: (item[0].claim_date, item[0].claim_key))
        state = RecurrenceState(region=items[0][1])
        for facts, _ in items:
            opportunity = state.observe(facts, config)
            if opportunity is not None:
                book.upsert(opportunity)
    return book.opportunities()


# ------------------------------------------------------------------------------------------- value


@dataclass(frozen=True)
class LineOutcome:
    """A minimal summary of one evaluated service line (the value rule's input).

    Adapter from an evaluation (schemas/evaluation.py, ClaimEvaluation): one LineOutcome per line with
    payer_id = the evaluation's payer, code = line.procedure_code, expected/allowed = the line's
    expected_amount / allowed_amount, status = line.status ('underpaid' counts), service_date = line (or
    claim) date, payer_claim_id = CLP07, billed/paid = line charge_amount / paid_amount, medicare =
    line.medicare_amount, claim_key + line_index identify the line across reversals and corrections (the
    latest outcome of a line wins; 'reversal' removes it). See ``line_outcomes_from_evaluation``.
    """

    payer_id: str
    code: str
    status: str
    service_date: dt.date
    billed: Decimal
    paid: Decimal
    expected: Decimal | None = None
    allowed: Decimal | None = None
    payer_claim_id: str | None = None
    medicare: Decimal | None = None
    state: str | None = None
    payer_name: str | None = None
    payer_group: str | None = None
    claim_key: str | None = None
    line_index: int | None = None

    @property
    def underpaid(self) -> bool:
        return self.status.strip().lower() == "underpaid"


def top_codes(lines: Iterable[LineOutcome], k: int) -> list[str]:
    """The group's top K codes: most lines first, then most expected dollars, then code."""
    volume: dict[str, int] = defaultdict(int)
    dollars: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        volume[line.code] += 1
        dollars[line.code] += line.expected or ZERO
    return sorted(volume, key=lambda code: (-volume[code], -dollars[code], code))[:k]


def value_triggers(
    lines: Iterable[LineOutcome],
    config: AdequacyConfig = DEFAULT_CONFIG,
    *,
    top: Sequence[str] | None = None,
    line_counts: Mapping[tuple[str, str, str], int] | None = None,
) -> list[SCAOpportunity]:
    """One opportunity per payer + state + period where a payer underpaid >= M lines of a top-K code.

    The top codes are computed per period over all payers' lines (the group's volume) unless ``top`` names
    them. Region is the lines' state ('US' when unknown); specialty is 'all'. Lines with a claim_key and a
    line_index are deduplicated, the last one given winning (feed evaluations in order); a 'reversal'
    outcome removes the line.

    ``line_counts`` (payer, state, code) -> all lines of the code, when ``lines`` holds only the underpaid
    ones (with ``top``): what a code's line count and underpaid rate are computed from. The live tracker keeps
    counts rather than every line of a period; the result equals passing every line.
    """
    latest: dict[tuple[str, int] | int, LineOutcome] = {}
    for position, line in enumerate(lines):
        key: tuple[str, int] | int = (
            (line.claim_key, line.line_index)
            if line.claim_key is not None and line.line_index is not None
            else position
        )
        latest.pop(key, None)
        latest[key] = line
    by_period: dict[tuple[dt.date, dt.date], list[LineOutcome]] = defaultdict(list)
    for line in latest.values():
        if line.status.strip().lower() == "reversal":
            continue
        by_period[period_bounds(line.service_date, config.period)].append(line)
    opportunities: list[SCAOpportunity] = []
    for (start, end), period_lines in sorted(by_period.items()):
        ranked = list(top) if top is not None else top_codes(period_lines, config.value_top_codes)
        rank = {code: index + 1 for index, code in enumerate(ranked)}
        groups: dict[tuple[str, str], list[LineOutcome]] = defaultdict(list)
        for line in period_lines:
            groups[(line.payer_id, line.state or "US")].append(line)
        for (payer_id, state), payer_lines in sorted(groups.items()):
            opportunity = _value_opportunity(payer_id, state, payer_lines, rank, start, end, config, line_counts)
            if opportunity is not None:
                opportunities.append(opportunity)
    return opportunities


def _value_opportunity(
    payer_id: str,
    state: str,
    lines: list[LineOutcome],
    rank: dict[str, int],
    start: dt.date,
    end: dt.date,
    config: AdequacyConfig,
    line_counts: Mapping[tuple[str, str, str], int] | None = None,
) -> SCAOpportunity | None:
    codes: list[dict[str, Any]] = []
    triggering: list[LineOutcome] = []
    for code in sorted({line.code for line in lines if line.code in rank}, key=lambda code: rank[code]):
        code_lines = [line for line in lines if line.code == code]
        under = [line for line in code_lines if line.underpaid]
        if len(under) < config.value_min_underpaid_lines:
            continue
        count = line_counts[(payer_id, state, code)] if line_counts is not None else len(code_lines)
        expected = sum((line.expected or ZERO for line in under), ZERO)
        allowed = sum(((line.allowed if line.allowed is not None else line.paid) for line in under), ZERO)
        codes.append(
            {
                "code": code,
                "rank": rank[code],
                "lines": count,
                "underpaid_lines": len(under),
                "underpaid_rate": round(len(under) / count, 3),
                "expected_total": _money_text(expected),
                "allowed_total": _money_text(allowed),
                "shortfall_total": _money_text(expected - allowed),
            }
        )
        triggering.extend(under)
    if not codes:
        return None
    per_claim: dict[str, list[LineOutcome]] = defaultdict(list)
    for index, line in enumerate(sorted(triggering, key=lambda line: line.service_date)):
        per_claim[line.payer_claim_id or f"line-{index}"].append(line)
    refs = [
        ClaimRef(
            payer_claim_id=claim_id,
            billed=sum((line.billed for line in claim_lines), ZERO),
            paid=sum((line.paid for line in claim_lines), ZERO),
            expected=sum((line.expected for line in claim_lines if line.expected is not None), ZERO)
            if any(line.expected is not None for line in claim_lines)
            else None,
            medicare=sum((line.medicare for line in claim_lines if line.medicare is not None), ZERO)
            if all(line.medicare is not None for line in claim_lines)
            else None,
        )
        for claim_id, claim_lines in per_claim.items()
    ]
    shortfall = sum((Decimal(item["shortfall_total"]) for item in codes), ZERO)
    evidence = {
        "codes": codes,
        "top_codes": sorted(rank, key=lambda code: rank[code]),
        "threshold_underpaid_lines": config.value_min_underpaid_lines,
        "underpaid_lines_total": len(triggering),
        "shortfall_total": _money_text(shortfall),
    }
    code_text = ", ".join(f"{item['code']} ({item['underpaid_lines']} of {item['lines']} lines)" for item in codes)
    name = next((line.payer_name for line in lines if line.payer_name), None) or payer_id
    cited = (
        f"{name} repeatedly underpaid the group's top codes in {start.isoformat()}..{end.isoformat()}: {code_text}; "
        f"${money(shortfall)} below expected. Negotiate a contract rather than claim by claim."
    )
    region = Region(code=state, state=None if state == "US" else state, basis="state")
    return build_opportunity(
        rule="value",
        payer_id=payer_id,
        specialty="all",
        region=region,
        period_day=start,
        claims=refs,
        claim_dates=[line.service_date for line in triggering],
        evidence=evidence,
        cited_gap=cited,
        config=config,
        payer_name=name if name != payer_id else None,
        payer_group=next((line.payer_group for line in reversed(lines) if line.payer_group), "other"),
        checklist=VALUE_CHECKLIST,
    )


def _field(source: Any, *names: str) -> Any:
    for name in names:
        if isinstance(source, Mapping):
            if source.get(name) is not None:
                return source[name]
        elif getattr(source, name, None) is not None:
            return getattr(source, name)
    return None


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float):
        raise ValueError("money must be a decimal string, not a float")
    return Decimal(str(value))


def _date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def line_outcomes_from_evaluation(evaluation: Any, *, state: str | None = None) -> list[LineOutcome]:
    """Adapter: a ClaimEvaluation (model or its JSON dict) -> one LineOutcome per line.

    Reads, by name: payer_id (or payer.id), payer_name (or payer.name), payer_group, payer_claim_id,
    claim_key, state, service_date_from / payment_date, claim_status_code / status; per line in ``lines``:
    line_index, procedure_code (or code), status, expected_amount (or expected), allowed_amount (or
    allowed), charge_amount (or billed), paid_amount (or paid), medicare_amount (or medicare),
    service_date. A reversal (CLP02 22 or status 'reversal') gives 'reversal' outcomes. Lines without a
    code or a date are skipped.
    """
    payer = _field(evaluation, "payer")
    payer_id = _field(evaluation, "payer_id") or (_field(payer, "id") if payer is not None else None)
    if not payer_id:
        raise ValueError("evaluation has no payer id")
    payer_name = _field(evaluation, "payer_name") or (_field(payer, "name") if payer is not None else None)
    claim_day = _date(_field(evaluation, "service_date_from", "service_date", "claim_date", "payment_date"))
    reversal = _field(evaluation, "claim_status_code") == "22" or _field(evaluation, "status") == "reversal"
    outcomes: list[LineOutcome] = []
    for position, line in enumerate(_field(evaluation, "lines", "line_evaluations", "service_lines") or []):
        code = _field(line, "procedure_code", "code")
        day = _date(_field(line, "service_date")) or claim_day
        if not code or day is None:
            continue
        index = _field(line, "line_index")
        outcomes.append(
            LineOutcome(
                payer_id=str(payer_id),
                code=str(code),
                status="reversal" if reversal else str(_field(line, "status") or "unknown"),
                service_date=day,
                billed=_decimal(_field(line, "charge_amount", "charge", "billed")) or ZERO,
                paid=_decimal(_field(line, "paid_amount", "paid")) or ZERO,
                expected=_decimal(_field(line, "expected_amount", "expected")),
                allowed=_decimal(_field(line, "allowed_amount", "allowed")),
                payer_claim_id=_field(evaluation, "payer_claim_id"),
                medicare=_decimal(_field(line, "medicare_amount", "medicare")),
                state=state or _field(evaluation, "state"),
                payer_name=payer_name,
                payer_group=_field(evaluation, "payer_group"),
                claim_key=_field(evaluation, "claim_key"),
                line_index=int(index) if index is not None else position,
            )
        )
    return outcomes


# ------------------------------------------------------------------------------------ dedup / merge


def _merge_evidence(old: Mapping[str, Any], new: Mapping[str, Any], has_new_claims: bool) -> dict[str, Any]:
    """Latest value wins, except by key suffix: *_min min, *_max max, *_total summed over new claims,
    *_seen union (bounded to 50). Nested dicts merge the same way."""
    merged: dict[str, Any] = dict(old)
    for key, value in new.items():
        previous = old.get(key)
        if previous is None or value is None:
            merged[key] = value if value is not None else previous
        elif isinstance(value, dict) and isinstance(previous, dict):
            merged[key] = _merge_evidence(previous, value, has_new_claims)
        elif key.endswith("_min"):
            merged[key] = min(previous, value)
        elif key.endswith("_max"):
            merged[key] = max(previous, value)
        elif key.endswith("_total"):
            if not has_new_claims:
                merged[key] = previous
            elif isinstance(value, str):
                merged[key] = str(money(Decimal(previous) + Decimal(value)))
            else:
                merged[key] = previous + value
        elif key.endswith("_seen") and isinstance(value, list) and isinstance(previous, list):
            merged[key] = list(dict.fromkeys([*previous, *value]))[:50]
        else:
            merged[key] = value
    return merged


def merge_opportunity(
    existing: SCAOpportunity | None,
    update: SCAOpportunity,
    *,
    max_claims: int = 50,
    config: AdequacyConfig = DEFAULT_CONFIG,
) -> SCAOpportunity:
    """Fold ``update`` into ``existing`` (same opportunity_id): claims united (the most recent
    ``max_claims`` kept, a total count), dollars summed over distinct claims, evidence merged, anchors
    recomputed from the totals, revision + 1 when anything changed."""
    if existing is None:
        return update
    if existing.opportunity_id != update.opportunity_id:
        raise ValueError(f"cannot merge {update.opportunity_id} into {existing.opportunity_id}")
    claims = {ref.payer_claim_id: ref for ref in existing.claims}
    order = [ref.payer_claim_id for ref in existing.claims]
    billed, paid = existing.billed_amount, existing.paid_amount
    expected = existing.expected_amount or ZERO
    medicare = existing.medicare_amount or ZERO
    expected_count, medicare_count = existing.expected_claim_count, existing.medicare_claim_count
    added = 0
    for ref in update.claims:
        old = claims.get(ref.payer_claim_id)
        if old is not None:
            if old == ref:
                continue
            billed -= old.billed
            paid -= old.paid
            if old.expected is not None:
                expected -= old.expected
                expected_count -= 1
            if old.medicare is not None:
                medicare -= old.medicare
                medicare_count -= 1
            order.remove(ref.payer_claim_id)
        else:
            added += 1
        claims[ref.payer_claim_id] = ref
        order.append(ref.payer_claim_id)
        billed += ref.billed
        paid += ref.paid
        if ref.expected is not None:
            expected += ref.expected
            expected_count += 1
        if ref.medicare is not None:
            medicare += ref.medicare
            medicare_count += 1
    claim_count = max(existing.claim_count + added, update.claim_count)
    kept = [claims[claim_id] for claim_id in order][-max_claims:]
    product_line = existing.product_line if existing.product_line == update.product_line else "mixed"
    anchor_medicare = medicare if medicare_count and medicare_count == claim_count else None
    merged = existing.model_copy(
        update={
            "payer_name": update.payer_name or existing.payer_name,
            "payer_group": update.payer_group,
            "product_line": product_line,
            "first_claim_date": _min_date(existing.first_claim_date, update.first_claim_date),
            "last_claim_date": _max_date(existing.last_claim_date, update.last_claim_date),
            "evidence": _merge_evidence(existing.evidence, update.evidence, added > 0),
            "citations": list(dict.fromkeys([*existing.citations, *update.citations])),
            "caveats": list(dict.fromkeys([*existing.caveats, *update.caveats])),
            "claims": kept,
            "claim_count": claim_count,
            "billed_amount": money(billed),
            "paid_amount": money(paid),
            "expected_amount": money(expected) if expected_count else None,
            "expected_claim_count": expected_count,
            "medicare_amount": money(medicare) if medicare_count else None,
            "medicare_claim_count": medicare_count,
            "anchors": _anchors(
                billed,
                anchor_medicare,
                update.anchors.cited_gap,
                update.anchors.gap_exception or existing.anchors.gap_exception,
                config,
                update.anchors.checklist,
            ),
        }
    )
    # model_copy skips validation: round-trip to be sure the merged model is valid.
    merged = SCAOpportunity.model_validate(merged.model_dump())
    if merged.model_dump(exclude={"revision"}) == existing.model_dump(exclude={"revision"}):
        return existing
    return merged.model_copy(update={"revision": existing.revision + 1})


def _min_date(a: dt.date | None, b: dt.date | None) -> dt.date | None:
    return min(d for d in (a, b) if d is not None) if (a or b) else None


def _max_date(a: dt.date | None, b: dt.date | None) -> dt.date | None:
    return max(d for d in (a, b) if d is not None) if (a or b) else None


class OpportunityBook:
    """One opportunity per id (payer + specialty + region + rule + period), updated as evidence grows.

    In memory for the offline CLI and tests; a stream processor does the same with a table keyed by
    opportunity_id: ``table[id] = merge_opportunity(table.get(id), new)``, and publishes when it changed.
    """

    def __init__(self, *, max_claims: int | None = None, config: AdequacyConfig = DEFAULT_CONFIG):
        self.config = config
        self.max_claims = max_claims or config.max_claim_refs
        self._items: dict[str, SCAOpportunity] = {}

    def upsert(self, opportunity: SCAOpportunity) -> tuple[SCAOpportunity, bool]:
        """Merge; returns (the stored opportunity, whether it is new or changed)."""
        existing = self._items.get(opportunity.opportunity_id)
        merged = merge_opportunity(existing, opportunity, max_claims=self.max_claims, config=self.config)
        changed = existing is None or merged is not existing
        self._items[opportunity.opportunity_id] = merged
        return merged, changed

    def get(self, opportunity_id: str) -> SCAOpportunity | None:
        return self._items.get(opportunity_id)

    def opportunities(self) -> list[SCAOpportunity]:
        return sorted(
            self._items.values(),
            key=lambda item: (item.period_start, item.rule, item.payer_id, item.specialty_group, item.region),
        )

    def __len__(self) -> int:
        return len(self._items)


def with_amounts(facts: ClaimFacts, *, expected: Decimal | None = None, medicare: Decimal | None = None) -> ClaimFacts:
    """The same claim with an expected / Medicare amount (e.g. once its evaluation is known)."""
    return replace(
        facts,
        expected=expected if expected is not None else facts.expected,
        medicare=medicare if medicare is not None else facts.medicare,
    )
