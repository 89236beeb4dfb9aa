"""Pricing reference data: Medicare PFS + payers, contract fee schedules, SCAs, UCR, payer OON policies.

Every loader takes :data:`ReferenceFiles` (relative path -> bytes) so the offline CLI (a folder) and the
live workers (compacted Kafka topic) build exactly the same :class:`PricingReference`. Formats are
documented in docs/reference-formats.md; every file except the Medicare ones is optional.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from services.pricing.benchmark import (
    UCR_PERCENTILES,
    Benchmark,
    BenchmarkSyntaxError,
    parse_benchmark,
    terms_of,
)
from services.pricing.medicare import MedicareReference, load_medicare
from services.pricing.validation import (
    CsvRow,
    ErrorCollector,
    parse_bool,
    parse_date,
    parse_decimal,
    read_headed_csv,
)
from services.reference.files import ReferenceError, ReferenceFiles, read_folder

PAYERS_FILE = "payers.csv"
FEE_SCHEDULES_FILE = "fee_schedules.csv"
SCAS_FILE = "scas.csv"
UCR_FILE = "ucr.csv"
PAYER_POLICIES_FILE = "payer_policies.csv"
PRICING_FILES = (PAYERS_FILE, FEE_SCHEDULES_FILE, SCAS_FILE, UCR_FILE, PAYER_POLICIES_FILE)

RATE_TYPES = ("fixed", "pct_billed", "pct_medicare", "pct_ucr")
POS_CLASSES = ("facility", "nonfacility", "any")
SCA_MATCH_COLUMNS = ("patient_key", "payer_claim_id", "authorization_number")
UCR_COLUMNS = tuple(f"p{percentile}" for percentile in UCR_PERCENTILES)
DEFAULT_TOLERANCE_AMOUNT = Decimal("1.00")
DEFAULT_TOLERANCE_PCT = Decimal(0)
DEFAULT_PAYER_GROUP = "other"
ANY_PAYER = "*"

_CODE_RE = re.compile(r"[0-9A-Z]{5}")
_MODIFIER_RE = re.compile(r"[0-9A-Z]{2}")
_TERM_COLUMNS = ("ucr_percentile", "lesser_of_billed", "escalator_pct", "escalator_base_date")


@dataclass(frozen=True, slots=True)
class RateTerms:
    """A rate: fixed dollars, or a percent of billed / Medicare / a UCR percentile."""

    rate_type: str
    rate: Decimal
    ucr_percentile: int | None = None
    lesser_of_billed: bool = False
    escalator_pct: Decimal | None = None
    escalator_base_date: dt.date | None = None

    def describe(self) -> str:
        if self.rate_type == "fixed":
            text = f"fixed {self.rate}"
        elif self.rate_type == "pct_billed":
            text = f"{self.rate}% of billed"
        elif self.rate_type == "pct_medicare":
            text = f"{self.rate}% of Medicare"
        else:
            text = f"{self.rate}% of UCR p{self.ucr_percentile}"
        if self.escalator_pct:
            text += f", +{self.escalator_pct}%/year from {self.escalator_base_date}"
        if self.lesser_of_billed:
            text += ", lesser of billed"
        return text


@dataclass(frozen=True, slots=True)
class PayerInfo:
    payer_id: str
    name: str
    group: str
    state: str | None = None


@dataclass(frozen=True, slots=True)
class FeeScheduleRow:
    file: str
    line: int
    payer_id: str
    product: str | None
    code: str
    modifier: str | None
    pos_class: str
    effective_from: dt.date
    effective_to: dt.date | None
    terms: RateTerms

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}"

    def covers(self, date: dt.date) -> bool:
        return self.effective_from <= date and (self.effective_to is None or date <= self.effective_to)


@dataclass(frozen=True, slots=True)
class ScaRow:
    file: str
    line: int
    sca_id: str
    payer_id: str
    match_on: str
    match_value: str
    codes: frozenset[str] | None
    """None = every code."""
    effective_from: dt.date | None
    effective_to: dt.date | None
    terms: RateTerms

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line} ({self.sca_id})"

    def covers(self, date: dt.date) -> bool:
        return (self.effective_from is None or self.effective_from <= date) and (
            self.effective_to is None or date <= self.effective_to
        )


@dataclass(frozen=True, slots=True)
class UcrRow:
    file: str
    line: int
    geozip: str
    code: str
    modifier: str
    values: dict[int, Decimal]


@dataclass(frozen=True, slots=True)
class PayerPolicy:
    file: str
    line: int
    payer_id: str
    benchmark: Benchmark
    benchmark_text: str
    tolerance_amount: Decimal
    tolerance_pct: Decimal

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class PricingReference:
    medicare: MedicareReference = field(default_factory=MedicareReference)
    payers: dict[str, PayerInfo] = field(default_factory=dict)
    fee_schedules: dict[tuple[str, str], tuple[FeeScheduleRow, ...]] = field(default_factory=dict)
    """(payer_id, code) -> rows."""
    scas: dict[str, tuple[ScaRow, ...]] = field(default_factory=dict)
    """payer_id -> SCAs."""
    ucr: dict[tuple[str, str, str], UcrRow] = field(default_factory=dict)
    """(geozip, code, modifier) -> row."""
    payer_policies: dict[str, PayerPolicy] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def payer(self, payer_id: str | None) -> PayerInfo | None:
        return self.payers.get(payer_id) if payer_id else None

    def payer_group(self, payer_id: str | None) -> str:
        info = self.payer(payer_id)
        return info.group if info else DEFAULT_PAYER_GROUP

    def policy(self, payer_id: str | None) -> PayerPolicy | None:
        return (self.payer_policies.get(payer_id) if payer_id else None) or self.payer_policies.get(ANY_PAYER)


def load_pricing_reference(files: ReferenceFiles, *, errors: ErrorCollector | None = None) -> PricingReference:
    """Validate and load every pricing file present in ``files``.

    Without ``errors``, any problem raises :class:`services.pricing.validation.ReferenceValidationError`
    (a ReferenceError listing all problems in ``.errors``). With an ``errors`` collector, problems are
    added to it and what could be read is returned.
    """
    own = errors is None
    errors = errors or ErrorCollector()
    medicare = load_medicare(files, errors)
    payers = _guard(errors, PAYERS_FILE, files, _load_payers, {})
    fee_rows = _guard(errors, FEE_SCHEDULES_FILE, files, _load_fee_schedules, [])
    sca_rows = _guard(errors, SCAS_FILE, files, _load_scas, [])
    ucr = _guard(errors, UCR_FILE, files, _load_ucr, {})
    policies = _guard(errors, PAYER_POLICIES_FILE, files, _load_policies, {})

    fee_schedules: dict[tuple[str, str], list[FeeScheduleRow]] = {}
    for row in fee_rows:
        fee_schedules.setdefault((row.payer_id, row.code), []).append(row)
    scas: dict[str, list[ScaRow]] = {}
    for row in sca_rows:
        scas.setdefault(row.payer_id, []).append(row)

    _cross_checks(errors, medicare, payers, fee_rows, sca_rows, ucr, policies)
    if own:
        errors.raise_if_any()
    return PricingReference(
        medicare=medicare,
        payers=payers,
        fee_schedules={key: tuple(rows) for key, rows in fee_schedules.items()},
        scas={key: tuple(rows) for key, rows in scas.items()},
        ucr=ucr,
        payer_policies=policies,
        warnings=tuple(errors.warnings),
    )


def load_pricing_folder(root: Path | str) -> PricingReference:
    """Read a reference folder (``read_folder``) and load its pricing parts."""
    return load_pricing_reference(read_folder(Path(root)))


def _guard(errors: ErrorCollector, name: str, files: ReferenceFiles, loader: Callable, empty):
    if name not in files:
        return empty
    try:
        return loader(name, files[name], errors)
    except ReferenceError as error:
        errors.add_error(error)
        return empty


# ---------------------------------------------------------------------------------------------------
# Field parsers


def _code(row: CsvRow, column: str = "code") -> str:
    value = row.get(column).upper()
    if not _CODE_RE.fullmatch(value):
        raise row.error(column, f"expected a 5-character CPT/HCPCS code, got {row.get(column)!r}")
    return value


def _modifier(row: CsvRow, column: str = "modifier") -> str | None:
    value = row.get(column).upper()
    if not value:
        return None
    if not _MODIFIER_RE.fullmatch(value):
        raise row.error(column, f"expected a 2-character modifier (e.g. 26, TC, 50) or blank, got {row.get(column)!r}")
    return value


def _required(row: CsvRow, column: str) -> str:
    value = row.get(column)
    if not value:
        raise row.error(column, "required value is blank")
    return value


def _optional_date(row: CsvRow, column: str) -> dt.date | None:
    value = row.get(column)
    return parse_date(value, file=row.file, line=row.line, column=column) if value else None


def _date_range(row: CsvRow, required_from: bool) -> tuple[dt.date | None, dt.date | None]:
    start = _optional_date(row, "effective_from")
    if start is None and required_from:
        raise row.error("effective_from", "required date YYYY-MM-DD is blank")
    end = _optional_date(row, "effective_to")
    if start and end and end < start:
        raise row.error("effective_to", f"{end} is before effective_from {start}")
    return start, end


def _rate_terms(row: CsvRow, default_base: dt.date | None) -> RateTerms:
    rate_type = row.get("rate_type").lower()
    if rate_type not in RATE_TYPES:
        raise row.error("rate_type", f"expected one of {', '.join(RATE_TYPES)}, got {row.get('rate_type')!r}")
    rate = parse_decimal(_required(row, "rate"), file=row.file, line=row.line, column="rate")
    if rate <= 0:
        raise row.error("rate", "a rate must be positive (a term that pays nothing is a denial, not a rate)")
    if rate_type != "fixed" and rate > 1000:
        raise row.error("rate", f"a percent rate above 1000 is not plausible, got {rate} (write 140 for 140%)")
    if rate_type != "fixed" and rate < 5:
        raise row.error("rate", f"{rate}% is not plausible: percents are written 140 for 140%, not 1.40")
    percentile_text = row.get("ucr_percentile")
    percentile = None
    if rate_type == "pct_ucr":
        if not percentile_text.isdigit() or int(percentile_text) not in UCR_PERCENTILES:
            raise row.error(
                "ucr_percentile",
                f"pct_ucr needs ucr_percentile, one of {', '.join(map(str, UCR_PERCENTILES))}; got {percentile_text!r}",
            )
        percentile = int(percentile_text)
    elif percentile_text:
        raise row.error(
            "ucr_percentile", f"ucr_percentile is only used with rate_type pct_ucr (rate_type is {rate_type})"
        )
    lesser = parse_bool(row.get("lesser_of_billed"), file=row.file, line=row.line, column="lesser_of_billed")
    escalator_text = row.get("escalator_pct")
    escalator = None
    base = None
    if escalator_text:
        escalator = parse_decimal(escalator_text, file=row.file, line=row.line, column="escalator_pct")
        if escalator > 50:
            raise row.error("escalator_pct", f"an annual escalator above 50% is not plausible, got {escalator}")
        base = _optional_date(row, "escalator_base_date") or default_base
        if base is None:
            raise row.error("escalator_base_date", "escalator_pct needs escalator_base_date (or effective_from)")
    elif row.get("escalator_base_date"):
        raise row.error("escalator_base_date", "escalator_base_date without escalator_pct")
    return RateTerms(rate_type, rate, percentile, lesser, escalator or None, base if escalator else None)


# ---------------------------------------------------------------------------------------------------
# Files


def _load_payers(name: str, content: bytes, errors: ErrorCollector) -> dict[str, PayerInfo]:
    result: dict[str, PayerInfo] = {}
    for row in read_headed_csv(name, content, required=("payer_id", "payer_name"), optional=("payer_group", "state")):
        try:
            payer_id = _required(row, "payer_id")
            if payer_id == ANY_PAYER:
                raise row.error("payer_id", "'*' is not a payer id")
            if payer_id in result:
                raise row.error("payer_id", f"payer {payer_id} appears twice")
            group = row.get("payer_group") or DEFAULT_PAYER_GROUP
            if not re.fullmatch(r"[A-Za-z0-9_.\- ]{1,40}", group):
                raise row.error("payer_group", f"expected a short label (letters, digits, _ . - space), got {group!r}")
            state = row.get("state").upper() or None
            if state and not re.fullmatch(r"[A-Z]{2}", state):
                raise row.error("state", f"expected a 2-letter state or blank, got {row.get('state')!r}")
            result[payer_id] = PayerInfo(payer_id, _required(row, "payer_name"), group, state)
        except ReferenceError as error:
            errors.add_error(error)
    return result


def _load_fee_schedules(name: str, content: bytes, errors: ErrorCollector) -> list[FeeScheduleRow]:
    rows: list[FeeScheduleRow] = []
    for row in read_headed_csv(
        name,
        content,
        required=("payer_id", "code", "rate_type", "rate", "effective_from"),
        optional=("product", "modifier", "pos_class", "effective_to", *_TERM_COLUMNS),
    ):
        try:
            pos_class = (row.get("pos_class") or "any").lower().replace("-", "").replace("_", "")
            if pos_class not in POS_CLASSES:
                raise row.error("pos_class", f"expected facility, nonfacility or any, got {row.get('pos_class')!r}")
            start, end = _date_range(row, required_from=True)
            rows.append(
                FeeScheduleRow(
                    file=name,
                    line=row.line,
                    payer_id=_required(row, "payer_id"),
                    product=row.get("product").upper() or None,
                    code=_code(row),
                    modifier=_modifier(row),
                    pos_class=pos_class,
                    effective_from=start,
                    effective_to=end,
                    terms=_rate_terms(row, start),
                )
            )
        except ReferenceError as error:
            errors.add_error(error)
    groups: dict[tuple, list[FeeScheduleRow]] = {}
    for item in rows:
        groups.setdefault((item.payer_id, item.product, item.code, item.modifier, item.pos_class), []).append(item)
    for group in groups.values():
        _check_overlaps(errors, name, group, lambda item: item.effective_from, lambda item: item.effective_to)
    return rows


def _check_overlaps(errors, name, group, start_of, end_of) -> None:
    ordered = sorted(group, key=lambda item: (start_of(item) or dt.date.min, item.line))
    for previous, current in itertools.pairwise(ordered):
        previous_end = end_of(previous)
        if previous_end is None or previous_end >= (start_of(current) or dt.date.min):
            errors.add(
                name,
                f"dates overlap line {previous.line} for the same terms key; close the earlier row with "
                f"effective_to before {start_of(current)}",
                current.line,
                "effective_from",
            )


def _load_scas(name: str, content: bytes, errors: ErrorCollector) -> list[ScaRow]:
    rows: list[ScaRow] = []
    seen: set[str] = set()
    for row in read_headed_csv(
        name,
        content,
        required=("sca_id", "payer_id", "rate_type", "rate"),
        optional=(*SCA_MATCH_COLUMNS, "codes", "effective_from", "effective_to", *_TERM_COLUMNS),
    ):
        try:
            sca_id = _required(row, "sca_id")
            if sca_id in seen:
                raise row.error("sca_id", f"SCA {sca_id} appears twice")
            seen.add(sca_id)
            filled = [column for column in SCA_MATCH_COLUMNS if row.get(column)]
            if len(filled) != 1:
                raise row.error(
                    None,
                    f"exactly one of {', '.join(SCA_MATCH_COLUMNS)} must be filled (it says which claims the SCA "
                    f"covers); found {len(filled)}",
                )
            codes_text = row.get("codes")
            codes: frozenset[str] | None = None
            if codes_text and codes_text != "*":
                parsed = set()
                for part in codes_text.split(";"):
                    code = part.strip().upper()
                    if not _CODE_RE.fullmatch(code):
                        raise row.error("codes", f"expected '*' or ';'-separated 5-character codes, got {part!r}")
                    parsed.add(code)
                codes = frozenset(parsed)
            start, end = _date_range(row, required_from=False)
            rows.append(
                ScaRow(
                    file=name,
                    line=row.line,
                    sca_id=sca_id,
                    payer_id=_required(row, "payer_id"),
                    match_on=filled[0],
                    match_value=row.get(filled[0]),
                    codes=codes,
                    effective_from=start,
                    effective_to=end,
                    terms=_rate_terms(row, start),
                )
            )
        except ReferenceError as error:
            errors.add_error(error)
    groups: dict[tuple, list[ScaRow]] = {}
    for item in rows:
        for code in sorted(item.codes) if item.codes else ["*"]:
            groups.setdefault((item.payer_id, item.match_on, item.match_value, code), []).append(item)
    for group in groups.values():
        _check_overlaps(errors, name, group, lambda item: item.effective_from, lambda item: item.effective_to)
    return rows


def _load_ucr(name: str, content: bytes, errors: ErrorCollector) -> dict[tuple[str, str, str], UcrRow]:
    result: dict[tuple[str, str, str], UcrRow] = {}
    rows = read_headed_csv(name, content, required=("geozip", "code"), optional=("modifier", *UCR_COLUMNS))
    first = True
    for row in rows:
        if first:
            first = False
            if not any(column in row.values for column in UCR_COLUMNS):
                raise row.error(None, f"no percentile column; expected some of {', '.join(UCR_COLUMNS)}")
        try:
            geozip = row.get("geozip")
            if not re.fullmatch(r"\d{3}", geozip):
                raise row.error("geozip", f"expected a 3-digit ZIP3 geozip, got {geozip!r}")
            code = _code(row)
            modifier = _modifier(row) or ""
            values: dict[int, Decimal] = {}
            for percentile, column in zip(UCR_PERCENTILES, UCR_COLUMNS, strict=True):
                text = row.get(column)
                if text:
                    value = parse_decimal(text, file=name, line=row.line, column=column)
                    if value <= 0:
                        raise row.error(column, "a UCR amount must be positive (leave blank when unknown)")
                    values[percentile] = value
            if not values:
                raise row.error(None, "no percentile value in this row")
            ordered = [values[p] for p in UCR_PERCENTILES if p in values]
            if any(later < earlier for earlier, later in itertools.pairwise(ordered)):
                raise row.error(None, "percentile values decrease (p50 <= p60 <= ... <= p95 expected)")
            key = (geozip, code, modifier)
            if key in result:
                raise row.error(
                    None,
                    f"geozip {geozip} code {code} modifier {modifier or '(none)'} appears twice "
                    f"(first at line {result[key].line})",
                )
            result[key] = UcrRow(name, row.line, geozip, code, modifier, values)
        except ReferenceError as error:
            errors.add_error(error)
    return result


def _load_policies(name: str, content: bytes, errors: ErrorCollector) -> dict[str, PayerPolicy]:
    result: dict[str, PayerPolicy] = {}
    for row in read_headed_csv(
        name, content, required=("payer_id", "benchmark"), optional=("tolerance_amount", "tolerance_pct")
    ):
        try:
            payer_id = _required(row, "payer_id")
            if payer_id in result:
                raise row.error("payer_id", f"payer {payer_id} has two policies")
            text = _required(row, "benchmark")
            try:
                benchmark = parse_benchmark(text)
            except BenchmarkSyntaxError as error:
                raise row.error(
                    "benchmark", f"{error}; e.g. 'max(150% medicare, 100% ucr80)' or '85% billed'"
                ) from None
            amount_text, pct_text = row.get("tolerance_amount"), row.get("tolerance_pct")
            amount = (
                parse_decimal(amount_text, file=name, line=row.line, column="tolerance_amount")
                if amount_text
                else DEFAULT_TOLERANCE_AMOUNT
            )
            pct = (
                parse_decimal(pct_text, file=name, line=row.line, column="tolerance_pct")
                if pct_text
                else DEFAULT_TOLERANCE_PCT
            )
            if pct > 50:
                raise row.error("tolerance_pct", f"a tolerance above 50% is not plausible, got {pct}")
            result[payer_id] = PayerPolicy(name, row.line, payer_id, benchmark, text, amount, pct)
        except ReferenceError as error:
            errors.add_error(error)
    return result


def _cross_checks(errors, medicare, payers, fee_rows, sca_rows, ucr, policies) -> None:
    uses_medicare = any(row.terms.rate_type == "pct_medicare" for row in [*fee_rows, *sca_rows]) or any(
        term.source == "medicare" for policy in policies.values() for term in terms_of(policy.benchmark)
    )
    uses_ucr = any(row.terms.rate_type == "pct_ucr" for row in [*fee_rows, *sca_rows]) or any(
        term.source == "ucr" for policy in policies.values() for term in terms_of(policy.benchmark)
    )
    if uses_medicare and not medicare.years:
        errors.warn(
            "terms use % of Medicare but no medicare/<year>/ files are loaded: those lines get no expected amount"
        )
    if uses_ucr and not ucr:
        errors.warn("terms use a UCR percentile but there is no ucr.csv: those lines get no expected amount")
    if payers:
        unknown = Counter(
            row.payer_id
            for row in [*fee_rows, *sca_rows, *policies.values()]
            if row.payer_id != ANY_PAYER and row.payer_id not in payers
        )
        for payer_id, count in sorted(unknown.items()):
            errors.warn(
                f"payer {payer_id} is used by {count} row(s) but is not in payers.csv (its group will be 'other')"
            )


def pricing_summary(reference: PricingReference) -> list[str]:
    """Human-readable summary lines for ``claimwatch reference check``."""
    lines: list[str] = []
    for year, data in sorted(reference.medicare.years.items()):
        for release in data.rvu_releases:
            statuses = Counter(row.status for row in release.rows.values())
            codes = len({code for code, _ in release.rows})
            lines.append(
                f"medicare {year}: {release.file.rsplit('/', 1)[-1]} from {release.effective_from}: "
                f"{len(release.rows)} rows, {codes} codes ({statuses.get('A', 0)} rows with status A), "
                f"CF {data.conversion_factor(release.effective_from)}"
            )
        if data.conversion_factor_override is not None:
            lines.append(f"medicare {year}: conversion factor overridden to {data.conversion_factor_override}")
        if data.qualifying_apm_conversion_factor is not None:
            lines.append(f"medicare {year}: qualifying APM conversion factor {data.qualifying_apm_conversion_factor}")
        lines.append(f"medicare {year}: {len(data.gpcis)} localities in GPCI")
        for release in data.zip_releases:
            states = len({entry.state for entry in release.zips.values()})
            localities = len({entry.key for entry in release.zips.values()})
            lines.append(
                f"medicare {year}: {release.file.rsplit('/', 1)[-1]}: {len(release.zips)} ZIPs in {states} states, "
                f"{localities} localities"
            )
        if data.localities:
            lines.append(f"medicare {year}: {len(data.localities)} localities described in LOCCO")
    if reference.payers:
        groups = Counter(info.group for info in reference.payers.values())
        lines.append(
            f"{PAYERS_FILE}: {len(reference.payers)} payers in {len(groups)} groups ({', '.join(sorted(groups))})"
        )
    if reference.fee_schedules:
        rows = [row for group in reference.fee_schedules.values() for row in group]
        lines.append(
            f"{FEE_SCHEDULES_FILE}: {len(rows)} rows, {len({row.payer_id for row in rows})} payers, "
            f"{len({row.code for row in rows})} codes"
        )
    if reference.scas:
        rows = [row for group in reference.scas.values() for row in group]
        lines.append(f"{SCAS_FILE}: {len(rows)} SCAs, {len(reference.scas)} payers")
    if reference.ucr:
        rows = list(reference.ucr.values())
        lines.append(
            f"{UCR_FILE}: {len(rows)} rows, {len({row.geozip for row in rows})} geozips, "
            f"{len({row.code for row in rows})} codes"
        )
    if reference.payer_policies:
        default = " (with a '*' default)" if ANY_PAYER in reference.payer_policies else " (no '*' default)"
        lines.append(f"{PAYER_POLICIES_FILE}: {len(reference.payer_policies)} policies{default}")
    return lines
