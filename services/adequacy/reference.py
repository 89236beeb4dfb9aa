"""Network reference data: roster, payer directory, adequacy standards, county types, wait standards.

Everything is read from a ReferenceFiles mapping (relative posix path -> bytes), so the same loader serves
the offline CLI (a folder on disk) and the live worker (the compacted reference.network topic). Files sit
under ``network/`` in the reference folder; each is optional (a rule that needs a missing file simply
finds nothing). Formats are documented in docs/reference-network.md. Every defect raises ReferenceError
naming the file, the line, the column and what was expected.

Shipped defaults (services/adequacy/data): the 42 CFR 422.116 time/distance table and the ACA/CA DMHC
wait standards. Rows of the reference folder's files replace default rows with the same key.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import NamedTuple

from services.adequacy.geography import (
    STATE_BY_FIPS,
    Geography,
    OverlayGeography,
    ZipLocation,
    default_geography,
    normalize_zip,
)
from services.reference.files import ReferenceError, ReferenceFiles, decode_text

NETWORK_DIR = "network"
ROSTER_FILE = "network/roster.csv"
DIRECTORY_FILE = "network/directory.csv"
STANDARDS_FILE = "network/adequacy_standards.csv"
COUNTY_TYPES_FILE = "network/county_types.csv"
WAIT_STANDARDS_FILE = "network/wait_standards.csv"
ZIP_LOCATIONS_FILE = "network/zip_locations.csv"
PAYERS_FILE = "payers.csv"
"""The pricing reference's payer list (payer_id, payer_name, payer_group, state); validated by the pricing
check. Read here only for the short payer label of opportunities."""
DEFAULT_PAYER_GROUP = "other"
NETWORK_FILES = (
    ROSTER_FILE,
    DIRECTORY_FILE,
    STANDARDS_FILE,
    COUNTY_TYPES_FILE,
    WAIT_STANDARDS_FILE,
    ZIP_LOCATIONS_FILE,
)

DEFAULT_STANDARDS_RESOURCE = "adequacy_standards_422_116.csv"
DEFAULT_WAITS_RESOURCE = "wait_standards_defaults.csv"
DEFAULT_STANDARDS_SOURCE = "services/adequacy/data/adequacy_standards_422_116.csv (42 CFR 422.116 defaults)"
DEFAULT_WAITS_SOURCE = "services/adequacy/data/wait_standards_defaults.csv"

COUNTY_TYPES = ("large_metro", "metro", "micro", "rural", "ceac")
ZIP5_RURAL_TO_COUNTY_TYPE = {" ": "metro", "": "metro", "R": "rural", "B": "ceac"}
"""Coarse default: CMS ZIP5 rural indicator (blank urban, R rural, B super rural) -> 422.116 county type.
Each maps to the most lenient plausible type (urban -> metro, not large_metro; super rural -> CEAC), so the
default understates gaps rather than inventing them."""

US_STATES = frozenset(STATE_BY_FIPS.values())

SPECIALTY_ALIASES = {
    "pcp": "primary_care",
    "family_medicine": "primary_care",
    "internal_medicine": "primary_care",
    "general_practice": "primary_care",
    "cardiovascular_disease": "cardiology",
    "orthopedics": "orthopedic_surgery",
    "orthopaedic_surgery": "orthopedic_surgery",
    "medical_oncology": "oncology",
    "surgical_oncology": "oncology",
    "oncology_medical_surgical": "oncology",
    "hematology_oncology": "oncology",
    "allergy": "allergy_immunology",
    "immunology": "allergy_immunology",
    "allergy_and_immunology": "allergy_immunology",
    "otolaryngology": "ent",
    "ent_otolaryngology": "ent",
    "ob_gyn": "obgyn",
    "obstetrics_gynecology": "obgyn",
    "obstetrics_and_gynecology": "obgyn",
    "physical_medicine_and_rehabilitation": "physiatry",
    "physical_medicine_rehabilitation": "physiatry",
    "pm_r": "physiatry",
    "pmr": "physiatry",
    "infectious_disease": "infectious_diseases",
    "pulmonary": "pulmonology",
    "pulmonary_disease": "pulmonology",
    "cardiac_surgery": "cardiothoracic_surgery",
    "thoracic_surgery": "cardiothoracic_surgery",
}

PRODUCT_ALIASES = {
    "MEDICARE_ADVANTAGE": "MA",
    "MAPD": "MA",
    "MEDICARE_HMO": "MA",
    "HMO_MEDICARE_RISK": "MA",
    "EXCLUSIVE_PROVIDER_ORGANIZATION": "EPO",
    "PREFERRED_PROVIDER_ORGANIZATION": "PPO",
    "HEALTH_MAINTENANCE_ORGANIZATION": "HMO",
    "POINT_OF_SERVICE": "POS",
}


def normalize_specialty(value: str | None) -> str | None:
    """``Cardiology``, ``OB/GYN``, ``Allergy & Immunology`` -> cardiology, obgyn, allergy_immunology."""
    if value is None:
        return None
    text = value.strip().lower().replace("&", " and ")
    token = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    if not token:
        return None
    if token in ("ob_gyn", "obgyn"):
        return "obgyn"
    return SPECIALTY_ALIASES.get(token, token)


def normalize_product(value: str | None) -> str | None:
    """``hmo`` -> HMO, ``Medicare Advantage`` -> MA; None for blank."""
    if value is None:
        return None
    token = re.sub(r"[^A-Z0-9]+", "_", value.strip().upper()).strip("_")
    if not token:
        return None
    return PRODUCT_ALIASES.get(token, token)


def normalize_county_type(value: str) -> str | None:
    token = re.sub(r"[^a-z]+", "_", value.strip().lower()).strip("_")
    token = {"largemetro": "large_metro", "micropolitan": "micro", "metropolitan": "metro"}.get(token, token)
    return token if token in COUNTY_TYPES else None


# ----------------------------------------------------------------------------------------------- CSV


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, str]

    def get(self, column: str) -> str:
        return (self.values.get(column) or "").strip()


def _rows(name: str, content: bytes, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> Iterator[_Row]:
    """CSV rows of a reference file; '#' comment lines and blank lines are skipped."""
    text = decode_text(name, content)
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    known = set(required) | set(optional) | {"notes"}
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise ReferenceError(name, f"unreadable CSV: {error}", line=reader.line_num) from None
        if not cells or all(not cell.strip() for cell in cells) or cells[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in cells]
            for column in header:
                if column not in known:
                    raise ReferenceError(
                        name,
                        f"unknown column; expected columns {', '.join(required + optional)}",
                        line=reader.line_num,
                        column=column,
                    )
            if len(set(header)) != len(header):
                raise ReferenceError(name, "duplicate column in the header", line=reader.line_num)
            for column in required:
                if column not in header:
                    raise ReferenceError(
                        name, "missing required column in the header", line=reader.line_num, column=column
                    )
            continue
        if len(cells) > len(header):
            raise ReferenceError(name, f"{len(cells)} fields, the header has {len(header)}", line=reader.line_num)
        yield _Row(reader.line_num, dict(zip(header, cells, strict=False)))
    if header is None:
        raise ReferenceError(name, f"empty file: expected a header with columns {', '.join(required)}")


def _required(name: str, row: _Row, column: str, expectation: str) -> str:
    value = row.get(column)
    if not value:
        raise ReferenceError(name, f"empty value; expected {expectation}", line=row.line, column=column)
    return value


def _zip(name: str, row: _Row, column: str, *, required: bool = True) -> str | None:
    value = row.get(column)
    if not value and not required:
        return None
    zip5 = normalize_zip(value)
    if zip5 is None:
        raise ReferenceError(name, f"{value!r} is not a 5-digit ZIP (or ZIP+4)", line=row.line, column=column)
    return zip5


def _county_fips(name: str, row: _Row, column: str, *, required: bool = True) -> str | None:
    value = row.get(column)
    if not value and not required:
        return None
    if not (len(value) == 5 and value.isdigit() and value[:2] in STATE_BY_FIPS):
        raise ReferenceError(
            name,
            f"{value!r} is not a 5-digit county FIPS code (2-digit state + 3-digit county)",
            line=row.line,
            column=column,
        )
    return value


def _state(name: str, row: _Row, column: str, *, required: bool = True) -> str | None:
    value = row.get(column).upper()
    if not value and not required:
        return None
    if value not in US_STATES:
        raise ReferenceError(
            name, f"{value!r} is not a two-letter US state or territory code", line=row.line, column=column
        )
    return value


def _int(name: str, row: _Row, column: str, *, required: bool, minimum: int = 0) -> int | None:
    value = row.get(column)
    if not value:
        if required:
            raise ReferenceError(
                name, f"empty value; expected a whole number >= {minimum}", line=row.line, column=column
            )
        return None
    if not value.isdigit() or int(value) < minimum:
        raise ReferenceError(name, f"{value!r} is not a whole number >= {minimum}", line=row.line, column=column)
    return int(value)


def _positive_decimal(name: str, row: _Row, column: str) -> Decimal | None:
    value = row.get(column)
    if not value:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = Decimal(-1)
    if not number.is_finite() or number <= 0:
        raise ReferenceError(name, f"{value!r} is not a positive number", line=row.line, column=column)
    return number


def _specialty(name: str, row: _Row, column: str) -> str:
    value = _required(name, row, column, "a specialty group (e.g. cardiology)")
    specialty = normalize_specialty(value)
    if specialty is None:
        raise ReferenceError(name, f"{value!r} is not a specialty group name", line=row.line, column=column)
    return specialty


# -------------------------------------------------------------------------------------------- roster


NPI_PATTERN = re.compile(r"^\d{10}$")
TAXONOMY_PATTERN = re.compile(r"^\d{3}[0-9A-Z]{6}X$")


def npi_check_digit_ok(npi: str) -> bool:
    """Luhn check of an NPI with the 80840 health-industry prefix."""
    if not NPI_PATTERN.match(npi):
        return False
    digits = [int(char) for char in "80840" + npi]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


@dataclass(frozen=True)
class RosterEntry:
    npi: str
    taxonomy_code: str
    specialty_group: str
    practice_zip: str
    state: str
    tin: str
    line: int


def parse_roster(name: str, content: bytes) -> dict[str, RosterEntry]:
    entries: dict[str, RosterEntry] = {}
    columns = ("npi", "taxonomy_code", "specialty_group", "practice_zip", "state", "tin")
    for row in _rows(name, content, columns):
        npi = _required(name, row, "npi", "a 10-digit NPI")
        if not npi_check_digit_ok(npi):
            raise ReferenceError(
                name, f"{npi!r} is not a valid NPI (10 digits, Luhn check digit)", line=row.line, column="npi"
            )
        if npi in entries:
            raise ReferenceError(
                name,
                f"duplicate NPI (first on line {entries[npi].line}); one row per provider",
                line=row.line,
                column="npi",
            )
        taxonomy = _required(name, row, "taxonomy_code", "a NUCC taxonomy code such as 207RC0000X").upper()
        if not TAXONOMY_PATTERN.match(taxonomy):
            raise ReferenceError(
                name,
                f"{taxonomy!r} is not a NUCC taxonomy code (10 characters ending in X)",
                line=row.line,
                column="taxonomy_code",
            )
        tin = _required(name, row, "tin", "a 9-digit tax id").replace("-", "")
        if not (len(tin) == 9 and tin.isdigit()):
            raise ReferenceError(name, f"{row.get('tin')!r} is not a 9-digit tax id", line=row.line, column="tin")
        entries[npi] = RosterEntry(
            npi=npi,
            taxonomy_code=taxonomy,
            specialty_group=_specialty(name, row, "specialty_group"),
            practice_zip=_zip(name, row, "practice_zip") or "",
            state=_state(name, row, "state") or "",
            tin=tin,
            line=row.line,
        )
    return entries


# ----------------------------------------------------------------------------------------- directory


@dataclass(frozen=True)
class DirectoryLocation:
    payer_id: str
    product_type: str | None
    specialty_group: str
    provider_zip: str
    line: int


@dataclass(frozen=True)
class DirectoryCount:
    payer_id: str
    product_type: str | None
    specialty_group: str
    county_fips: str
    provider_count: int
    line: int


def _product_matches(row_product: str | None, product: str | None) -> bool:
    return row_product is None or product is None or row_product == product


NEAREST_MEMO_LIMIT = 100_000
"""Origins remembered by Directory.nearest_location before the memo starts over (bounds its memory)."""


class NearestLocation(NamedTuple):
    locations: int
    """In-network locations of the payer, specialty and product."""
    unlocated: int
    """Of those, the ones whose ZIP the geography does not know."""
    nearest: tuple[float, str] | None
    """Miles and ZIP of the nearest located one; None when none is located."""


@dataclass
class Directory:
    """The payers' in-network providers: locations (one row per provider location) and/or county counts."""

    locations: list[DirectoryLocation] = field(default_factory=list)
    counts: list[DirectoryCount] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._payers = {row.payer_id for row in self.locations} | {row.payer_id for row in self.counts}
        self._locations: dict[tuple[str, str], list[DirectoryLocation]] = defaultdict(list)
        for location in self.locations:
            self._locations[(location.payer_id, location.specialty_group)].append(location)
        self._counts: dict[tuple[str, str, str], list[DirectoryCount]] = defaultdict(list)
        for count in self.counts:
            self._counts[(count.payer_id, count.specialty_group, count.county_fips)].append(count)
        self._count_keys = {(row.payer_id, row.specialty_group) for row in self.counts}
        self._products: dict[str, set[str | None]] = defaultdict(set)
        for row in [*self.locations, *self.counts]:
            self._products[row.payer_id].add(row.product_type)
        self._nearest: dict[tuple[str, str, str | None, str], NearestLocation] = {}

    @property
    def payers(self) -> frozenset[str]:
        return frozenset(self._payers)

    def covers(self, payer_id: str, product: str | None = None) -> bool:
        """The directory lists this payer (and product, when given) for some specialty: absence of a
        specialty then means a gap. A payer listed only for other products is not covered for this one."""
        if payer_id not in self._payers:
            return False
        if product is None:
            return True
        return product in self._products[payer_id] or None in self._products[payer_id]

    def has_counts(self, payer_id: str, specialty: str) -> bool:
        return (payer_id, specialty) in self._count_keys

    def locations_for(self, payer_id: str, specialty: str, product: str | None) -> list[DirectoryLocation]:
        return [
            location
            for location in self._locations.get((payer_id, specialty), ())
            if _product_matches(location.product_type, product)
        ]

    def nearest_location(
        self, payer_id: str, specialty: str, product: str | None, origin: ZipLocation, geography: Geography
    ) -> NearestLocation:
        """The in-network location of the specialty nearest to ``origin`` (straight line). Remembered per
        payer, specialty, product and origin ZIP: a loaded directory does not change, and the live worker
        would otherwise measure the distance to every location of the payer for every claim."""
        key = (payer_id, specialty, product, origin.zip)
        found = self._nearest.get(key)
        if found is None:
            locations = self.locations_for(payer_id, specialty, product)
            nearest: tuple[float, str] | None = None
            unlocated = 0
            for location in locations:
                provider = geography.locate(location.provider_zip)
                if provider is None:
                    unlocated += 1
                    continue
                miles = origin.miles_to(provider)
                if nearest is None or miles < nearest[0]:
                    nearest = (miles, location.provider_zip)
            found = NearestLocation(len(locations), unlocated, nearest)
            if len(self._nearest) >= NEAREST_MEMO_LIMIT:
                self._nearest.clear()
            self._nearest[key] = found
        return found

    def county_count(
        self, payer_id: str, specialty: str, product: str | None, county_fips: str, geography: Geography
    ) -> tuple[int, str]:
        """In-network providers of the specialty in the county, and how it was counted.

        County counts win over locations for the same payer + specialty. Rows of other products are not
        summed (a provider is usually in several products): the count is the largest over the matching
        products, a blank product counting for every product.
        """
        count_rows = self._counts.get((payer_id, specialty, county_fips), [])
        if self.has_counts(payer_id, specialty):
            matching = [row for row in count_rows if _product_matches(row.product_type, product)]
            return _max_over_products(
                [(row.product_type, row.provider_count) for row in matching]
            ), "directory county counts"
        in_county = [
            (location.product_type, 1)
            for location in self.locations_for(payer_id, specialty, product)
            if (found := geography.locate(location.provider_zip)) is not None and found.county_fips == county_fips
        ]
        return _max_over_products(in_county), "directory provider locations in the county"


def _max_over_products(items: list[tuple[str | None, int]]) -> int:
    general = sum(count for product, count in items if product is None)
    per_product: dict[str, int] = defaultdict(int)
    for product, count in items:
        if product is not None:
            per_product[product] += count
    if not per_product:
        return general
    return max(count + general for count in per_product.values())


def parse_directory(name: str, content: bytes) -> Directory:
    locations: list[DirectoryLocation] = []
    counts: list[DirectoryCount] = []
    seen_counts: dict[tuple[str, str | None, str, str], int] = {}
    columns_required = ("payer_id", "specialty_group")
    columns_optional = ("product_type", "provider_zip", "county_fips", "provider_count")
    for row in _rows(name, content, columns_required, columns_optional):
        payer_id = _required(name, row, "payer_id", "the payer id as on the 835 (N1*PR04)")
        product = normalize_product(row.get("product_type"))
        specialty = _specialty(name, row, "specialty_group")
        has_zip = bool(row.get("provider_zip"))
        has_count = bool(row.get("county_fips") or row.get("provider_count"))
        if has_zip == has_count:
            raise ReferenceError(
                name,
                "expected either provider_zip (one in-network provider location) or county_fips + provider_count, not "
                + ("both" if has_zip else "neither"),
                line=row.line,
                column="provider_zip",
            )
        if has_zip:
            locations.append(
                DirectoryLocation(payer_id, product, specialty, _zip(name, row, "provider_zip") or "", row.line)
            )
            continue
        county = _county_fips(name, row, "county_fips") or ""
        provider_count = _int(name, row, "provider_count", required=True) or 0
        key = (payer_id, product, specialty, county)
        if key in seen_counts:
            raise ReferenceError(
                name,
                f"duplicate count for payer + product + specialty + county (first on line {seen_counts[key]})",
                line=row.line,
                column="county_fips",
            )
        seen_counts[key] = row.line
        counts.append(DirectoryCount(payer_id, product, specialty, county, provider_count, row.line))
    return Directory(locations=locations, counts=counts)


# ----------------------------------------------------------------------------------------- standards


@dataclass(frozen=True)
class Standard:
    specialty_group: str
    county_type: str | None
    max_minutes: int | None
    max_miles: Decimal | None
    min_providers: int | None
    county_fips: str | None
    source: str
    """'file:line' of the row that set it."""


@dataclass(frozen=True)
class ResolvedStandard:
    """The standard that applies to one specialty in one county (type row + county row, merged)."""

    specialty_group: str
    county_type: str
    max_minutes: int | None
    max_miles: Decimal | None
    min_providers: int | None
    sources: tuple[str, ...]
    is_default: bool
    """Every value came from the shipped 42 CFR 422.116 defaults."""


class StandardsTable:
    def __init__(self, rows: list[Standard]):
        self.rows = rows
        self._by_type: dict[tuple[str, str], Standard] = {}
        self._by_county: dict[tuple[str, str], Standard] = {}
        for row in rows:
            if row.county_fips:
                self._by_county[(row.specialty_group, row.county_fips)] = row
            elif row.county_type:
                self._by_type[(row.specialty_group, row.county_type)] = row

    @property
    def specialties(self) -> frozenset[str]:
        return frozenset(row.specialty_group for row in self.rows)

    def lookup(self, specialty: str, county_type: str, county_fips: str | None = None) -> ResolvedStandard | None:
        type_row = self._by_type.get((specialty, county_type))
        county_row = self._by_county.get((specialty, county_fips)) if county_fips else None
        if type_row is None and county_row is None:
            return None
        first, second = county_row, type_row

        def pick(attribute: str) -> tuple[object, str | None]:
            for row in (first, second):
                if row is not None and getattr(row, attribute) is not None:
                    return getattr(row, attribute), row.source
            return None, None

        max_minutes, minutes_source = pick("max_minutes")
        max_miles, miles_source = pick("max_miles")
        min_providers, min_source = pick("min_providers")
        sources = tuple(dict.fromkeys(s for s in (miles_source, minutes_source, min_source) if s))
        return ResolvedStandard(
            specialty_group=specialty,
            county_type=county_type,
            max_minutes=max_minutes,  # type: ignore[arg-type]
            max_miles=max_miles,  # type: ignore[arg-type]
            min_providers=min_providers,  # type: ignore[arg-type]
            sources=sources,
            is_default=all(source.startswith("services/adequacy/data/") for source in sources),
        )


def parse_standards(name: str, content: bytes, *, source_name: str | None = None) -> list[Standard]:
    rows: list[Standard] = []
    seen: dict[tuple[str, str | None, str | None], int] = {}
    columns_required = ("specialty_group",)
    columns_optional = ("county_type", "county_fips", "max_minutes", "max_miles", "min_providers")
    for row in _rows(name, content, columns_required, columns_optional):
        specialty = _specialty(name, row, "specialty_group")
        county_fips = _county_fips(name, row, "county_fips", required=False)
        county_type_text = row.get("county_type")
        county_type = normalize_county_type(county_type_text) if county_type_text else None
        if county_type_text and county_type is None:
            raise ReferenceError(
                name,
                f"{county_type_text!r} is not a county type; expected one of {', '.join(COUNTY_TYPES)}",
                line=row.line,
                column="county_type",
            )
        if county_type is None and county_fips is None:
            raise ReferenceError(
                name,
                f"empty value; expected a county type ({', '.join(COUNTY_TYPES)}) or a county_fips",
                line=row.line,
                column="county_type",
            )
        max_minutes = _int(name, row, "max_minutes", required=False, minimum=1)
        max_miles = _positive_decimal(name, row, "max_miles")
        min_providers = _int(name, row, "min_providers", required=False, minimum=1)
        if max_miles is None and max_minutes is None and min_providers is None:
            raise ReferenceError(
                name,
                "expected at least one of max_miles, max_minutes, min_providers",
                line=row.line,
                column="max_miles",
            )
        key = (specialty, None if county_fips else county_type, county_fips)
        if key in seen:
            raise ReferenceError(
                name,
                f"duplicate standard for this specialty and county type/county (first on line {seen[key]})",
                line=row.line,
            )
        seen[key] = row.line
        rows.append(
            Standard(
                specialty_group=specialty,
                county_type=county_type,
                max_minutes=max_minutes,
                max_miles=max_miles,
                min_providers=min_providers,
                county_fips=county_fips,
                source=f"{source_name or name}:{row.line}",
            )
        )
    return rows


def default_standards() -> list[Standard]:
    content = resources.files("services.adequacy.data").joinpath(DEFAULT_STANDARDS_RESOURCE).read_bytes()
    return parse_standards(
        DEFAULT_STANDARDS_RESOURCE, content, source_name="services/adequacy/data/" + DEFAULT_STANDARDS_RESOURCE
    )


def merge_standards(defaults: list[Standard], overrides: list[Standard]) -> list[Standard]:
    def key(row: Standard) -> tuple[str, str | None, str | None]:
        return (row.specialty_group, None if row.county_fips else row.county_type, row.county_fips)

    merged = {key(row): row for row in defaults}
    for row in overrides:
        merged[key(row)] = row
    return list(merged.values())


# -------------------------------------------------------------------------------------- county types


@dataclass(frozen=True)
class CountyTypeResolution:
    county_type: str
    source: str
    coarse: bool
    """Derived from the ZIP5 rural indicator (or assumed): not the CMS county designation."""


@dataclass
class CountyTypes:
    by_zip: dict[str, tuple[str, str]] = field(default_factory=dict)
    by_county: dict[str, tuple[str, str]] = field(default_factory=dict)
    zip5_rural: dict[str, str] = field(default_factory=dict)
    zip5_file: str | None = None

    def resolve(self, zip5: str | None, county_fips: str | None) -> CountyTypeResolution | None:
        if zip5 and zip5 in self.by_zip:
            county_type, source = self.by_zip[zip5]
            return CountyTypeResolution(county_type, source, coarse=False)
        if county_fips and county_fips in self.by_county:
            county_type, source = self.by_county[county_fips]
            return CountyTypeResolution(county_type, source, coarse=False)
        if zip5 and zip5 in self.zip5_rural:
            indicator = self.zip5_rural[zip5]
            label = {"": "blank (urban)", "R": "R (rural)", "B": "B (super rural)"}[indicator]
            return CountyTypeResolution(
                ZIP5_RURAL_TO_COUNTY_TYPE[indicator],
                f"CMS ZIP5 rural indicator {label} in {self.zip5_file} (coarse default)",
                coarse=True,
            )
        return None


def parse_county_types(name: str, content: bytes) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
    by_zip: dict[str, tuple[str, str]] = {}
    by_county: dict[str, tuple[str, str]] = {}
    for row in _rows(name, content, ("county_type",), ("zip", "county_fips")):
        text = _required(name, row, "county_type", ", ".join(COUNTY_TYPES))
        county_type = normalize_county_type(text)
        if county_type is None:
            raise ReferenceError(
                name,
                f"{text!r} is not a county type; expected one of {', '.join(COUNTY_TYPES)}",
                line=row.line,
                column="county_type",
            )
        has_zip, has_county = bool(row.get("zip")), bool(row.get("county_fips"))
        if has_zip == has_county:
            raise ReferenceError(
                name,
                "expected either zip or county_fips on each row, not " + ("both" if has_zip else "neither"),
                line=row.line,
                column="zip",
            )
        source = f"{name}:{row.line}"
        if has_zip:
            zip5 = _zip(name, row, "zip") or ""
            if zip5 in by_zip:
                raise ReferenceError(name, "duplicate zip", line=row.line, column="zip")
            by_zip[zip5] = (county_type, source)
        else:
            county = _county_fips(name, row, "county_fips") or ""
            if county in by_county:
                raise ReferenceError(name, "duplicate county_fips", line=row.line, column="county_fips")
            by_county[county] = (county_type, source)
    return by_zip, by_county


ZIP5_NAME = re.compile(r"^zip5.*\.txt$", re.IGNORECASE)


def find_zip5_file(files: ReferenceFiles) -> str | None:
    """The CMS ZIP5 file of the latest ``medicare/<year>/`` folder (ZIP5*.txt, not the layout file); of several
    in that folder, the one with the latest Year/Quarter field."""
    candidates: list[tuple[int, str]] = []
    for path in files:
        parts = path.split("/")
        if len(parts) != 3 or parts[0] != "medicare" or not parts[1].isdigit():
            continue
        file_name = parts[2]
        if ZIP5_NAME.match(file_name) and "lyout" not in file_name.lower() and "layout" not in file_name.lower():
            candidates.append((int(parts[1]), path))
    if not candidates:
        return None
    latest_year = max(year for year, _ in candidates)
    return max((_zip5_quarter(files[path]), path) for year, path in candidates if year == latest_year)[1]


def _zip5_quarter(content: bytes) -> str:
    """The Year/Quarter (positions 76-80, YYYYQ) of the first record, '' when absent."""
    first = content[:200].split(b"\n", 1)[0]
    field = first[75:80].decode("ascii", "replace")
    return field if field.isdigit() else ""


def parse_zip5_rural(name: str, content: bytes) -> dict[str, str]:
    """ZIP -> rural indicator ('' urban, 'R' rural, 'B' super rural) from the fixed-width CMS ZIP5 file."""
    rural: dict[str, str] = {}
    for number, line in enumerate(decode_text(name, content).splitlines(), start=1):
        if not line.strip():
            continue
        if len(line) < 15:
            raise ReferenceError(
                name, "record shorter than 15 characters (ZIP5 layout: rural indicator at 15)", line=number
            )
        zip5 = line[2:7]
        if not zip5.isdigit():
            raise ReferenceError(name, f"{zip5!r} is not a 5-digit ZIP (positions 3-7)", line=number, column="Zip Code")
        indicator = line[14].strip()
        if indicator not in ("", "R", "B"):
            raise ReferenceError(
                name, f"{indicator!r} is not a rural indicator (blank, R or B)", line=number, column="Rural Indicator"
            )
        rural[zip5] = indicator
    return rural


# ------------------------------------------------------------------------------------ wait standards


@dataclass(frozen=True)
class WaitStandard:
    market: str
    category: str
    max_business_days: int
    source: str

    def as_evidence(self) -> dict[str, object]:
        return {
            "market": self.market,
            "category": self.category,
            "max_business_days": self.max_business_days,
            "source": self.source,
        }


WAIT_CATEGORIES_BY_SPECIALTY = {
    "primary_care": ("routine_primary_care", "non_urgent_primary_care"),
    "psychiatry": ("behavioral_health", "non_urgent_specialist"),
}
WAIT_CATEGORIES_SPECIALTY = ("non_urgent_specialty", "non_urgent_specialist")
FEDERAL_MARKETS = ("aca_marketplace",)


@dataclass
class WaitStandards:
    rows: dict[tuple[str, str], WaitStandard] = field(default_factory=dict)

    def applicable(self, state: str | None, specialty: str) -> list[WaitStandard]:
        """The state's standards for the specialty's categories, then the federal marketplace ones."""
        categories = WAIT_CATEGORIES_BY_SPECIALTY.get(specialty, WAIT_CATEGORIES_SPECIALTY)
        markets = ((state,) if state else ()) + FEDERAL_MARKETS
        return [
            self.rows[(market, category)]
            for market in markets
            for category in categories
            if (market, category) in self.rows
        ]


def parse_wait_standards(
    name: str, content: bytes, *, source_name: str | None = None
) -> dict[tuple[str, str], WaitStandard]:
    rows: dict[tuple[str, str], WaitStandard] = {}
    for row in _rows(name, content, ("market", "category", "max_business_days"), ("source",)):
        market_text = _required(name, row, "market", "a two-letter state or aca_marketplace")
        market = market_text.upper() if len(market_text) == 2 else market_text.lower()
        if len(market) == 2 and market not in US_STATES:
            raise ReferenceError(name, f"{market_text!r} is not a state code", line=row.line, column="market")
        category = re.sub(r"[^a-z0-9]+", "_", _required(name, row, "category", "a wait category").lower()).strip("_")
        days = _int(name, row, "max_business_days", required=True, minimum=1) or 0
        if (market, category) in rows:
            raise ReferenceError(name, "duplicate market + category", line=row.line, column="category")
        rows[(market, category)] = WaitStandard(
            market, category, days, row.get("source") or f"{source_name or name}:{row.line}"
        )
    return rows


def default_wait_standards() -> dict[tuple[str, str], WaitStandard]:
    content = resources.files("services.adequacy.data").joinpath(DEFAULT_WAITS_RESOURCE).read_bytes()
    return parse_wait_standards(DEFAULT_WAITS_RESOURCE, content, source_name=DEFAULT_WAITS_SOURCE)


# ------------------------------------------------------------------------------------ zip locations


def parse_zip_locations(name: str, content: bytes) -> dict[str, ZipLocation]:
    locations: dict[str, ZipLocation] = {}
    for row in _rows(name, content, ("zip", "latitude", "longitude"), ("state", "county_fips")):
        zip5 = _zip(name, row, "zip") or ""
        if zip5 in locations:
            raise ReferenceError(name, "duplicate zip", line=row.line, column="zip")
        coordinates: list[float] = []
        for column, limit in (("latitude", 90.0), ("longitude", 180.0)):
            text = _required(name, row, column, f"decimal degrees between -{limit:g} and {limit:g}")
            try:
                value = float(text)  # float ok: coordinates
            except ValueError:
                value = float("nan")  # float ok
            if not (-limit <= value <= limit):
                raise ReferenceError(
                    name,
                    f"{text!r} is not decimal degrees between -{limit:g} and {limit:g}",
                    line=row.line,
                    column=column,
                )
            coordinates.append(value)
        county = _county_fips(name, row, "county_fips", required=False)
        locations[zip5] = ZipLocation(
            zip=zip5,
            latitude=coordinates[0],
            longitude=coordinates[1],
            state=_state(name, row, "state", required=False) or (STATE_BY_FIPS.get(county[:2]) if county else None),
            county_fips=county,
            county_source="reference" if county else None,
        )
    return locations


# --------------------------------------------------------------------------------------- the bundle


@dataclass
class NetworkReference:
    roster: dict[str, RosterEntry] = field(default_factory=dict)
    directory: Directory = field(default_factory=Directory)
    standards: StandardsTable = field(default_factory=lambda: StandardsTable(default_standards()))
    county_types: CountyTypes = field(default_factory=CountyTypes)
    waits: WaitStandards = field(default_factory=lambda: WaitStandards(default_wait_standards()))
    geography: Geography = field(default_factory=default_geography)
    files: tuple[str, ...] = ()
    """The reference files that were read (network/*, the ZIP5 file)."""
    standards_overrides: int = 0
    wait_overrides: int = 0
    payer_groups: dict[str, str] = field(default_factory=dict)

    def payer_group(self, payer_id: str | None) -> str:
        """Short payer label from payers.csv; 'other' when the payer is not listed."""
        return self.payer_groups.get(payer_id or "", DEFAULT_PAYER_GROUP)

    def roster_by_taxonomy(self, taxonomy_code: str) -> RosterEntry | None:
        for entry in self.roster.values():
            if entry.taxonomy_code == taxonomy_code:
                return entry
        return None


def load_network_reference(files: ReferenceFiles, *, geography: Geography | None = None) -> NetworkReference:
    """Build the network reference from ``network/*`` (and the ZIP5 file) of a reference mapping."""
    read: list[str] = []

    def content(path: str) -> bytes | None:
        data = files.get(path)
        if data is not None:
            read.append(path)
        return data

    roster_bytes = content(ROSTER_FILE)
    roster = parse_roster(ROSTER_FILE, roster_bytes) if roster_bytes is not None else {}
    directory_bytes = content(DIRECTORY_FILE)
    directory = parse_directory(DIRECTORY_FILE, directory_bytes) if directory_bytes is not None else Directory()

    standards_rows = default_standards()
    standards_bytes = content(STANDARDS_FILE)
    overrides = parse_standards(STANDARDS_FILE, standards_bytes) if standards_bytes is not None else []
    standards = StandardsTable(merge_standards(standards_rows, overrides))

    county_types = CountyTypes()
    county_bytes = content(COUNTY_TYPES_FILE)
    if county_bytes is not None:
        county_types.by_zip, county_types.by_county = parse_county_types(COUNTY_TYPES_FILE, county_bytes)
    zip5_path = find_zip5_file(files)
    if zip5_path is not None:
        county_types.zip5_rural = parse_zip5_rural(zip5_path, files[zip5_path])
        county_types.zip5_file = zip5_path
        read.append(zip5_path)

    waits = default_wait_standards()
    wait_bytes = content(WAIT_STANDARDS_FILE)
    wait_overrides = parse_wait_standards(WAIT_STANDARDS_FILE, wait_bytes) if wait_bytes is not None else {}
    waits.update(wait_overrides)

    base = geography if geography is not None else default_geography()
    locations_bytes = content(ZIP_LOCATIONS_FILE)
    if locations_bytes is not None:
        base = OverlayGeography(parse_zip_locations(ZIP_LOCATIONS_FILE, locations_bytes), base)

    payers_bytes = files.get(PAYERS_FILE)
    payer_groups = payer_labels(payers_bytes) if payers_bytes is not None else {}

    return NetworkReference(
        payer_groups=payer_groups,
        roster=roster,
        directory=directory,
        standards=standards,
        county_types=county_types,
        waits=WaitStandards(waits),
        geography=base,
        files=tuple(read),
        standards_overrides=len(overrides),
        wait_overrides=len(wait_overrides),
    )


def check_network_reference(files: ReferenceFiles) -> list[str]:
    """Summary lines for ``claimwatch reference check DIR``; raises ReferenceError on the first defect.

    Registered in services.reference.checks.REFERENCE_CHECKS. Loads no ZIP geography (fast, offline).
    """
    reference = load_network_reference(files, geography=_NoGeography())
    lines: list[str] = []
    if reference.roster:
        specialties = sorted({entry.specialty_group for entry in reference.roster.values()})
        lines.append(f"{ROSTER_FILE}: {len(reference.roster)} providers, specialty groups {', '.join(specialties)}")
    directory = reference.directory
    if directory.locations or directory.counts:
        lines.append(
            f"{DIRECTORY_FILE}: {len(directory.locations)} provider locations, {len(directory.counts)} county counts, "
            f"payers {', '.join(sorted(directory.payers))}"
        )
    lines.append(
        f"adequacy standards: {len(reference.standards.rows)} rows "
        f"({reference.standards_overrides} from {STANDARDS_FILE}, the rest 42 CFR 422.116 defaults)"
    )
    county_types = reference.county_types
    type_line = f"county types: {len(county_types.by_zip)} ZIP and {len(county_types.by_county)} county overrides"
    if county_types.zip5_file:
        type_line += (
            f"; default from the rural indicator of {county_types.zip5_file} "
            f"({len(county_types.zip5_rural)} ZIPs, coarse)"
        )
    else:
        type_line += "; no medicare/<year>/ZIP5*.txt: ZIPs without an override have no county type"
    lines.append(type_line)
    lines.append(
        f"wait standards: {len(reference.waits.rows)} rows ({reference.wait_overrides} from {WAIT_STANDARDS_FILE})"
    )
    known = reference.standards.specialties
    used = (
        {entry.specialty_group for entry in reference.roster.values()}
        | {row.specialty_group for row in directory.locations}
        | {row.specialty_group for row in directory.counts}
    )
    unknown = sorted(used - known)
    if unknown:
        lines.append(
            f"warning: specialty groups without an adequacy standard (no gap rule applies): {', '.join(unknown)}"
        )
    if isinstance(reference.geography, OverlayGeography):
        lines.append(f"{ZIP_LOCATIONS_FILE}: {len(reference.geography.overrides)} ZIP locations")
    return lines


def payer_labels(content: bytes) -> dict[str, str]:
    """payer_id -> payer_group of payers.csv, leniently (the pricing check reports its defects)."""
    labels: dict[str, str] = {}
    text = decode_text(PAYERS_FILE, content)
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row and not row[0].lstrip().startswith("#")]
    if not rows:
        return labels
    header = [cell.strip().lower() for cell in rows[0]]
    if "payer_id" not in header or "payer_group" not in header:
        return labels
    id_column, group_column = header.index("payer_id"), header.index("payer_group")
    for row in rows[1:]:
        if len(row) > max(id_column, group_column) and row[id_column].strip() and row[group_column].strip():
            labels[row[id_column].strip()] = row[group_column].strip()
    return labels


class _NoGeography:
    def locate(self, zip_code: str | None) -> ZipLocation | None:
        return None


def network_files(files: ReferenceFiles) -> Mapping[str, bytes]:
    """The subset of a reference mapping that this module reads (for the reference.network topic)."""
    selected = {path: data for path, data in files.items() if path.startswith(NETWORK_DIR + "/")}
    zip5 = find_zip5_file(files)
    if zip5 is not None:
        selected[zip5] = files[zip5]
    return selected
