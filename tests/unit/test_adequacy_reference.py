"""Network reference files (services/adequacy/reference.py): formats, defaults, validation errors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.adequacy.reference import (
    check_network_reference,
    find_zip5_file,
    load_network_reference,
    network_files,
    normalize_product,
    normalize_specialty,
    parse_zip5_rural,
)
from services.reference.files import ReferenceError
from tests.unit.test_adequacy_support import GEOGRAPHY

ROSTER_HEADER = "npi,taxonomy_code,specialty_group,practice_zip,state,tin\n"
DIRECTORY_ALL = "payer_id,specialty_group,provider_zip,county_fips,provider_count\n"
DIRECTORY_COUNTS = "payer_id,specialty_group,county_fips,provider_count\n"
STANDARDS_HEADER = "specialty_group,county_type,max_miles,min_providers\n"

# Fixed-width ZIP5 records written for the test (layout: state 1-2, ZIP 3-7, carrier 8-12, locality 13-14,
# rural indicator 15, ...): 90001 urban (blank), 90002 rural (R), 90003 super rural (B).
ZIP5_EXCERPT = (
    b"OK900010452101 Z9   0 A                                                    20254\r\n"
    b"OK900020452101RZ9R  0 A                                                    20254\r\n"
    b"OK900030452101BZ9B  0 A                                                    20254\r\n"
)


def load(files: dict[str, bytes]):
    return load_network_reference(files, geography=GEOGRAPHY)


def error_of(files: dict[str, bytes]) -> ReferenceError:
    with pytest.raises(ReferenceError) as caught:
        load(files)
    return caught.value


# ------------------------------------------------------------------------------------ the defaults


def test_default_standards_are_the_422_116_table() -> None:
    standards = load({}).standards
    cardiology = standards.lookup("cardiology", "metro")
    assert cardiology is not None
    assert (cardiology.max_minutes, cardiology.max_miles, cardiology.min_providers) == (30, Decimal(20), None)
    assert cardiology.is_default
    assert cardiology.sources[0].startswith("services/adequacy/data/adequacy_standards_422_116.csv:")
    expected = {
        ("primary_care", "large_metro"): (10, 5),
        ("primary_care", "ceac"): (70, 60),
        ("orthopedic_surgery", "micro"): (50, 35),
        ("dermatology", "metro"): (45, 30),
        ("oncology", "ceac"): (110, 100),
        ("ent", "rural"): (90, 75),
        ("physiatry", "micro"): (80, 60),
        ("neurosurgery", "large_metro"): (30, 15),
        ("vascular_surgery", "rural"): (110, 90),
        ("rheumatology", "ceac"): (145, 130),
    }
    for (specialty, county_type), (minutes, miles) in expected.items():
        standard = standards.lookup(specialty, county_type)
        assert standard is not None, specialty
        assert (standard.max_minutes, standard.max_miles) == (minutes, Decimal(miles)), (specialty, county_type)
    assert len(standards.rows) == 27 * 5


def test_user_standards_replace_default_rows_by_key() -> None:
    files = {
        "network/adequacy_standards.csv": (
            b"# CMS HSD 2026\nspecialty_group,county_type,max_minutes,max_miles\nCardiology,Metro,25,15\n"
        )
    }
    reference = load(files)
    cardiology = reference.standards.lookup("cardiology", "metro")
    assert cardiology is not None and cardiology.max_miles == Decimal(15) and not cardiology.is_default
    assert cardiology.sources == ("network/adequacy_standards.csv:3",)
    assert reference.standards.lookup("cardiology", "rural").is_default  # other rows stay


def test_default_wait_standards() -> None:
    waits = load({}).waits
    assert [(w.market, w.category, w.max_business_days) for w in waits.applicable("CA", "cardiology")] == [
        ("CA", "non_urgent_specialist", 15),
        ("aca_marketplace", "non_urgent_specialty", 30),
    ]
    assert [(w.market, w.max_business_days) for w in waits.applicable("TX", "psychiatry")] == [("aca_marketplace", 10)]
    assert [(w.market, w.max_business_days) for w in waits.applicable("CA", "primary_care")] == [
        ("CA", 10),
        ("aca_marketplace", 15),
    ]


def test_wait_standards_override() -> None:
    files = {"network/wait_standards.csv": b"market,category,max_business_days\nny,non_urgent_specialist,20\n"}
    waits = load(files).waits
    assert waits.applicable("NY", "urology")[0].max_business_days == 20


# ----------------------------------------------------------------------------------- county types


def test_default_county_type_from_a_zip5_excerpt() -> None:
    files = {"medicare/2025/ZIP5_OCT2025.txt": ZIP5_EXCERPT, "medicare/2025/ZIP5lyout.txt": b"Zip5 Record Layout\n"}
    county_types = load(files).county_types
    assert county_types.zip5_file == "medicare/2025/ZIP5_OCT2025.txt"
    urban = county_types.resolve("90001", None)
    rural = county_types.resolve("90002", None)
    super_rural = county_types.resolve("90003", None)
    assert (urban.county_type, rural.county_type, super_rural.county_type) == ("metro", "rural", "ceac")
    assert urban.coarse and "blank (urban)" in urban.source and "ZIP5_OCT2025.txt" in urban.source
    assert county_types.resolve("99999", None) is None


def test_county_type_file_overrides_the_zip5_default() -> None:
    files = {
        "medicare/2025/ZIP5_OCT2025.txt": ZIP5_EXCERPT,
        "network/county_types.csv": b"zip,county_fips,county_type\n90001,,Large Metro\n,40009,micro\n",
    }
    county_types = load(files).county_types
    by_zip = county_types.resolve("90001", "40009")
    assert by_zip.county_type == "large_metro" and not by_zip.coarse
    assert by_zip.source == "network/county_types.csv:2"
    assert county_types.resolve("90002", "40009").county_type == "micro"  # county row beats ZIP5 R
    assert county_types.resolve("90002", "40001").county_type == "rural"


def test_latest_year_zip5_is_used_and_the_layout_file_ignored() -> None:
    files = {
        "medicare/2024/ZIP5_OCT2024.txt": b"",
        "medicare/2025/ZIP5_JAN2025.txt": ZIP5_EXCERPT.replace(b"20254", b"20251"),
        "medicare/2025/ZIP5_APR2025.txt": ZIP5_EXCERPT.replace(b"20254", b"20252"),
        "medicare/2025/ZIP5lyout.txt": b"",
        "medicare/2026/zip5layout.txt": b"",
        "network/ZIP5_X.txt": b"",
    }
    assert find_zip5_file(files) == "medicare/2025/ZIP5_APR2025.txt"  # latest Year/Quarter field, not name
    selected = set(network_files({**files, "network/roster.csv": b"x"}))
    assert selected == {"network/roster.csv", "network/ZIP5_X.txt", "medicare/2025/ZIP5_APR2025.txt"}


def test_zip5_errors_name_the_line() -> None:
    with pytest.raises(ReferenceError) as caught:
        parse_zip5_rural("medicare/2025/ZIP5.txt", ZIP5_EXCERPT + b"OK9A0040452101 Z9\n")
    assert caught.value.line == 4 and caught.value.column == "Zip Code"
    with pytest.raises(ReferenceError) as caught:
        parse_zip5_rural("medicare/2025/ZIP5.txt", b"OK900040452101XZ9\n")
    assert caught.value.column == "Rural Indicator"


# -------------------------------------------------------------------------------- roster, directory


def test_roster_parses_and_normalizes() -> None:
    roster = ROSTER_HEADER + "1234567893,207rc0000x,Cardiology,91003-1234,ok,12-3456789\n"
    entry = load({"network/roster.csv": roster.encode()}).roster["1234567893"]
    assert (entry.taxonomy_code, entry.specialty_group, entry.practice_zip, entry.state, entry.tin) == (
        "207RC0000X",
        "cardiology",
        "91003",
        "OK",
        "123456789",
    )


def test_directory_mixes_locations_and_counts() -> None:
    directory = (
        "payer_id,product_type,specialty_group,provider_zip,county_fips,provider_count\n"
        "P1,hmo,Cardiology,91001,,\n"
        "P1,,OB/GYN,,40001,4\n"
    )
    loaded = load({"network/directory.csv": directory.encode()}).directory
    assert loaded.covers("P1") and not loaded.covers("P2")
    assert loaded.locations_for("P1", "cardiology", "HMO")[0].provider_zip == "91001"
    assert loaded.locations_for("P1", "cardiology", "PPO") == []
    assert loaded.county_count("P1", "obgyn", None, "40001", GEOGRAPHY) == (4, "directory county counts")


def test_county_counts_take_the_largest_product_not_the_sum() -> None:
    directory = (
        "payer_id,product_type,specialty_group,county_fips,provider_count\n"
        "P1,HMO,cardiology,40001,2\nP1,PPO,cardiology,40001,5\nP1,,cardiology,40001,1\n"
    )
    loaded = load({"network/directory.csv": directory.encode()}).directory
    assert loaded.county_count("P1", "cardiology", None, "40001", GEOGRAPHY)[0] == 6
    assert loaded.county_count("P1", "cardiology", "HMO", "40001", GEOGRAPHY)[0] == 3
    assert loaded.county_count("P1", "cardiology", "EPO", "40001", GEOGRAPHY)[0] == 1


@pytest.mark.parametrize(
    ("files", "file", "line", "column", "message"),
    [
        (
            {"network/roster.csv": ROSTER_HEADER + "1234567890,207RC0000X,cardiology,91003,OK,123456789\n"},
            "network/roster.csv",
            2,
            "npi",
            "not a valid NPI",
        ),
        (
            {"network/roster.csv": ROSTER_HEADER + "1234567893,207RC0000,cardiology,91003,OK,123456789\n"},
            "network/roster.csv",
            2,
            "taxonomy_code",
            "NUCC",
        ),
        (
            {"network/roster.csv": ROSTER_HEADER + "1234567893,207RC0000X,cardiology,9100,OK,123456789\n"},
            "network/roster.csv",
            2,
            "practice_zip",
            "5-digit ZIP",
        ),
        (
            {"network/roster.csv": ROSTER_HEADER + "1234567893,207RC0000X,cardiology,91003,XX,123456789\n"},
            "network/roster.csv",
            2,
            "state",
            "two-letter",
        ),
        (
            {"network/roster.csv": ROSTER_HEADER + "1234567893,207RC0000X,cardiology,91003,OK,12345\n"},
            "network/roster.csv",
            2,
            "tin",
            "9-digit",
        ),
        (
            {"network/roster.csv": "npi,taxonomy_code,specialty_group,practice_zip,state\n"},
            "network/roster.csv",
            1,
            "tin",
            "missing required column",
        ),
        (
            {"network/roster.csv": ROSTER_HEADER.replace("tin", "tin,name")},
            "network/roster.csv",
            1,
            "name",
            "unknown column",
        ),
        (
            {"network/directory.csv": DIRECTORY_ALL + "P1,cardiology,91001,40001,2\n"},
            "network/directory.csv",
            2,
            "provider_zip",
            "not both",
        ),
        (
            {"network/directory.csv": "payer_id,specialty_group,provider_zip\nP1,cardiology,\n"},
            "network/directory.csv",
            2,
            "provider_zip",
            "neither",
        ),
        (
            {"network/directory.csv": DIRECTORY_COUNTS + "# comment\nP1,cardiology,99001,2\n"},
            "network/directory.csv",
            3,
            "county_fips",
            "county FIPS",
        ),
        (
            {"network/directory.csv": "payer_id,specialty_group,county_fips,provider_count\nP1,cardiology,40001,-2\n"},
            "network/directory.csv",
            2,
            "provider_count",
            "whole number",
        ),
        (
            {"network/directory.csv": DIRECTORY_COUNTS + "P1,cardiology,40001,2\nP1,cardiology,40001,3\n"},
            "network/directory.csv",
            3,
            "county_fips",
            "duplicate",
        ),
        (
            {"network/adequacy_standards.csv": "specialty_group,county_type,max_miles\ncardiology,suburban,20\n"},
            "network/adequacy_standards.csv",
            2,
            "county_type",
            "not a county type",
        ),
        (
            {"network/adequacy_standards.csv": "specialty_group,county_type,max_miles\ncardiology,metro,0\n"},
            "network/adequacy_standards.csv",
            2,
            "max_miles",
            "positive",
        ),
        (
            {"network/adequacy_standards.csv": STANDARDS_HEADER + "cardiology,metro,,\n"},
            "network/adequacy_standards.csv",
            2,
            "max_miles",
            "at least one",
        ),
        (
            {"network/county_types.csv": "zip,county_type\n90001,urban\n"},
            "network/county_types.csv",
            2,
            "county_type",
            "not a county type",
        ),
        (
            {"network/wait_standards.csv": "market,category,max_business_days\nCA,specialist,soon\n"},
            "network/wait_standards.csv",
            2,
            "max_business_days",
            "whole number",
        ),
        (
            {"network/zip_locations.csv": "zip,latitude,longitude\n90001,95.0,-100\n"},
            "network/zip_locations.csv",
            2,
            "latitude",
            "decimal degrees",
        ),
    ],
)
def test_validation_errors_name_file_line_column(files, file, line, column, message) -> None:
    error = error_of({name: text.encode() for name, text in files.items()})
    assert (error.file, error.line, error.column) == (file, line, column)
    assert message in str(error)
    assert str(error).startswith(f"{file}:{line} column {column!r}: ")


def test_too_many_fields_and_empty_file() -> None:
    error = error_of({"network/county_types.csv": b"zip,county_type\n90001,metro,extra\n"})
    assert error.line == 2 and "3 fields" in str(error)
    error = error_of({"network/roster.csv": b"# nothing but a comment\n"})
    assert error.file == "network/roster.csv" and "empty file" in str(error)


def test_zip_locations_overlay_the_geography() -> None:
    files = {"network/zip_locations.csv": b"zip,latitude,longitude,county_fips\n12345,40.5,-75.25,36061\n"}
    located = load(files).geography.locate("12345")
    assert located is not None and located.state == "NY" and located.county_fips == "36061"
    assert load(files).geography.locate("90001").county_fips == "40001"  # the base geography still answers


def test_check_network_reference_summary() -> None:
    files = {
        "network/roster.csv": (ROSTER_HEADER + "1234567893,207RC0000X,cardiology,91003,OK,123456789\n").encode(),
        "network/directory.csv": b"payer_id,specialty_group,provider_zip\nP1,cardiology,91001\n"
        b"P2,anesthesiology,91002\n",
        "medicare/2025/ZIP5_OCT2025.txt": ZIP5_EXCERPT,
    }
    lines = check_network_reference(files)
    assert lines[0] == "network/roster.csv: 1 providers, specialty groups cardiology"
    assert lines[1] == "network/directory.csv: 2 provider locations, 0 county counts, payers P1, P2"
    assert any("rural indicator of medicare/2025/ZIP5_OCT2025.txt (3 ZIPs, coarse)" in line for line in lines)
    assert (
        lines[-1].startswith("warning: specialty groups without an adequacy standard") and "anesthesiology" in lines[-1]
    )


def test_check_raises_on_a_bad_file() -> None:
    with pytest.raises(ReferenceError):
        check_network_reference({"network/county_types.csv": b"zip,county_type\nabc,metro\n"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Cardiology", "cardiology"),
        ("OB/GYN", "obgyn"),
        ("Allergy & Immunology", "allergy_immunology"),
        ("Otolaryngology", "ent"),
        ("  ", None),
    ],
)
def test_normalize_specialty(text, expected) -> None:
    assert normalize_specialty(text) == expected


def test_normalize_product() -> None:
    assert normalize_product(" hmo ") == "HMO"
    assert normalize_product("Medicare Advantage") == "MA"
    assert normalize_product("") is None
