"""Medicare Physician Fee Schedule (PFS): CMS files as CMS publishes them, and the payment formula.

Files sit in ``medicare/<year>/`` of a reference folder, under CMS's own names:

- ``PPRRVU*.csv``: the national RVU file (title/note rows, then the ``HCPCS,MOD,...`` header row, then
  one row per HCPCS + modifier). Columns are located by their (multi-row) header names, so a column
  added or moved by CMS in a later year does not shift the numbers. Several quarterly releases may sit
  side by side (``PPRRVU2025_Jan.csv``, ``PPRRVU2025_Oct.csv``): the month in the name is the first day
  the release applies to, and a date of service uses the latest release on or before it. A
  ``*_QPP*`` file (qualifying APM participants) only contributes its conversion factor.
- ``GPCI*.csv``: Addendum E, work/PE/MP GPCI per MAC carrier + 2-digit locality.
- ``ZIP5*.txt``: ZIP code -> carrier + pricing locality, fixed width (ZIP5lyout.txt).
- ``*LOCCO*.csv`` (optional): counties of each locality; informational.
- ``medicare/conversion_factors.csv`` (optional, one folder up): per-year override
  ``year,conversion_factor,qualifying_apm_conversion_factor``.

Payment (CMS): ``round(((work_rvu*work_gpci)+(pe_rvu*pe_gpci)+(mp_rvu*mp_gpci))*CF, 2)`` with the facility
PE RVU in a facility place of service and the non-facility PE RVU otherwise. Imaging services subject to
the OPPS cap (non-zero "USED FOR OPPS PAYMENT AMOUNT" columns) are paid the lesser of that amount and
``round(((work_rvu*work_gpci)+(opps_pe_rvu*pe_gpci)+(opps_mp_rvu*mp_gpci))*CF, 2)``.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import datetime as dt
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path, PurePosixPath

from services.pricing.validation import ErrorCollector, parse_decimal, read_headed_csv
from services.reference.files import ReferenceError, ReferenceFiles, decode_text

CENT = Decimal("0.01")
ZERO = Decimal(0)

# Places of service paid at the PFS *facility* rate (Medicare Claims Processing Manual, chapter 12,
# section 20.4.2 "Site of Service Payment Differential"): 19 off-campus outpatient hospital, 21 inpatient
# hospital, 22 on-campus outpatient hospital, 23 emergency room, 24 ASC, 26 military treatment facility,
# 31 SNF (Part A), 34 hospice, 41/42 ambulance, 51 inpatient psychiatric facility, 52 psychiatric partial
# hospitalization, 53 community mental health center, 56 psychiatric residential treatment center,
# 61 comprehensive inpatient rehabilitation facility; plus 02 (telehealth other than in the patient's
# home), which CMS pays at the facility rate since CY 2024 (POS 10, telehealth in the home, is paid at
# the non-facility rate). Every other place of service (11 office, 12 home, 20 urgent care, 32 nursing
# facility, 49 independent clinic, 81 independent lab...) is non-facility.
FACILITY_PLACES_OF_SERVICE = frozenset(
    {"02", "19", "21", "22", "23", "24", "26", "31", "34", "41", "42", "51", "52", "53", "56", "61"}
)

# PPRRVU status codes (our short labels). Only A, T and R-with-RVUs have a national amount.
STATUS_LABELS = {
    "A": "active: paid separately under the PFS",
    "B": "bundled: payment is included in other services, never paid separately",
    "C": "carrier priced: the MAC sets the amount case by case, no national amount",
    "D": "deleted code",
    "E": "excluded from the PFS by regulation",
    "F": "deleted code (no grace period)",
    "G": "not valid for Medicare: another code is used",
    "H": "deleted modifier",
    "I": "not valid for Medicare: another code is used",
    "J": "anesthesia service: paid with anesthesia base units, not RVUs",
    "M": "measurement (quality reporting) code, no payment",
    "N": "non-covered service",
    "P": "bundled or excluded (PT/OT supplies and services)",
    "R": "restricted coverage: special coverage instructions apply",
    "T": "paid only when no other PFS service is paid on the same date by the same provider",
    "X": "statutory exclusion: not in the PFS",
}
PAYABLE_STATUSES = frozenset({"A", "T", "R"})
# Modifiers that have their own PPRRVU rows (professional component, technical component, discontinued).
PRICING_MODIFIERS_CMS = ("26", "TC", "53")

MONTHS = {
    name: number
    for number, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1
    )
}
_MONTH_RE = re.compile(r"(?<![A-Z])(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)", re.IGNORECASE)
_LOCALITY_RE = re.compile(r"^\s*(\d{1,5})\s*[-/ ]\s*(\d{1,2})\s*$")

# PPRRVU columns we use: (attribute, normalised multi-row header name).
_RVU_COLUMNS = {
    "code": "HCPCS",
    "modifier": "MOD",
    "status": "STATUS CODE",
    "work": "WORK RVU",
    "pe_nonfacility": "NON-FAC PE RVU",
    "nonfacility_na": "NON-FAC NA INDICATOR",
    "pe_facility": "FACILITY PE RVU",
    "facility_na": "FACILITY NA INDICATOR",
    "mp": "MP RVU",
    "pctc": "PCTC IND",
    "global_days": "GLOB DAYS",
    "mult_proc": "MULT PROC",
    "bilat_surg": "BILAT SURG",
    "asst_surg": "ASST SURG",
    "conversion_factor": "CONV FACTOR",
    "opps_pe_nonfacility": "NON-FACILITY PE USED FOR OPPS PAYMENT AMOUNT",
    "opps_pe_facility": "FACILITY PE USED FOR OPPS PAYMENT AMOUNT",
    "opps_mp": "MP USED FOR OPPS PAYMENT AMOUNT",
}
_RVU_DECIMALS = ("work", "pe_nonfacility", "pe_facility", "mp", "opps_pe_nonfacility", "opps_pe_facility", "opps_mp")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class RvuRow:
    code: str
    modifier: str
    status: str
    work: Decimal
    pe_nonfacility: Decimal
    pe_facility: Decimal
    mp: Decimal
    nonfacility_na: bool
    facility_na: bool
    pctc: str
    global_days: str
    mult_proc: str
    bilat_surg: str
    asst_surg: str
    opps_pe_nonfacility: Decimal
    opps_pe_facility: Decimal
    opps_mp: Decimal
    file: str
    line: int

    @property
    def has_rvus(self) -> bool:
        return bool(self.work or self.pe_nonfacility or self.pe_facility or self.mp)

    @property
    def opps_capped(self) -> bool:
        return bool(self.opps_pe_nonfacility or self.opps_pe_facility or self.opps_mp)


@dataclass(frozen=True, slots=True)
class Gpci:
    carrier: str
    locality: str
    state: str
    name: str
    work: Decimal
    pe: Decimal
    mp: Decimal

    @property
    def key(self) -> str:
        return f"{self.carrier}-{self.locality}"


@dataclass(frozen=True, slots=True)
class ZipLocality:
    zip_code: str
    state: str
    carrier: str
    locality: str
    rural: str
    plus_four: bool

    @property
    def key(self) -> str:
        return f"{self.carrier}-{self.locality}"


@dataclass(frozen=True, slots=True)
class LocalityCounties:
    carrier: str
    locality: str
    state: str
    area: str
    counties: str


@dataclass(frozen=True)
class RvuRelease:
    file: str
    effective_from: dt.date
    conversion_factor: Decimal
    rows: dict[tuple[str, str], RvuRow]


@dataclass(frozen=True)
class ZipRelease:
    file: str
    effective_from: dt.date
    zips: dict[str, ZipLocality]


@dataclass(frozen=True)
class MedicareYear:
    year: int
    rvu_releases: tuple[RvuRelease, ...]
    gpcis: dict[tuple[str, str], Gpci]
    zip_releases: tuple[ZipRelease, ...]
    localities: dict[tuple[str, str], LocalityCounties] = field(default_factory=dict)
    conversion_factor_override: Decimal | None = None
    qualifying_apm_conversion_factor: Decimal | None = None

    def rvu_release(self, date: dt.date | None = None) -> RvuRelease:
        return _release_for(self.rvu_releases, date)

    def zip_release(self, date: dt.date | None = None) -> ZipRelease | None:
        return _release_for(self.zip_releases, date) if self.zip_releases else None

    def conversion_factor(self, date: dt.date | None = None, *, apm: bool = False) -> Decimal:
        if apm and self.qualifying_apm_conversion_factor is not None:
            return self.qualifying_apm_conversion_factor
        if self.conversion_factor_override is not None:
            return self.conversion_factor_override
        return self.rvu_release(date).conversion_factor


def _release_for(releases, date):
    if date is None or len(releases) == 1:
        return releases[-1]
    index = bisect.bisect_right([release.effective_from for release in releases], date) - 1
    return releases[max(index, 0)]


@dataclass(frozen=True)
class MedicareReference:
    years: dict[int, MedicareYear] = field(default_factory=dict)

    def year(self, year: int) -> MedicareYear | None:
        return self.years.get(year)


# ---------------------------------------------------------------------------------------------------
# Loading


def _release_date(name: str, year: int) -> tuple[dt.date, bool]:
    """First day of the release month in a CMS file name (Jan 1 when the name has no month)."""
    stem = PurePosixPath(name).stem
    match = _MONTH_RE.search(stem.upper().replace("_", " "))
    if match is None:
        return dt.date(year, 1, 1), False
    return dt.date(year, MONTHS[match.group(1).upper()], 1), True


def _is_qpp(name: str) -> bool:
    upper = PurePosixPath(name).name.upper()
    return "QPP" in upper and "NONQPP" not in upper.replace("_", "").replace("-", "")


def classify_medicare_file(name: str) -> str | None:
    """'rvu', 'gpci', 'zip5', 'locco' or None for a file name under medicare/<year>/."""
    base = PurePosixPath(name).name.upper()
    if base.startswith("PPRRVU") and base.endswith(".CSV"):
        return "rvu"
    if base.startswith("GPCI") and base.endswith(".CSV"):
        return "gpci"
    if base.startswith("ZIP5") and base.endswith(".TXT") and "LYOUT" not in base and "LAYOUT" not in base:
        return "zip5"
    if "LOCCO" in base and base.endswith(".CSV"):
        return "locco"
    return None


def load_medicare(files: ReferenceFiles, errors: ErrorCollector | None = None) -> MedicareReference:
    """Build the Medicare PFS reference from ``medicare/<year>/...`` entries of ``files``.

    With ``errors`` given, problems are added to it (and whatever could be read is returned); without,
    the first batch of problems raises :class:`ReferenceValidationError`.
    """
    own = errors is None
    errors = errors or ErrorCollector()
    by_year: dict[int, dict[str, list[str]]] = {}
    for name in files:
        parts = PurePosixPath(name).parts
        if len(parts) < 2 or parts[0] != "medicare":
            continue
        if len(parts) == 2:
            if parts[1] != "conversion_factors.csv":
                errors.warn(f"{name}: ignored (expected medicare/<year>/<CMS file> or medicare/conversion_factors.csv)")
            continue
        if len(parts) != 3 or not re.fullmatch(r"\d{4}", parts[1]):
            errors.add(name, "expected medicare/<4-digit year>/<CMS file name>")
            continue
        kind = classify_medicare_file(parts[2])
        if kind is None:
            errors.warn(f"{name}: ignored (not a PPRRVU*.csv, GPCI*.csv, ZIP5*.txt or *LOCCO*.csv file)")
            continue
        by_year.setdefault(int(parts[1]), {}).setdefault(kind, []).append(name)

    overrides = _load_conversion_factors(files, errors)
    years: dict[int, MedicareYear] = {}
    for year in sorted(by_year):
        kinds = by_year[year]
        try:
            loaded = _load_year(files, year, kinds, overrides.get(year), errors)
        except ReferenceError as error:
            errors.add_error(error)
            continue
        if loaded is not None:
            years[year] = loaded
    for year in overrides:
        if year not in by_year:
            errors.warn(f"medicare/conversion_factors.csv: year {year} has no medicare/{year}/ files")
    if own:
        errors.raise_if_any()
    return MedicareReference(years=years)


def _load_year(files, year, kinds, override, errors: ErrorCollector) -> MedicareYear | None:
    folder = f"medicare/{year}/"
    for kind, label in (("rvu", "PPRRVU*.csv"), ("gpci", "GPCI*.csv"), ("zip5", "ZIP5*.txt")):
        if not kinds.get(kind):
            errors.add(folder, f"missing the CMS {label} file for {year}")
    if not kinds.get("rvu") or not kinds.get("gpci"):
        return None

    gpcis: dict[tuple[str, str], Gpci] = {}
    for name in kinds["gpci"]:
        if gpcis:
            errors.add(name, f"a second GPCI file for {year}; keep one GPCI*.csv per year")
            continue
        gpcis = parse_gpci(name, files[name], errors)

    rvu_releases: list[RvuRelease] = []
    apm_cf: Decimal | None = None
    standard = [name for name in kinds["rvu"] if not _is_qpp(name)]
    for name in kinds["rvu"]:
        if _is_qpp(name):
            cf = read_rvu_conversion_factor(name, files[name])
            if apm_cf is not None and cf != apm_cf:
                errors.add(name, f"conversion factor {cf} differs from another QPP file's {apm_cf}")
            apm_cf = cf
    if not standard:
        errors.add(folder, "only QPP PPRRVU files: the standard (non-QPP) PPRRVU*.csv is required")
        return None
    seen_dates: dict[dt.date, str] = {}
    for name in standard:
        effective, _ = _release_date(name, year)
        if effective in seen_dates:
            errors.add(
                name,
                f"same release month as {seen_dates[effective]}: name quarterly releases by month "
                f"(e.g. PPRRVU{year}_Jan.csv, PPRRVU{year}_Apr.csv)",
            )
            continue
        seen_dates[effective] = name
        try:
            rvu_releases.append(parse_pprrvu(name, files[name], effective))
        except ReferenceError as error:
            errors.add_error(error)
    rvu_releases.sort(key=lambda release: release.effective_from)
    if rvu_releases:  # the earliest release also covers the months before it
        rvu_releases[0] = dataclasses.replace(rvu_releases[0], effective_from=dt.date(year, 1, 1))

    zip_releases: list[ZipRelease] = []
    for name in kinds.get("zip5", []):
        effective, _ = _release_date(name, year)
        try:
            release = parse_zip5(name, files[name], effective)
        except ReferenceError as error:
            errors.add_error(error)
            continue
        if gpcis:
            missing = sorted({(z.carrier, z.locality) for z in release.zips.values()} - set(gpcis))
            for carrier, locality in missing[:20]:
                errors.add(name, f"carrier {carrier} locality {locality} is not in the GPCI file for {year}")
        if any(existing.effective_from == effective for existing in zip_releases):
            errors.add(name, "two ZIP5 files with the same release month")
            continue
        zip_releases.append(release)
    zip_releases.sort(key=lambda release: release.effective_from)
    if zip_releases:
        zip_releases[0] = dataclasses.replace(zip_releases[0], effective_from=dt.date(year, 1, 1))

    localities: dict[tuple[str, str], LocalityCounties] = {}
    for name in kinds.get("locco", []):
        try:
            localities.update(parse_locco(name, files[name]))
        except ReferenceError as error:
            errors.add_error(error)
    if not rvu_releases or not gpcis:
        return None
    cf_override, apm_override = override or (None, None)
    return MedicareYear(
        year=year,
        rvu_releases=tuple(rvu_releases),
        gpcis=gpcis,
        zip_releases=tuple(zip_releases),
        localities=localities,
        conversion_factor_override=cf_override,
        qualifying_apm_conversion_factor=apm_override if apm_override is not None else apm_cf,
    )


def _load_conversion_factors(
    files: ReferenceFiles, errors: ErrorCollector
) -> dict[int, tuple[Decimal, Decimal | None]]:
    name = "medicare/conversion_factors.csv"
    if name not in files:
        return {}
    result: dict[int, tuple[Decimal, Decimal | None]] = {}
    try:
        for row in read_headed_csv(
            name, files[name], required=("year", "conversion_factor"), optional=("qualifying_apm_conversion_factor",)
        ):
            try:
                text = row.get("year")
                if not re.fullmatch(r"\d{4}", text):
                    raise row.error("year", f"expected a 4-digit year, got {text!r}")
                year = int(text)
                if year in result:
                    raise row.error("year", f"year {year} appears twice")
                cf = parse_decimal(row.get("conversion_factor"), file=name, line=row.line, column="conversion_factor")
                if cf <= 0:
                    raise row.error("conversion_factor", "expected a positive conversion factor")
                apm_text = row.get("qualifying_apm_conversion_factor")
                apm = (
                    parse_decimal(apm_text, file=name, line=row.line, column="qualifying_apm_conversion_factor")
                    if apm_text
                    else None
                )
                result[year] = (cf, apm)
            except ReferenceError as error:
                errors.add_error(error)
    except ReferenceError as error:
        errors.add_error(error)
    return result


def _rvu_header(name: str, rows: list[list[str]]) -> tuple[int, dict[str, int]]:
    """Index of the ``HCPCS,MOD,...`` row and column positions by attribute (multi-row names joined)."""
    header_index = next(
        (index for index, row in enumerate(rows[:40]) if row and row[0].strip().upper() == "HCPCS"), None
    )
    if header_index is None:
        raise ReferenceError(name, "no header row starting with HCPCS in the first 40 rows (is this a CMS PPRRVU csv?)")
    width = max(len(row) for row in rows[: header_index + 1])
    joined: dict[str, int] = {}
    for column in range(width):
        parts = [
            row[column].strip()
            for row in rows[max(0, header_index - 4) : header_index + 1]
            if column < len(row) and row[column].strip()
        ]
        label = " ".join(" ".join(parts).upper().split())
        joined.setdefault(label, column)
    positions: dict[str, int] = {}
    missing = []
    for attribute, label in _RVU_COLUMNS.items():
        if label in joined:
            positions[attribute] = joined[label]
        else:
            missing.append(label)
    if missing:
        raise ReferenceError(
            name,
            f"header rows lack column(s) {', '.join(missing)} (columns are found by their CMS header names)",
            header_index + 1,
        )
    return header_index, positions


def _csv_rows(name: str, content: bytes) -> list[list[str]]:
    text = decode_text(name, content)
    return list(csv.reader(io.StringIO(text, newline="")))


def read_rvu_conversion_factor(name: str, content: bytes) -> Decimal:
    """The CONV FACTOR of the first data row (used for QPP files, whose rows repeat the standard file)."""
    rows = _csv_rows(name, content[:200_000])
    header_index, positions = _rvu_header(name, rows)
    for offset, row in enumerate(rows[header_index + 1 :], start=header_index + 2):
        if row and row[0].strip():
            return parse_decimal(row[positions["conversion_factor"]], file=name, line=offset, column="CONV FACTOR")
    raise ReferenceError(name, "no data rows")


def parse_pprrvu(name: str, content: bytes, effective_from: dt.date) -> RvuRelease:
    rows = _csv_rows(name, content)
    header_index, pos = _rvu_header(name, rows)
    errors = ErrorCollector()
    p_code, p_mod, p_status = pos["code"], pos["modifier"], pos["status"]
    p_cf = pos["conversion_factor"]
    decimal_positions = [(attribute, pos[attribute]) for attribute in _RVU_DECIMALS]
    needed = max(pos.values()) + 1
    result: dict[tuple[str, str], RvuRow] = {}
    cf_counts: Counter[str] = Counter()
    cf_first_line: dict[str, int] = {}
    decimal_cache: dict[str, Decimal] = {}
    for line, row in enumerate(rows[header_index + 1 :], start=header_index + 2):
        if not row or not row[0].strip():
            if any(cell.strip() for cell in row):
                errors.add(name, "HCPCS is blank in a row that has data", line, "HCPCS")
            continue
        if len(row) < needed:
            errors.add(name, f"{len(row)} fields, expected at least {needed}", line)
            continue
        code = row[p_code].strip().upper()
        modifier = row[p_mod].strip().upper()
        status = row[p_status].strip().upper()
        if not re.fullmatch(r"[0-9A-Z]{5}", code):
            errors.add(name, f"expected a 5-character HCPCS code, got {row[p_code]!r}", line, "HCPCS")
            continue
        if len(status) != 1 or not status.isalpha():
            errors.add(name, f"expected a one-letter status code, got {row[p_status]!r}", line, "STATUS CODE")
            continue
        values: dict[str, Decimal] = {}
        bad = False
        for attribute, index in decimal_positions:
            text = row[index].strip()
            number = decimal_cache.get(text)
            if number is None:
                try:
                    number = Decimal(text) if text else ZERO
                    if not number.is_finite() or number < 0:
                        raise InvalidOperation
                except InvalidOperation:
                    errors.add(name, f"expected a decimal number, got {text!r}", line, _RVU_COLUMNS[attribute])
                    bad = True
                    break
                decimal_cache[text] = number
            values[attribute] = number
        if bad:
            continue
        cf_text = row[p_cf].strip()
        if cf_text:
            cf_counts[cf_text] += 1
            cf_first_line.setdefault(cf_text, line)
        key = (code, modifier)
        if key in result:
            errors.add(
                name, f"{code} modifier {modifier or '(none)'} appears twice (first at line {result[key].line})", line
            )
            continue
        result[key] = RvuRow(
            code=code,
            modifier=modifier,
            status=status,
            nonfacility_na=row[pos["nonfacility_na"]].strip().upper() == "NA",
            facility_na=row[pos["facility_na"]].strip().upper() == "NA",
            pctc=row[pos["pctc"]].strip(),
            global_days=row[pos["global_days"]].strip(),
            mult_proc=row[pos["mult_proc"]].strip(),
            bilat_surg=row[pos["bilat_surg"]].strip(),
            asst_surg=row[pos["asst_surg"]].strip(),
            file=name,
            line=line,
            **values,
        )
    nonzero = {text: count for text, count in cf_counts.items() if _decimal_or_none(text)}
    if not nonzero:
        errors.add(name, "no conversion factor in column CONV FACTOR")
    elif len(nonzero) > 1:
        common = max(nonzero, key=nonzero.get)
        for text in nonzero:
            if text != common:
                errors.add(
                    name,
                    f"conversion factor {text} differs from {common} used by {nonzero[common]} rows",
                    cf_first_line[text],
                    "CONV FACTOR",
                )
    if not result:
        errors.add(name, "no data rows after the header")
    errors.raise_if_any()
    conversion_factor = _decimal_or_none(next(iter(nonzero)))
    return RvuRelease(file=name, effective_from=effective_from, conversion_factor=conversion_factor, rows=result)


def _decimal_or_none(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() and value > 0 else None


def parse_gpci(name: str, content: bytes, errors: ErrorCollector) -> dict[tuple[str, str], Gpci]:
    rows = _csv_rows(name, content)
    header_index = None
    for index, row in enumerate(rows[:20]):
        if any("LOCALITY NUMBER" in cell.upper() for cell in row):
            header_index = index
            break
    if header_index is None:
        errors.add(name, "no header row with a 'Locality Number' column in the first 20 rows (is this CMS Addendum E?)")
        return {}
    header = [cell.strip().upper() for cell in rows[header_index]]

    def find(*needles: str) -> int | None:
        for index, cell in enumerate(header):
            if any(needle in cell for needle in needles):
                return index
        return None

    columns = {
        "carrier": find("CONTRACTOR", "CARRIER", "MAC"),
        "state": find("STATE"),
        "locality": find("LOCALITY NUMBER"),
        "name": find("LOCALITY NAME"),
        "work": find("PW GPCI", "WORK GPCI"),
        "pe": find("PE GPCI"),
        "mp": find("MP GPCI", "MALPRACTICE GPCI"),
    }
    missing = [key for key in ("carrier", "locality", "work", "pe", "mp") if columns[key] is None]
    if missing:
        errors.add(name, f"header lacks column(s) for {', '.join(missing)}", header_index + 1)
        return {}
    result: dict[tuple[str, str], Gpci] = {}
    for line, row in enumerate(rows[header_index + 1 :], start=header_index + 2):
        first = row[0].strip() if row else ""
        if not first.isdigit():
            continue  # blank separator rows and footnotes
        cells = {
            key: (row[index].strip() if index is not None and index < len(row) else "")
            for key, index in columns.items()
        }
        if len(first) > 5:
            errors.add(name, f"expected a MAC carrier number of up to 5 digits, got {first!r}", line, header[0])
            continue
        locality = cells["locality"]
        if not locality.isdigit() or len(locality) > 2:
            errors.add(name, f"expected a locality number of 1-2 digits, got {locality!r}", line, "Locality Number")
            continue
        try:
            work = parse_decimal(cells["work"], file=name, line=line, column=header[columns["work"]])
            pe = parse_decimal(cells["pe"], file=name, line=line, column=header[columns["pe"]])
            mp = parse_decimal(cells["mp"], file=name, line=line, column=header[columns["mp"]])
        except ReferenceError as error:
            errors.add_error(error)
            continue
        if not (work and pe and mp):
            errors.add(name, "a GPCI of 0 is not valid", line)
            continue
        carrier = first.zfill(5)
        key = (carrier, locality.zfill(2))
        if key in result:
            errors.add(name, f"carrier {carrier} locality {key[1]} appears twice", line)
            continue
        result[key] = Gpci(carrier, key[1], cells["state"].upper(), cells["name"], work, pe, mp)
    if not result:
        errors.add(name, "no GPCI rows (rows starting with a carrier number)")
    return result


def parse_zip5(name: str, content: bytes, effective_from: dt.date) -> ZipRelease:
    """ZIP5 fixed width (ZIP5lyout.txt): state 1-2, ZIP 3-7, carrier 8-12, locality 13-14,
    rural indicator 15 (blank urban, R rural, B super rural), plus-four flag 21."""
    text = decode_text(name, content)
    errors = ErrorCollector()
    zips: dict[str, ZipLocality] = {}
    interned: dict[tuple, tuple] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(line) < 14:
            errors.add(
                name, f"line of {len(line)} characters; expected the ZIP5 fixed-width layout (at least 14)", line_number
            )
            continue
        state, zip_code, carrier, locality = line[0:2], line[2:7], line[7:12], line[12:14]
        if not zip_code.isdigit():
            errors.add(name, f"expected a 5-digit ZIP code in positions 3-7, got {zip_code!r}", line_number, "Zip Code")
            continue
        if not carrier.isdigit():
            errors.add(name, f"expected a 5-digit carrier in positions 8-12, got {carrier!r}", line_number, "Carrier")
            continue
        if not locality.isdigit():
            errors.add(
                name,
                f"expected a 2-digit locality in positions 13-14, got {locality!r}",
                line_number,
                "Pricing Locality",
            )
            continue
        if not state.isalpha():
            errors.add(name, f"expected a 2-letter state in positions 1-2, got {state!r}", line_number, "State")
            continue
        rural = line[14:15].strip()
        plus_four = line[20:21] == "1"
        if zip_code in zips:
            errors.add(name, f"ZIP {zip_code} appears twice", line_number, "Zip Code")
            continue
        shared = (state, carrier, locality, rural, plus_four)
        shared = interned.setdefault(shared, shared)
        zips[zip_code] = ZipLocality(zip_code, *shared)
    if not zips:
        errors.add(name, "no ZIP rows")
    errors.raise_if_any()
    return ZipRelease(file=name, effective_from=effective_from, zips=zips)


def parse_locco(name: str, content: bytes) -> dict[tuple[str, str], LocalityCounties]:
    rows = _csv_rows(name, content)
    result: dict[tuple[str, str], LocalityCounties] = {}
    state = ""
    for row in rows:
        if len(row) < 2 or not row[0].strip().isdigit():
            continue
        carrier, locality = row[0].strip().zfill(5), row[1].strip().zfill(2)
        if row[2:3] and row[2].strip():
            state = row[2].strip()
        area = row[3].strip() if len(row) > 3 else ""
        counties = row[4].strip() if len(row) > 4 else ""
        key = (carrier, locality)
        if key in result:
            previous = result[key]
            counties = f"{previous.counties}; {counties}" if counties else previous.counties
        result[key] = LocalityCounties(carrier, locality, state, area, counties)
    return result


def load_medicare_folder(root: Path | str, years: set[int] | None = None) -> MedicareReference:
    """Read only ``root/medicare`` (optionally only some years) and load it: what medicare-rate needs."""
    root = Path(root)
    files: dict[str, bytes] = {}
    medicare_dir = root / "medicare"
    if not medicare_dir.is_dir():
        raise ReferenceError(str(root), "no medicare/ folder (expected medicare/<year>/PPRRVU*.csv ...)")
    for path in sorted(medicare_dir.iterdir()):
        if path.is_file() and path.name == "conversion_factors.csv":
            files[f"medicare/{path.name}"] = path.read_bytes()
        elif path.is_dir() and (years is None or (path.name.isdigit() and int(path.name) in years)):
            for item in sorted(path.iterdir()):
                if item.is_file() and classify_medicare_file(item.name):
                    files[f"medicare/{path.name}/{item.name}"] = item.read_bytes()
    return load_medicare(files)


# ---------------------------------------------------------------------------------------------------
# Pricing


def is_facility(place_of_service: str | None) -> bool:
    """True when CMS pays the PFS facility rate at this place of service (see FACILITY_PLACES_OF_SERVICE)."""
    if not place_of_service:
        return False
    code = place_of_service.strip()
    if code.isdigit() and len(code) == 1:
        code = "0" + code
    return code in FACILITY_PLACES_OF_SERVICE


def parse_locality(text: str) -> tuple[str, str] | None:
    """``"01182-17"`` (also ``1182-17``, ``01182/17``, ``01182 17``) -> ``("01182", "17")``."""
    match = _LOCALITY_RE.match(text or "")
    if match is None:
        return None
    return match.group(1).zfill(5), match.group(2).zfill(2)


def normalize_zip(text: str | None) -> str | None:
    """First 5 digits of a ZIP, ZIP+4 (``12345-6789``) or 9-digit ZIP; None when not a ZIP."""
    if not text:
        return None
    digits = text.strip().replace("-", "").replace(" ", "")
    if not digits.isdigit() or len(digits) not in (5, 9):
        return None
    return digits[:5]


@dataclass(frozen=True, slots=True)
class MedicareAmount:
    """One Medicare PFS amount, or the reason why there is none (never 0 in place of "unknown")."""

    code: str
    modifier: str
    year: int | None
    facility: bool
    amount: Decimal | None = None
    reason: str | None = None
    """None when payable; else missing_year, unknown_code, not_payable, invalid_zip, unknown_zip,
    unknown_locality, no_location."""
    detail: str = ""
    carrier: str | None = None
    locality: str | None = None
    status: str | None = None
    pfs_amount: Decimal | None = None
    opps_cap: Decimal | None = None
    conversion_factor: Decimal | None = None
    rvu: RvuRow | None = None
    gpci: Gpci | None = None
    notes: tuple[str, ...] = ()

    @property
    def payable(self) -> bool:
        return self.amount is not None

    @property
    def locality_key(self) -> str | None:
        return f"{self.carrier}-{self.locality}" if self.carrier else None

    @property
    def setting(self) -> str:
        return "facility" if self.facility else "non-facility"

    def describe(self) -> str:
        """``Medicare 2025 PFS 99214 at 01182-17 non-facility``."""
        code = self.code + (f"-{self.modifier}" if self.modifier else "")
        where = f" at {self.locality_key}" if self.carrier else ""
        return f"Medicare {self.year or '?'} PFS {code}{where} {self.setting}"

    def formula(self) -> str:
        if self.amount is None or self.rvu is None or self.gpci is None:
            return f"{self.describe()}: no amount ({self.detail})"
        rvu, gpci = self.rvu, self.gpci
        pe = rvu.pe_facility if self.facility else rvu.pe_nonfacility
        text = (
            f"{self.describe()} = (({rvu.work} x {gpci.work}) + ({pe} x {gpci.pe}) + ({rvu.mp} x {gpci.mp}))"
            f" x {self.conversion_factor} = {self.pfs_amount}"
        )
        if self.opps_cap is not None:
            opps_pe = rvu.opps_pe_facility if self.facility else rvu.opps_pe_nonfacility
            text += (
                f"; OPPS cap (({rvu.work} x {gpci.work}) + ({opps_pe} x {gpci.pe}) + ({rvu.opps_mp} x {gpci.mp}))"
                f" x {self.conversion_factor} = {self.opps_cap}; lesser = {self.amount}"
            )
        return text


def resolve_locality(
    year_ref: MedicareYear,
    *,
    zip_code: str | None = None,
    locality: str | None = None,
    date: dt.date | None = None,
) -> tuple[Gpci | None, str | None, str, tuple[str, ...]]:
    """(gpci, reason, detail, notes): the locality from a carrier-locality string or from a ZIP."""
    notes: tuple[str, ...] = ()
    if locality:
        parsed = parse_locality(locality)
        if parsed is None:
            return None, "unknown_locality", f"expected CARRIER-LOCALITY like 01182-17, got {locality!r}", notes
        gpci = year_ref.gpcis.get(parsed)
        if gpci is None:
            return (
                None,
                "unknown_locality",
                f"carrier {parsed[0]} locality {parsed[1]} is not in GPCI {year_ref.year}",
                notes,
            )
        return gpci, None, "", notes
    if zip_code:
        zip5 = normalize_zip(zip_code)
        if zip5 is None:
            return None, "invalid_zip", f"expected a 5- or 9-digit ZIP, got {zip_code!r}", notes
        release = year_ref.zip_release(date)
        entry = release.zips.get(zip5) if release else None
        if entry is None:
            return None, "unknown_zip", f"ZIP {zip5} is not in the {year_ref.year} ZIP5 file", notes
        if entry.plus_four:
            notes = (
                f"ZIP {zip5} is split across localities by ZIP+4 (CMS ZIP9 file); the ZIP5 default {entry.key} is used",
            )
        gpci = year_ref.gpcis.get((entry.carrier, entry.locality))
        if gpci is None:
            return None, "unknown_locality", f"ZIP {zip5} maps to {entry.key}, absent from GPCI {year_ref.year}", notes
        return gpci, None, "", notes
    return None, "no_location", "no place-of-service ZIP or locality", notes


def medicare_amount(
    reference: MedicareReference,
    code: str,
    modifier: str | None = None,
    *,
    date: dt.date,
    facility: bool,
    zip_code: str | None = None,
    locality: str | None = None,
    apm: bool = False,
) -> MedicareAmount:
    """Medicare PFS amount for one unit of ``code`` (+ ``modifier`` 26/TC/53 or none) at a ZIP or a
    carrier-locality on a date of service, with the OPPS cap applied. Never raises for a missing
    reference: the result then has ``amount=None`` and a ``reason``."""
    code = (code or "").strip().upper()
    modifier = (modifier or "").strip().upper()
    year_ref = reference.years.get(date.year)
    base = {"code": code, "modifier": modifier, "facility": facility}
    if year_ref is None:
        loaded = ", ".join(str(year) for year in sorted(reference.years)) or "none"
        return MedicareAmount(
            year=date.year,
            reason="missing_year",
            detail=f"no Medicare {date.year} files loaded (loaded: {loaded})",
            **base,
        )
    release = year_ref.rvu_release(date)
    rvu = release.rows.get((code, modifier))
    if rvu is None:
        detail = f"{code}{'-' + modifier if modifier else ''} is not in {PurePosixPath(release.file).name}"
        return MedicareAmount(year=date.year, reason="unknown_code", detail=detail, **base)
    gpci, reason, detail, notes = resolve_locality(year_ref, zip_code=zip_code, locality=locality, date=date)
    status_label = STATUS_LABELS.get(rvu.status, "unknown status")
    common = dict(base, year=date.year, status=rvu.status, rvu=rvu)
    if rvu.status not in PAYABLE_STATUSES or not rvu.has_rvus:
        why = f"status {rvu.status} ({status_label})"
        if rvu.status == "R":
            why += " and no RVUs: carrier priced"
        return MedicareAmount(reason="not_payable", detail=f"no national Medicare amount: {why}", **common)
    if gpci is None:
        return MedicareAmount(reason=reason, detail=detail, notes=notes, **common)
    cf = year_ref.conversion_factor(date, apm=apm)
    pe = rvu.pe_facility if facility else rvu.pe_nonfacility
    pfs = cents((rvu.work * gpci.work + pe * gpci.pe + rvu.mp * gpci.mp) * cf)
    cap = None
    amount = pfs
    if rvu.opps_capped:
        opps_pe = rvu.opps_pe_facility if facility else rvu.opps_pe_nonfacility
        cap = cents((rvu.work * gpci.work + opps_pe * gpci.pe + rvu.opps_mp * gpci.mp) * cf)
        amount = min(pfs, cap)
    if rvu.status != "A":
        notes += (f"status {rvu.status}: {status_label}",)
    if (facility and rvu.facility_na) or (not facility and rvu.nonfacility_na):
        notes += (
            f"CMS marks {code} NA in the {'facility' if facility else 'non-facility'} setting"
            " (rarely or never performed there)",
        )
    if apm and year_ref.qualifying_apm_conversion_factor is not None:
        notes += ("qualifying APM participant conversion factor",)
    if amount <= 0:
        return MedicareAmount(
            reason="not_payable", detail="the RVUs give no amount in this setting", notes=notes, **common
        )
    return MedicareAmount(
        amount=amount,
        carrier=gpci.carrier,
        locality=gpci.locality,
        pfs_amount=pfs,
        opps_cap=cap,
        conversion_factor=cf,
        gpci=gpci,
        notes=notes,
        **common,
    )
