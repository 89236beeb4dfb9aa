"""The ``claimwatch audit`` report: pure functions from claim evaluations to an :class:`AuditReport`.

Nothing here reads a file or prints. The command (``services.audit.cli``) parses the 835 files, evaluates
every remittance with ``services.underpayment.evaluate.evaluate`` (the live service's core) and hands this
module, per claim key, the history of its evaluations; this module nets each history with
``apply_remittance`` (the live agent's netting: reversals, corrections, re-sent events counted once) and
aggregates the net claims per payer group.

Definitions (also in docs/audit.md and at the end of the rendered report):

- a *claim* is a claim key (payer | CLP07) with a net adjudication after netting; a claim whose only
  adjudication was reversed, or that has nothing but a reversal, has none and is counted under "not
  compared";
- *left on the table* = the sum of the net claims' underpaid dollars (expected - allowed on underpaid lines);
- *recovered* = allowed dollars added by corrections (``apply_remittance``'s recovered amounts);
- *priced lines* are the lines whose allowed amount is a price: as expected, underpaid, overpaid, and not
  comparable only for want of a reference (not the lines of secondary-payer, not-our-claim and
  predetermination claims, not denied lines). Medicare and UCR percentages and the code table use them;
- *allowed as % of Medicare* = sum of allowed / sum of the Medicare amount of the line (100% of the PFS
  amount with units and payment-policy rules, as priced by the engine), over priced lines that have one;
- *allowed as % of UCR pNN* = sum of allowed / sum of 100% of the UCR pNN amount of the line, over priced
  lines whose rate term (contract, SCA or payer OON benchmark) refers to UCR pNN (plus every priced line
  with ``--ucr-percentile``). The UCR amount is computed by the same pricing engine with a reference whose
  only term is "100% ucrNN" (same units, bilateral, assistant and multiple-procedure rules); a line without
  a UCR row is counted, not guessed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from pydantic import Field

from schemas.claims import ClaimContext
from schemas.common import Model, Money, Quantity
from schemas.evaluation import ClaimEvaluation, ClaimState, LineEvaluation, RateTerm
from schemas.remittance import RemittanceEvent
from services.pricing.benchmark import BenchmarkSyntaxError, Term, parse_benchmark, terms_of
from services.pricing.engine import price_claim
from services.pricing.medicare import PRICING_MODIFIERS_CMS
from services.pricing.reference import ANY_PAYER, PayerPolicy, PricingReference
from services.underpayment.evaluate import apply_remittance

ZERO = Decimal(0)
CENT = Decimal("0.01")
TENTH = Decimal("0.1")
HUNDRED = Decimal(100)
ALL_GROUPS = "(all)"
UNKNOWN_PAYER = "(unknown)"
PRICED_STATUSES = frozenset({"underpaid", "as_expected", "overpaid"})
CLAIM_LEVEL_REASONS = frozenset({"secondary_payer", "not_our_claim", "predetermination"})
NO_NET = ("reversed", "reversal_only")
GroupBy = Literal["group", "payer"]
DateField = Literal["service", "payment"]

DEFINITIONS: tuple[str, ...] = (
    "Claims are claim keys (payer | CLP07) netted like the live service (apply_remittance): a reversal cancels "
    "the adjudication it negates, a correction replaces it, a re-sent event is counted once; events of a claim "
    "are applied in payment-date order.",
    "Left on the table: sum of expected - allowed over the underpaid lines of the net claims.",
    "Recovered: allowed dollars added by corrections over the adjudication they replaced.",
    "Underpaid and denial rates: net claims with that status / net claims.",
    "Priced lines: as expected, underpaid, overpaid, and not comparable for want of a reference; never denied "
    "lines nor the lines of secondary-payer, not-our-claim or predetermination claims.",
    "Allowed (paid) as % of Medicare: sum of allowed (paid) / sum of the Medicare amount of the line (100% of "
    "the PFS amount with units and payment-policy rules), over priced lines that have a Medicare amount.",
    "Allowed as % of UCR pNN: over priced lines whose rate term or OON benchmark refers to UCR pNN (and all priced "
    "lines with --ucr-percentile); the UCR amount of a line is 100% of UCR pNN priced by the same engine "
    "(same units and payment-policy rules). Lines without a UCR row are counted, not guessed.",
    "Code table: per procedure code (with 26/TC/53 when present), over priced lines; median allowed and Medicare "
    "amount are per line.",
    "Amounts are allowed amounts before sequestration (CO-253), as compared by the engine.",
)


def _pct(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    if not denominator:
        return None
    return (numerator * HUNDRED / denominator).quantize(TENTH, rounding=ROUND_HALF_UP)


def _rate(count: int, total: int) -> Decimal | None:
    return _pct(Decimal(count), Decimal(total)) if total else None


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------------------------------------------
# UCR amounts of a line, by the pricing engine


def ucr_percentiles(term: RateTerm | None) -> tuple[int, ...]:
    """UCR percentiles a line's rate term refers to (pct_ucr terms, or ucrNN terms of an OON benchmark)."""
    if term is None:
        return ()
    if term.rate_type == "pct_ucr" and term.ucr_percentile is not None:
        return (term.ucr_percentile,)
    if term.rate_type == "benchmark" and term.benchmark:
        return _benchmark_percentiles(term.benchmark)
    return ()


@functools.lru_cache(maxsize=1024)
def _benchmark_percentiles(text: str) -> tuple[int, ...]:
    try:
        node = parse_benchmark(text)
    except BenchmarkSyntaxError:
        return ()
    return tuple(sorted({item.percentile for item in terms_of(node) if item.source == "ucr" and item.percentile}))


def ucr_reference(reference: PricingReference, percentile: int) -> PricingReference:
    """``reference`` whose only term, for every payer, is '100% ucrNN' (no contract, no SCA)."""
    text = f"100% ucr{percentile}"
    policy = PayerPolicy(
        file="(audit)",
        line=0,
        payer_id=ANY_PAYER,
        benchmark=Term(percent=HUNDRED, source="ucr", percentile=percentile),
        benchmark_text=text,
        tolerance_amount=ZERO,
        tolerance_pct=ZERO,
    )
    return dataclasses.replace(reference, fee_schedules={}, scas={}, payer_policies={ANY_PAYER: policy})


def is_priced_line(line: LineEvaluation) -> bool:
    if line.status in PRICED_STATUSES:
        return True
    return line.status == "not_comparable" and line.reason not in CLAIM_LEVEL_REASONS


def ucr_line_amounts(
    event: RemittanceEvent,
    context: ClaimContext | None,
    evaluation: ClaimEvaluation,
    reference: PricingReference,
    *,
    extra_percentiles: Sequence[int] = (),
    cache: dict[int, PricingReference] | None = None,
) -> dict[int, dict[int, Decimal | None]]:
    """line_index -> {percentile: 100% of UCR pNN for the line, None without a UCR row}.

    Only priced lines whose rate term refers to UCR (or every priced line for ``extra_percentiles``).
    """
    cache = {} if cache is None else cache
    wanted: dict[int, set[int]] = {}
    for line in evaluation.lines:
        if not is_priced_line(line):
            continue
        percentiles = set(ucr_percentiles(line.rate_term)) | set(extra_percentiles)
        if percentiles:
            wanted[line.line_index] = percentiles
    result: dict[int, dict[int, Decimal | None]] = {index: {} for index in wanted}
    for percentile in sorted(set().union(*wanted.values()) if wanted else ()):
        derived = cache.get(percentile)
        if derived is None:
            derived = cache[percentile] = ucr_reference(reference, percentile)
        prices = price_claim(event, context, derived)
        for price in prices.lines:
            if percentile in wanted.get(price.line_index, ()):
                result[price.line_index][percentile] = abs(price.expected) if price.expected is not None else None
    return result


# ---------------------------------------------------------------------------------------------------
# Compact claim records (what the report needs of an evaluation)


@dataclass(frozen=True, slots=True)
class AuditLine:
    code: str
    """Procedure code, with -26/-TC/-53 when the line has that pricing modifier."""
    status: str
    reason: str | None
    priced: bool
    allowed: Decimal
    paid: Decimal
    expected: Decimal | None
    medicare: Decimal | None
    underpaid: Decimal
    ucr_terms: tuple[int, ...] = ()
    """UCR percentiles the line's rate term refers to."""
    ucr: tuple[tuple[int, Decimal | None], ...] = ()
    """(percentile, 100% of UCR pNN for the line or None when there is no UCR row)."""


@dataclass(frozen=True, slots=True)
class AuditClaim:
    claim_key: str
    payer_id: str | None
    payer_group: str
    status: str
    """Status of the net adjudication, or 'reversed' / 'reversal_only' when there is none."""
    reason: str | None
    billed: Decimal
    allowed: Decimal
    paid: Decimal
    expected: Decimal
    underpaid: Decimal
    service_date: dt.date | None
    payment_date: dt.date | None
    context_joined: bool
    lines: tuple[AuditLine, ...]
    patient_control_number: str
    """CLP01 (the provider's claim id): only ever written to the per-claim detail file."""
    payer_claim_id: str | None
    recovered: Decimal = ZERO
    events: int = 1

    @property
    def has_net(self) -> bool:
        return self.status not in NO_NET


def line_code(line: LineEvaluation) -> str:
    modifier = next((item for item in line.modifiers if item in PRICING_MODIFIERS_CMS), None)
    return f"{line.procedure_code}-{modifier}" if modifier else line.procedure_code


def audit_claim(evaluation: ClaimEvaluation, ucr: dict[int, dict[int, Decimal | None]] | None = None) -> AuditClaim:
    """The compact record of one evaluation (the report keeps these, not the evaluations)."""
    ucr = ucr or {}
    lines = tuple(
        AuditLine(
            code=line_code(line),
            status=line.status,
            reason=line.reason,
            priced=is_priced_line(line),
            allowed=line.allowed_amount,
            paid=line.paid_amount,
            expected=line.expected_amount,
            medicare=line.medicare_amount,
            underpaid=line.underpaid_amount,
            ucr_terms=ucr_percentiles(line.rate_term),
            ucr=tuple(sorted(ucr.get(line.line_index, {}).items())),
        )
        for line in evaluation.lines
    )
    totals = evaluation.totals
    return AuditClaim(
        claim_key=evaluation.claim_key,
        payer_id=evaluation.payer_id,
        payer_group=evaluation.payer_group,
        status=evaluation.status,
        reason=evaluation.reason,
        billed=totals.billed,
        allowed=totals.allowed,
        paid=totals.paid,
        expected=totals.expected,
        underpaid=totals.underpaid,
        service_date=evaluation.service_date_from,
        payment_date=evaluation.payment_date,
        context_joined=evaluation.context_joined,
        lines=lines,
        patient_control_number=evaluation.patient_control_number,
        payer_claim_id=evaluation.payer_claim_id,
    )


def slim(evaluation: ClaimEvaluation) -> ClaimEvaluation:
    """The evaluation without its lines and notes: all that ``apply_remittance`` reads of it for netting
    (ids, claim status code, totals, status) at a fraction of the memory. Alerts are not used here."""
    return evaluation.model_copy(update={"lines": [], "notes": []})


@dataclass(slots=True)
class ClaimHistory:
    """The evaluations of one claim key, in the order they were read."""

    entries: list[tuple[int, ClaimEvaluation, AuditClaim]] = field(default_factory=list)

    def add(self, sequence: int, evaluation: ClaimEvaluation, record: AuditClaim) -> None:
        self.entries.append((sequence, evaluation, record))


def net_claim(history: ClaimHistory) -> AuditClaim:
    """Net a claim's evaluations with ``apply_remittance`` and return the record of its net adjudication.

    Events are applied in payment-date order (read order within a date, and read order altogether when a
    payment date is missing), so that file names do not decide which adjudication is the latest.
    """
    entries = history.entries
    if all(evaluation.payment_date is not None for _, evaluation, _ in entries):
        entries = sorted(entries, key=lambda entry: (entry[1].payment_date, entry[0]))
    state: ClaimState | None = None
    records: dict[str, AuditClaim] = {}
    for _, evaluation, record in entries:
        records[evaluation.evaluation_id] = record
        state, _, _ = apply_remittance(state, evaluation)
    assert state is not None
    events = len(state.processed_event_ids)
    if state.net is not None:
        record = records[state.net.evaluation_id]
        return dataclasses.replace(record, recovered=state.recovered_total, events=events)
    last = entries[-1][2]
    status = "reversed" if state.net_status == "reversed" else "reversal_only"
    return dataclasses.replace(
        last,
        status=status,
        reason=None,
        billed=ZERO,
        allowed=ZERO,
        paid=ZERO,
        expected=ZERO,
        underpaid=ZERO,
        lines=(),
        recovered=state.recovered_total,
        events=events,
    )


# ---------------------------------------------------------------------------------------------------
# The report model


class MedicareComparison(Model):
    lines: int = Field(description="Priced lines with a Medicare amount.")
    allowed: Money
    paid: Money
    medicare_amount: Money
    allowed_pct_of_medicare: Quantity | None = None
    paid_pct_of_medicare: Quantity | None = None


class UcrComparison(Model):
    percentile: int
    lines: int = Field(description="Priced lines compared with UCR pNN (that have a UCR amount).")
    lines_from_rate_terms: int = Field(description="Of which the rate term or OON benchmark refers to UCR pNN.")
    lines_without_ucr_amount: int = Field(description="Lines that should be compared but have no UCR row.")
    allowed: Money
    ucr_amount: Money
    allowed_pct_of_ucr: Quantity | None = None


class CodeRow(Model):
    code: str
    lines: int = Field(description="Priced lines of the code.")
    underpaid_lines: int
    left_on_table: Money
    median_allowed: Money
    medicare_lines: int
    median_medicare_amount: Money | None = None
    allowed_pct_of_medicare: Quantity | None = None


class GroupSummary(Model):
    group: str
    payer_ids: list[str]
    claims: int = Field(description="Net claims (claim keys with a net adjudication).")
    lines: int
    priced_lines: int
    billed: Money
    allowed: Money
    paid: Money
    expected: Money
    left_on_table: Money = Field(description="Net underpaid dollars.")
    recovered: Money
    underpaid_claims: int
    underpaid_rate_pct: Quantity | None = None
    denied_claims: int
    denial_rate_pct: Quantity | None = None
    claims_by_status: dict[str, int]
    medicare: MedicareComparison
    ucr: list[UcrComparison]
    ucr_note: str | None = None
    top_codes: list[CodeRow]


class FileAccounting(Model):
    file: str
    readable: bool
    error: str | None = None
    claims_seen: int = 0
    events: int = 0
    claim_dead_letters: int = 0
    dead_letters: int = 0
    dead_letters_by_reason: dict[str, int] = Field(default_factory=dict)
    provider_adjustments: int = 0
    accounted: bool = True
    duplicate_events: int = Field(0, description="Events already read (same event id): counted once.")
    evaluation_failures: int = 0
    outside_payer_filter: int = Field(0, description="Events of payers left out by --payer.")


class ParseAccounting(Model):
    files: int
    files_readable: int
    files_with_errors: int
    claims_seen: int
    events: int
    claim_dead_letters: int
    dead_letters: int
    dead_letters_by_reason: dict[str, int]
    provider_adjustments: int
    duplicate_events: int
    evaluation_failures: int
    outside_payer_filter: int
    accounted: bool = Field(description="claims seen = events + claim dead letters in every file.")


class NotCompared(Model):
    claims_by_reason: dict[str, int] = Field(description="Net claims with status not_comparable, by reason.")
    lines_by_reason: dict[str, int] = Field(description="Lines of net claims with status not_comparable, by reason.")
    reversed_claims: int = Field(description="Claims whose adjudication was reversed and not corrected.")
    reversal_only_claims: int = Field(description="Claims with a reversal whose original was not in the input.")
    evaluation_failures: int
    claims_without_context: int = Field(description="Net claims priced without a claim context.")
    outside_date_filter: int = Field(description="Claims left out by --from/--to.")
    outside_payer_filter: int = Field(
        description="Claims left out by --payer here (events skipped before pricing: parse.outside_payer_filter)."
    )


class Filters(Model):
    payers: list[str] = Field(default_factory=list)
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    date_field: DateField = "service"


class AuditReport(Model):
    report: Literal["claimwatch_audit"] = "claimwatch_audit"
    group_by: GroupBy
    top: int
    filters: Filters
    ucr_percentile: int | None = None
    first_service_date: dt.date | None = None
    last_service_date: dt.date | None = None
    first_payment_date: dt.date | None = None
    last_payment_date: dt.date | None = None
    totals: GroupSummary
    groups: list[GroupSummary] = Field(description="Sorted by dollars left on the table, largest first.")
    not_compared: NotCompared
    parse: ParseAccounting
    files: list[FileAccounting]
    definitions: list[str] = Field(default_factory=lambda: list(DEFINITIONS))


# ---------------------------------------------------------------------------------------------------
# Aggregation


def claim_date(claim: AuditClaim, date_field: DateField) -> dt.date | None:
    return claim.service_date if date_field == "service" else claim.payment_date


def payer_matches(payers: Sequence[str], payer_id: str | None, payer_group: str) -> bool:
    if not payers:
        return True
    wanted = {item.strip().upper() for item in payers}
    return (payer_id or "").upper() in wanted or payer_group.upper() in wanted


def in_period(claim: AuditClaim, filters: Filters) -> bool:
    if filters.date_from is None and filters.date_to is None:
        return True
    date = claim_date(claim, filters.date_field)
    if date is None:
        return False
    return (filters.date_from is None or date >= filters.date_from) and (
        filters.date_to is None or date <= filters.date_to
    )


def _total(values: Iterable[Decimal]) -> Decimal:
    return _cents(sum(values, ZERO))


def _median(values: list[Decimal]) -> Decimal | None:
    return _cents(statistics.median(values)) if values else None


def _code_rows(lines: Iterable[AuditLine], top: int) -> list[CodeRow]:
    by_code: dict[str, list[AuditLine]] = defaultdict(list)
    for line in lines:
        if line.priced:
            by_code[line.code].append(line)
    rows = []
    for code, items in by_code.items():
        with_medicare = [line for line in items if line.medicare is not None]
        rows.append(
            CodeRow(
                code=code,
                lines=len(items),
                underpaid_lines=sum(1 for line in items if line.status == "underpaid"),
                left_on_table=_total(line.underpaid for line in items),
                median_allowed=_median([line.allowed for line in items]),
                medicare_lines=len(with_medicare),
                median_medicare_amount=_median([line.medicare for line in with_medicare]),
                allowed_pct_of_medicare=_pct(
                    _total(line.allowed for line in with_medicare),
                    _total(line.medicare for line in with_medicare),
                ),
            )
        )
    rows.sort(key=lambda row: (-row.left_on_table, -row.lines, row.code))
    return rows[:top]


def _ucr(lines: list[AuditLine], requested: int | None) -> tuple[list[UcrComparison], str | None]:
    allowed: Counter = Counter()
    amount: Counter = Counter()
    counts: Counter = Counter()
    from_terms: Counter = Counter()
    missing: Counter = Counter()
    for line in lines:
        for percentile, value in line.ucr:
            if value is None:
                missing[percentile] += 1
                continue
            counts[percentile] += 1
            from_terms[percentile] += percentile in line.ucr_terms
            allowed[percentile] += line.allowed
            amount[percentile] += value
    percentiles = sorted(set(counts) | set(missing))
    result = [
        UcrComparison(
            percentile=percentile,
            lines=counts[percentile],
            lines_from_rate_terms=from_terms[percentile],
            lines_without_ucr_amount=missing[percentile],
            allowed=_cents(allowed[percentile] or ZERO),
            ucr_amount=_cents(amount[percentile] or ZERO),
            allowed_pct_of_ucr=_pct(allowed[percentile] or ZERO, amount[percentile] or ZERO),
        )
        for percentile in percentiles
    ]
    note = None
    if not result:
        note = (
            "not derivable: no rate term or OON benchmark of these payers refers to a UCR percentile"
            + ("" if requested is None else " and no priced line")
            + " (use --ucr-percentile to compare every priced line with one)"
        )
    elif any(item.lines_without_ucr_amount for item in result):
        note = "some lines have no UCR row for their geozip and code: they are left out of the percentage"
    return result, note


def summarize(group: str, claims: list[AuditClaim], *, top: int, ucr_percentile: int | None) -> GroupSummary:
    lines = [line for claim in claims for line in claim.lines]
    priced = [line for line in lines if line.priced]
    with_medicare = [line for line in priced if line.medicare is not None]
    statuses = Counter(claim.status for claim in claims)
    medicare_total = _total(line.medicare for line in with_medicare)
    medicare = MedicareComparison(
        lines=len(with_medicare),
        allowed=_total(line.allowed for line in with_medicare),
        paid=_total(line.paid for line in with_medicare),
        medicare_amount=medicare_total,
        allowed_pct_of_medicare=_pct(_total(line.allowed for line in with_medicare), medicare_total),
        paid_pct_of_medicare=_pct(_total(line.paid for line in with_medicare), medicare_total),
    )
    ucr, ucr_note = _ucr(priced, ucr_percentile)
    count = len(claims)
    return GroupSummary(
        group=group,
        payer_ids=sorted({claim.payer_id or UNKNOWN_PAYER for claim in claims}),
        claims=count,
        lines=len(lines),
        priced_lines=len(priced),
        billed=_total(claim.billed for claim in claims),
        allowed=_total(claim.allowed for claim in claims),
        paid=_total(claim.paid for claim in claims),
        expected=_total(claim.expected for claim in claims),
        left_on_table=_total(claim.underpaid for claim in claims),
        recovered=_total(claim.recovered for claim in claims),
        underpaid_claims=statuses["underpaid"],
        underpaid_rate_pct=_rate(statuses["underpaid"], count),
        denied_claims=statuses["denied"],
        denial_rate_pct=_rate(statuses["denied"], count),
        claims_by_status=dict(sorted(statuses.items())),
        medicare=medicare,
        ucr=ucr,
        ucr_note=ucr_note,
        top_codes=_code_rows(lines, top),
    )


def parse_accounting(files: Sequence[FileAccounting]) -> ParseAccounting:
    reasons: Counter = Counter()
    for item in files:
        reasons.update(item.dead_letters_by_reason)
    return ParseAccounting(
        files=len(files),
        files_readable=sum(1 for item in files if item.readable),
        files_with_errors=sum(1 for item in files if item.error),
        claims_seen=sum(item.claims_seen for item in files),
        events=sum(item.events for item in files),
        claim_dead_letters=sum(item.claim_dead_letters for item in files),
        dead_letters=sum(item.dead_letters for item in files),
        dead_letters_by_reason=dict(sorted(reasons.items())),
        provider_adjustments=sum(item.provider_adjustments for item in files),
        duplicate_events=sum(item.duplicate_events for item in files),
        evaluation_failures=sum(item.evaluation_failures for item in files),
        outside_payer_filter=sum(item.outside_payer_filter for item in files),
        accounted=all(item.accounted for item in files),
    )


def build_report(
    claims: Iterable[AuditClaim],
    files: Sequence[FileAccounting],
    *,
    top: int = 10,
    group_by: GroupBy = "group",
    filters: Filters | None = None,
    ucr_percentile: int | None = None,
) -> AuditReport:
    """Aggregate net claims (see :func:`net_claim`) into the report. Pure."""
    filters = filters or Filters()
    kept: list[AuditClaim] = []
    no_net: Counter = Counter()
    outside_dates = outside_payers = 0
    for claim in claims:
        if not payer_matches(filters.payers, claim.payer_id, claim.payer_group):
            outside_payers += 1
            continue
        if not in_period(claim, filters):
            outside_dates += 1
            continue
        if claim.has_net:
            kept.append(claim)
        else:
            no_net[claim.status] += 1

    by_group: dict[str, list[AuditClaim]] = defaultdict(list)
    for claim in kept:
        key = claim.payer_group if group_by == "group" else (claim.payer_id or UNKNOWN_PAYER)
        by_group[key].append(claim)
    groups = [
        summarize(name, items, top=top, ucr_percentile=ucr_percentile) for name, items in sorted(by_group.items())
    ]
    groups.sort(key=lambda item: (-item.left_on_table, -item.claims, item.group))
    totals = summarize(ALL_GROUPS, kept, top=top, ucr_percentile=ucr_percentile)

    claim_reasons = Counter(claim.reason or "unknown" for claim in kept if claim.status == "not_comparable")
    line_reasons = Counter(
        line.reason or "unknown" for claim in kept for line in claim.lines if line.status == "not_comparable"
    )
    accounting = parse_accounting(files)
    not_compared = NotCompared(
        claims_by_reason=dict(sorted(claim_reasons.items())),
        lines_by_reason=dict(sorted(line_reasons.items())),
        reversed_claims=no_net["reversed"],
        reversal_only_claims=no_net["reversal_only"],
        evaluation_failures=accounting.evaluation_failures,
        claims_without_context=sum(1 for claim in kept if not claim.context_joined),
        outside_date_filter=outside_dates,
        outside_payer_filter=outside_payers,
    )
    service_dates = [claim.service_date for claim in kept if claim.service_date]
    payment_dates = [claim.payment_date for claim in kept if claim.payment_date]
    return AuditReport(
        group_by=group_by,
        top=top,
        filters=filters,
        ucr_percentile=ucr_percentile,
        first_service_date=min(service_dates, default=None),
        last_service_date=max(service_dates, default=None),
        first_payment_date=min(payment_dates, default=None),
        last_payment_date=max(payment_dates, default=None),
        totals=totals,
        groups=groups,
        not_compared=not_compared,
        parse=accounting,
        files=list(files),
    )
