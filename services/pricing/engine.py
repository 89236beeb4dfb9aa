"""Expected amount per service line: SCA > contract fee schedule > payer OON policy. Pure and synchronous.

``price_claim(event, context, reference)`` prices every line of one remittance (the multiple-procedure
reduction needs the whole claim); ``price_line`` prices one line alone. Every result carries its basis,
the rate term, the inputs and a human-readable explanation; when a reference is missing the expected
amount is None with a reason, never 0.

Payment-policy adjustments (CMS rules, applied to amounts derived from a per-procedure price: % of
Medicare, % of a UCR percentile and fixed fee-schedule amounts; never to % of billed, which already is
the provider's own line charge):

- units multiply the per-unit amount;
- bilateral (modifier 50): BILAT SURG 1 = 150%, 3 = 200%, 0/2/9 = 100%;
- assistant at surgery (80, 81, 82 = 16%; AS, a non-physician assistant = 85% of 16% = 13.6%): ASST SURG
  0 (payable with documentation) and 2 (allowed) pay; 1 (statutory restriction) and 9 (concept does not
  apply) have no Medicare amount;
- multiple-procedure reduction: among the lines of one claim and date of service whose MULT PROC
  indicator is 2 (lines the payer allowed nothing for are left out), the highest-ranked unit is paid 100%
  and every other unit 50% (ranking by the Medicare amount after the bilateral adjustment; by total RVUs
  when no locality is known);
- status T codes (paid only when no other PFS service is paid the same day) have no Medicare amount when
  another line of the claim on the same date has status A.
A fee-schedule row written for the adjusting modifier itself (e.g. a row for modifier 50 or 80) already is
the adjusted rate, so that adjustment is not applied again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from schemas.claims import ClaimContext
from schemas.evaluation import RateTerm
from schemas.remittance import RemittanceEvent, ServiceLine
from services.pricing.benchmark import Benchmark, Call, Term
from services.pricing.medicare import (
    PRICING_MODIFIERS_CMS as PRICING_MODIFIERS,
)
from services.pricing.medicare import (
    MedicareAmount,
    cents,
    is_facility,
    medicare_amount,
    normalize_zip,
)
from services.pricing.reference import (
    FeeScheduleRow,
    PayerPolicy,
    PricingReference,
    RateTerms,
    ScaRow,
)

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
HALF = Decimal("0.5")
ASSISTANT_MODIFIERS = {"80": Decimal("0.16"), "81": Decimal("0.16"), "82": Decimal("0.16"), "AS": Decimal("0.136")}
BILATERAL_FACTORS = {"1": Decimal("1.5"), "3": Decimal("2")}
HCPCS_QUALIFIERS = frozenset({"HC", "AD", ""})  # SVC01-1: CPT/HCPCS codes (HC), ADA codes (AD)
# Product of a claim when the claim context has none: from CLP06 (claim filing indicator).
FILING_INDICATOR_PRODUCTS = {
    "12": "PPO",
    "13": "POS",
    "14": "EPO",
    "15": "INDEMNITY",
    "16": "MA",
    "HM": "HMO",
    "MC": "MEDICAID",
}


@dataclass(frozen=True, slots=True)
class ClaimFacts:
    """What the pricing needs from a remittance + its claim context."""

    payer_id: str | None
    product: str | None
    place_of_service: str | None
    place_of_service_source: str
    facility: bool
    zip_code: str | None
    geozip: str | None
    patient_key: str | None
    payer_claim_id: str | None
    authorization_number: str | None
    default_date: dt.date | None
    default_date_source: str
    reversal: bool


def claim_facts(event: RemittanceEvent, context: ClaimContext | None) -> ClaimFacts:
    pos = context.place_of_service_code if context and context.place_of_service_code else None
    pos_source = "claim context"
    if pos is None and event.facility_type_code:
        pos, pos_source = event.facility_type_code, "CLP08"
    if pos is None:
        pos_source = "unknown (priced non-facility)"
    zip_code = normalize_zip(context.place_of_service_zip) if context else None
    for value, label in (
        (event.service_date_from, "claim service date"),
        (event.claim_received_date, "claim received date"),
        (event.payment.date, "payment date"),
        (event.production_date, "production date"),
    ):
        if value is not None:
            default_date, date_source = value, label
            break
    else:
        default_date, date_source = None, "none"
    return ClaimFacts(
        payer_id=event.payer.id or (context.payer_id if context else None) or event.payment.trace_originator,
        product=(
            context.product_type.strip().upper()
            if context and context.product_type
            else FILING_INDICATOR_PRODUCTS.get(event.claim_filing_indicator or "")
        ),
        place_of_service=pos,
        place_of_service_source=pos_source,
        facility=is_facility(pos),
        zip_code=zip_code,
        geozip=zip_code[:3] if zip_code else None,
        patient_key=event.patient_key or (context.patient_key if context else None),
        payer_claim_id=event.payer_claim_id,
        authorization_number=context.authorization_number if context else None,
        default_date=default_date,
        default_date_source=date_source,
        reversal=event.is_reversal,
    )


@dataclass(frozen=True, slots=True)
class LinePrice:
    line_index: int
    service_date: dt.date | None
    expected: Decimal | None
    """Signed: negative for the lines of a reversal (CLP02=22)."""
    basis: str | None
    rate_term: RateTerm | None
    explanation: str
    reason: str | None
    medicare: MedicareAmount | None
    facility: bool
    medicare_line_amount: Decimal | None = None
    """100% of Medicare for the whole line (units and payment-policy adjustments), unsigned."""


@dataclass(frozen=True)
class ClaimPrice:
    facts: ClaimFacts
    lines: tuple[LinePrice, ...]


class _Missing(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class _LineInput:
    line: ServiceLine
    index: int
    code: str
    modifiers: tuple[str, ...]
    pricing_modifier: str
    date: dt.date | None
    date_note: str | None
    units: Decimal
    billed: Decimal
    medicare: MedicareAmount | None
    zero_allowed: bool
    mppr_units: Decimal | None = None
    mppr_note: str | None = None


def _factor_text(value: Decimal) -> str:
    """1.4 -> '1.40', 1.125 -> '1.125'."""
    text = format(value.normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _money_text(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


def _units_text(units: Decimal) -> str:
    text = format(units.normalize(), "f")
    return f"{text} unit" + ("" if units == ONE else "s")


def escalation_years(base: dt.date, date: dt.date) -> int:
    """Whole years elapsed from ``base`` to ``date`` (anniversaries reached), never negative."""
    years = date.year - base.year - ((date.month, date.day) < (base.month, base.day))
    return max(years, 0)


def _escalated(terms: RateTerms, date: dt.date) -> tuple[Decimal, str]:
    if not terms.escalator_pct or terms.escalator_base_date is None:
        return terms.rate, ""
    years = escalation_years(terms.escalator_base_date, date)
    if years == 0:
        return terms.rate, f" (escalator +{terms.escalator_pct}%/year: no full year since {terms.escalator_base_date})"
    factor = (ONE + terms.escalator_pct / HUNDRED) ** years
    rate = terms.rate * factor
    shown = _money_text(rate) if terms.rate_type == "fixed" else f"{_percent_text(rate.quantize(Decimal('0.0001')))}%"
    return rate, (
        f" escalated +{terms.escalator_pct}%/year x {years} year{'s' if years != 1 else ''} since "
        f"{terms.escalator_base_date} = {shown}"
    )


def price_claim(event: RemittanceEvent, context: ClaimContext | None, reference: PricingReference) -> ClaimPrice:
    facts = claim_facts(event, context)
    inputs = [_line_input(line, facts, reference, event) for line in event.service_lines]
    _apply_status_t_bundling(inputs)
    _apply_multiple_procedure_reduction(inputs, facts)
    prices = tuple(_price(item, facts, reference) for item in inputs)
    return ClaimPrice(facts=facts, lines=prices)


def price_line(
    line: ServiceLine, event: RemittanceEvent, context: ClaimContext | None, reference: PricingReference
) -> LinePrice:
    """Price one line alone (no multiple-procedure reduction across lines)."""
    facts = claim_facts(event, context)
    item = _line_input(line, facts, reference, event)
    return _price(item, facts, reference)


def _line_input(
    line: ServiceLine, facts: ClaimFacts, reference: PricingReference, event: RemittanceEvent
) -> _LineInput:
    modifiers = tuple(modifier.strip().upper() for modifier in line.modifiers if modifier and modifier.strip())
    pricing_modifier = next((modifier for modifier in modifiers if modifier in PRICING_MODIFIERS), "")
    date, note = line.service_date, None
    if date is None and facts.default_date is not None:
        date, note = (
            facts.default_date,
            f"line has no service date: {facts.default_date_source} {facts.default_date} used",
        )
    code = line.procedure_code.strip().upper()
    medicare = None
    if date is not None and line.procedure_qualifier in HCPCS_QUALIFIERS and reference.medicare.years:
        medicare = medicare_amount(
            reference.medicare, code, pricing_modifier, date=date, facility=facts.facility, zip_code=facts.zip_code
        )
    units = abs(line.units) if line.units else ONE
    reported = line.reported_allowed_amount
    zero_allowed = line.paid_amount == 0 and line.derived_allowed_amount == 0 and not reported
    return _LineInput(
        line=line,
        index=line.line_index,
        code=code,
        modifiers=modifiers,
        pricing_modifier=pricing_modifier,
        date=date,
        date_note=note,
        units=units,
        billed=abs(line.charge_amount),
        medicare=medicare,
        zero_allowed=zero_allowed,
    )


def _apply_status_t_bundling(inputs: list[_LineInput]) -> None:
    dates_with_a = {
        item.date for item in inputs if item.medicare and item.medicare.status == "A" and not item.zero_allowed
    }
    for item in inputs:
        medicare = item.medicare
        if medicare and medicare.status == "T" and medicare.payable and item.date in dates_with_a:
            item.medicare = dataclasses.replace(
                medicare,
                amount=None,
                reason="not_payable",
                detail="status T: bundled, another PFS service of this claim is paid on the same date",
            )


def _bilateral_factor(item: _LineInput) -> tuple[Decimal, str]:
    if "50" not in item.modifiers:
        return ONE, ""
    rvu = item.medicare.rvu if item.medicare else None
    if rvu is None:
        return Decimal("1.5"), "150% bilateral (modifier 50; no PPRRVU row, CMS default)"
    factor = BILATERAL_FACTORS.get(rvu.bilat_surg, ONE)
    return (
        factor,
        f"{_percent_text(factor * HUNDRED)}% bilateral (modifier 50, BILAT SURG {rvu.bilat_surg})",
    )


def _rank(item: _LineInput, facts: ClaimFacts) -> Decimal:
    factor, _ = _bilateral_factor(item)
    medicare = item.medicare
    if medicare and medicare.amount is not None:
        return medicare.amount * factor
    rvu = medicare.rvu if medicare else None
    if rvu is None:
        return ZERO
    pe = rvu.pe_facility if facts.facility else rvu.pe_nonfacility
    return (rvu.work + pe + rvu.mp) * factor


def _apply_multiple_procedure_reduction(inputs: list[_LineInput], facts: ClaimFacts) -> None:
    groups: dict[dt.date | None, list[_LineInput]] = {}
    for item in inputs:
        rvu = item.medicare.rvu if item.medicare else None
        if rvu is not None and rvu.mult_proc == "2" and not item.zero_allowed and item.units > 0:
            groups.setdefault(item.date, []).append(item)
    for members in groups.values():
        if sum(item.units for item in members) < 2:
            continue
        ranked = sorted(members, key=lambda item: (-_rank(item, facts), item.index))
        primary = ranked[0]
        others = ", ".join(f"line {item.index}" for item in ranked if item is not primary)
        primary.mppr_units = ONE + HALF * (primary.units - ONE)
        if primary.units > 1:
            primary.mppr_note = (
                f"multiple-procedure reduction: highest-ranked procedure, first unit 100%, other units 50% "
                f"(MULT PROC 2) = {_factor_text(primary.mppr_units)} units"
            )
        else:
            primary.mppr_note = f"multiple-procedure reduction: highest-ranked procedure at 100% (reduced: {others})"
        for item in ranked[1:]:
            item.mppr_units = HALF * item.units
            item.mppr_note = (
                f"multiple-procedure reduction: 50% of each unit (MULT PROC 2; line {primary.index} "
                f"{primary.code} ranks first) = {_factor_text(item.mppr_units)} units"
            )


# ---------------------------------------------------------------------------------------------------
# Term selection


def _find_sca(item: _LineInput, facts: ClaimFacts, reference: PricingReference) -> ScaRow | None:
    if not facts.payer_id or item.date is None:
        return None
    values = {
        "patient_key": facts.patient_key,
        "payer_claim_id": facts.payer_claim_id,
        "authorization_number": facts.authorization_number,
    }
    best: ScaRow | None = None
    for row in reference.scas.get(facts.payer_id, ()):
        if values.get(row.match_on) != row.match_value or not row.covers(item.date):
            continue
        if row.codes is not None and item.code not in row.codes:
            continue
        if best is None or _sca_rank(row) > _sca_rank(best):
            best = row
    return best


def _sca_rank(row: ScaRow) -> tuple:
    return (row.codes is not None, row.effective_from or dt.date.min, row.sca_id)


def _find_contract(item: _LineInput, facts: ClaimFacts, reference: PricingReference) -> FeeScheduleRow | None:
    if not facts.payer_id or item.date is None:
        return None
    setting = "facility" if facts.facility else "nonfacility"
    best: FeeScheduleRow | None = None
    best_rank: tuple | None = None
    for row in reference.fee_schedules.get((facts.payer_id, item.code), ()):
        if not row.covers(item.date):
            continue
        if row.product is not None and row.product != facts.product:
            continue
        if row.modifier is not None and row.modifier not in item.modifiers:
            continue
        if row.pos_class != "any" and row.pos_class != setting:
            continue
        rank = (row.modifier is not None, row.pos_class != "any", row.product is not None, row.effective_from)
        if best_rank is None or rank > best_rank:
            best, best_rank = row, rank
    return best


# ---------------------------------------------------------------------------------------------------
# Amounts


@dataclass(slots=True)
class _Amount:
    value: Decimal
    text: str
    medicare: MedicareAmount | None = None


def _assistant(item: _LineInput, source: str, row_modifier: str | None) -> tuple[str | None, str | None]:
    """(assistant modifier or None, ASST SURG indicator); raises when Medicare pays no assistant."""
    assistant = next((modifier for modifier in item.modifiers if modifier in ASSISTANT_MODIFIERS), None)
    if assistant is None or row_modifier == assistant:
        return None, None
    rvu = item.medicare.rvu if item.medicare else None
    indicator = rvu.asst_surg if rvu else None
    if source == "medicare" and indicator in ("1", "9"):
        why = "statutory payment restriction" if indicator == "1" else "assistant concept does not apply"
        raise _Missing(
            "no_medicare_amount",
            f"Medicare pays no assistant at surgery for {item.code} (ASST SURG {indicator}: {why})",
        )
    return assistant, indicator


def _policy_numbers(item: _LineInput, source: str, row_modifier: str | None) -> tuple[Decimal, Decimal]:
    """(per-unit factor, effective units) of the payment-policy adjustments, without the explanation."""
    factor = ONE
    if row_modifier != "50" and "50" in item.modifiers:
        factor *= _bilateral_factor(item)[0]
    assistant, _ = _assistant(item, source, row_modifier)
    if assistant:
        factor *= ASSISTANT_MODIFIERS[assistant]
    return factor, item.mppr_units if item.mppr_units is not None else item.units


def _policy_factors(item: _LineInput, source: str, row_modifier: str | None) -> tuple[Decimal, Decimal, list[str]]:
    """(per-unit factor, effective units, explanation pieces) of payment-policy adjustments."""
    factor = ONE
    pieces: list[str] = []
    if row_modifier != "50" and "50" in item.modifiers:
        bilateral, text = _bilateral_factor(item)
        factor *= bilateral
        pieces.append(f"x {text}")
    assistant, indicator = _assistant(item, source, row_modifier)
    if assistant:
        share = ASSISTANT_MODIFIERS[assistant]
        factor *= share
        label = f"{_percent_text(share * HUNDRED)}% assistant at surgery (modifier {assistant}"
        if indicator:
            label += f", ASST SURG {indicator}"
            if indicator == "0":
                label += ": payable with documentation of medical necessity"
        pieces.append(f"x {label})")
    units = item.units
    if item.mppr_units is not None:
        units = item.mppr_units
        pieces.append(f"x {item.mppr_note}")
    else:
        pieces.append(f"x {_units_text(item.units)}")
    return factor, units, pieces


def _per_procedure_amount(
    item: _LineInput, label: str, pct: Decimal, base: Decimal, base_text: str, source: str, row_modifier: str | None
) -> _Amount:
    """pct% of a per-unit base, then the payment-policy adjustments and units; cents at each step."""
    unit = cents(base * pct / HUNDRED)
    head = f"{label} = {_factor_text(pct / HUNDRED)} x {base_text} = {_money_text(unit)}"
    return _with_policy(item, unit, head, source, row_modifier)


def _with_policy(item: _LineInput, unit: Decimal, head: str, source: str, row_modifier: str | None) -> _Amount:
    factor, units, pieces = _policy_factors(item, source, row_modifier)
    value = cents(unit * factor * units)
    return _Amount(value, head + "; " + " ".join(pieces) + f" = {_money_text(value)}")


def _medicare_amount(item: _LineInput, pct: Decimal, row_modifier: str | None) -> _Amount:
    medicare = item.medicare
    if medicare is None:
        qualifier = item.line.procedure_qualifier
        if qualifier not in HCPCS_QUALIFIERS:
            raise _Missing("missing_reference", f"{item.code} (qualifier {qualifier}) is not a CPT/HCPCS code")
        raise _Missing("missing_reference", "no Medicare PFS files are loaded")
    if medicare.amount is None:
        reason = "no_medicare_amount" if medicare.reason == "not_payable" else "missing_reference"
        raise _Missing(reason, f"{medicare.describe()}: {medicare.detail}")
    label = f"{_percent_text(pct)}% of {medicare.describe()}"
    amount = _per_procedure_amount(
        item, label, pct, medicare.amount, _money_text(medicare.amount), "medicare", row_modifier
    )
    amount.text += f" [Medicare: {medicare.formula()}" + "".join(f"; {note}" for note in medicare.notes) + "]"
    amount.medicare = medicare
    return amount


def _ucr_amount(
    item: _LineInput, facts: ClaimFacts, reference: PricingReference, pct: Decimal, percentile: int, row_modifier
):
    if not facts.geozip:
        raise _Missing("missing_reference", "no place-of-service ZIP for the UCR geozip")
    row = reference.ucr.get((facts.geozip, item.code, item.pricing_modifier))
    code = item.code + (f"-{item.pricing_modifier}" if item.pricing_modifier else "")
    if row is None:
        raise _Missing("missing_reference", f"no UCR row for geozip {facts.geozip} {code}")
    value = row.values.get(percentile)
    if value is None:
        raise _Missing("missing_reference", f"UCR row {row.file}:{row.line} has no p{percentile} for {code}")
    label = f"{_percent_text(pct)}% of UCR p{percentile} geozip {facts.geozip} {code}"
    return _per_procedure_amount(
        item, label, pct, value, f"{_money_text(value)} ({row.file}:{row.line})", "ucr", row_modifier
    )


def _billed_amount(item: _LineInput, pct: Decimal) -> _Amount:
    value = cents(item.billed * pct / HUNDRED)
    return _Amount(
        value,
        f"{_percent_text(pct)}% of billed {_money_text(item.billed)} = {_factor_text(pct / HUNDRED)} x "
        f"{_money_text(item.billed)} = {_money_text(value)} (line charge, all units; no policy adjustments)",
    )


def _percent_text(pct: Decimal) -> str:
    return format(pct.normalize(), "f")


def _terms_amount(
    item: _LineInput, facts: ClaimFacts, reference: PricingReference, terms: RateTerms, row_modifier: str | None
) -> tuple[_Amount, Decimal]:
    rate, escalation = _escalated(terms, item.date)
    if terms.rate_type == "fixed":
        unit = cents(rate)
        amount = _with_policy(item, unit, f"fixed {_money_text(terms.rate)}{escalation}", "fixed", row_modifier)
    elif terms.rate_type == "pct_billed":
        amount = _billed_amount(item, rate)
        if escalation:
            amount.text = f"{_percent_text(terms.rate)}%{escalation}; " + amount.text
    elif terms.rate_type == "pct_medicare":
        amount = _medicare_amount(item, rate, row_modifier)
        if escalation:
            amount.text = f"{_percent_text(terms.rate)}%{escalation}; " + amount.text
    else:
        amount = _ucr_amount(item, facts, reference, rate, terms.ucr_percentile, row_modifier)
        if escalation:
            amount.text = f"{_percent_text(terms.rate)}%{escalation}; " + amount.text
    if terms.lesser_of_billed and item.billed < amount.value:
        amount = _Amount(
            item.billed,
            amount.text + f"; lesser of billed {_money_text(item.billed)} -> {_money_text(item.billed)}",
            amount.medicare,
        )
    elif terms.lesser_of_billed:
        amount.text += f"; lesser of billed {_money_text(item.billed)} -> {_money_text(amount.value)}"
    return amount, rate


def _benchmark_amount(item: _LineInput, facts: ClaimFacts, reference: PricingReference, node: Benchmark) -> _Amount:
    if isinstance(node, Term):
        if node.source == "medicare":
            return _medicare_amount(item, node.percent, None)
        if node.source == "billed":
            return _billed_amount(item, node.percent)
        return _ucr_amount(item, facts, reference, node.percent, node.percentile, None)
    assert isinstance(node, Call)
    results: list[_Amount] = []
    missing: list[_Missing] = []
    for argument in node.arguments:
        try:
            results.append(_benchmark_amount(item, facts, reference, argument))
        except _Missing as error:
            missing.append(error)
    if node.function == "min" and missing:
        # A missing operand of min() could be the lowest: no safe amount.
        raise _Missing(missing[0].reason, f"min() needs every operand: {missing[0].detail}")
    if not results:
        raise _Missing(missing[0].reason, "; ".join(error.detail for error in missing))
    chosen = (max if node.function == "max" else min)(results, key=lambda amount: amount.value)
    parts = " | ".join(amount.text for amount in results)
    values = ", ".join(_money_text(amount.value) for amount in results)
    text = f"{node.function}({values}) = {_money_text(chosen.value)}: {parts}"
    if missing:
        text += " | ignored for max(), missing: " + "; ".join(error.detail for error in missing)
    medicare = next((amount.medicare for amount in results if amount.medicare is not None), None)
    return _Amount(chosen.value, text, medicare)


def _rate_term(
    source: str, terms: RateTerms | None, escalated: Decimal | None, *, sca_id=None, policy=None
) -> RateTerm:
    if policy is not None:
        return RateTerm(
            source=policy.source,
            rate_type="benchmark",
            benchmark=policy.benchmark_text,
            description=f"payer OON policy {policy.benchmark_text}",
        )
    return RateTerm(
        source=source,
        rate_type=terms.rate_type,
        rate=terms.rate,
        ucr_percentile=terms.ucr_percentile,
        lesser_of_billed=terms.lesser_of_billed,
        escalator_pct=terms.escalator_pct,
        escalator_base_date=terms.escalator_base_date,
        escalated_rate=escalated if terms.escalator_pct else None,
        sca_id=sca_id,
        description=terms.describe(),
    )


def _price(item: _LineInput, facts: ClaimFacts, reference: PricingReference) -> LinePrice:
    sign = Decimal(-1) if facts.reversal else ONE
    notes = [note for note in (item.date_note,) if note]
    if facts.place_of_service is None:
        notes.append("place of service unknown: priced at the non-facility rate")
    if item.line.original_procedure_code and item.line.original_procedure_code.upper() != item.code:
        notes.append(f"payer recoded {item.line.original_procedure_code} to {item.code}; {item.code} is priced")
    if facts.reversal:
        notes.append("reversal (CLP02=22): the original's expected amount is negated")
    suffix = "".join(f"; {note}" for note in notes)

    medicare_line_amount = None
    if item.medicare is not None and item.medicare.amount is not None:
        try:
            factor, units = _policy_numbers(item, "medicare", None)
            medicare_line_amount = cents(item.medicare.amount * factor * units)
        except _Missing:
            medicare_line_amount = None

    def result(expected, basis, term, explanation, reason=None, medicare=None) -> LinePrice:
        return LinePrice(
            medicare_line_amount=medicare_line_amount,
            line_index=item.index,
            service_date=item.date,
            expected=expected * sign if expected is not None else None,
            basis=basis,
            rate_term=term,
            explanation=explanation + suffix,
            reason=reason,
            medicare=medicare or item.medicare,
            facility=facts.facility,
        )

    if item.date is None:
        return result(None, None, None, "no date of service on the line or the claim", "missing_reference")

    sca = _find_sca(item, facts, reference)
    contract = None if sca else _find_contract(item, facts, reference)
    policy: PayerPolicy | None = None if (sca or contract) else reference.policy(facts.payer_id)
    if sca is not None:
        basis, head = "sca", f"SCA {sca.sca_id} ({sca.file}:{sca.line}, {sca.match_on}, {sca.terms.describe()})"
    elif contract is not None:
        basis, head = "contract", f"contract {contract.file}:{contract.line} ({contract.terms.describe()})"
    elif policy is not None:
        basis = "oon_policy"
        default = "default " if policy.payer_id == "*" else ""
        head = f"payer OON policy {policy.source} ({default}{policy.benchmark_text})"
    else:
        return result(
            None, None, None, f"no SCA, contract or OON policy for payer {facts.payer_id or '(unknown)'}", "no_terms"
        )
    try:
        if policy is not None:
            amount = _benchmark_amount(item, facts, reference, policy.benchmark)
            term = _rate_term(policy.source, None, None, policy=policy)
        else:
            row = sca or contract
            row_modifier = contract.modifier if contract is not None else None
            amount, escalated = _terms_amount(item, facts, reference, row.terms, row_modifier)
            term = _rate_term(row.source, row.terms, escalated, sca_id=sca.sca_id if sca else None)
    except _Missing as missing:
        term = (
            _rate_term(policy.source, None, None, policy=policy)
            if policy is not None
            else _rate_term((sca or contract).source, (sca or contract).terms, None, sca_id=sca.sca_id if sca else None)
        )
        return result(None, basis, term, f"{head}: no expected amount: {missing.detail}", missing.reason)
    return result(amount.value, basis, term, f"{head}: {amount.text}", None, amount.medicare)
