"""Medicare PFS loader and formula: CMS-published amounts, lookups, statuses, years, validation errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from services.pricing.medicare import (
    FACILITY_PLACES_OF_SERVICE,
    is_facility,
    load_medicare,
    load_medicare_folder,
    medicare_amount,
    normalize_zip,
    parse_locality,
)
from services.pricing.validation import ReferenceValidationError
from services.reference.files import ReferenceError
from tests.unit.test_pricing_support import demo_medicare_files

D = Decimal
DAY = dt.date(2025, 6, 1)


def cms_files(folder: Path, year: int = 2025) -> dict[str, bytes]:
    return {f"medicare/{year}/{path.name}": path.read_bytes() for path in folder.iterdir() if path.is_file()}


@pytest.fixture(scope="module")
def cms(cms_2025_dir):
    return load_medicare(cms_files(cms_2025_dir))


def amount(reference, code, modifier="", *, facility=False, **where):
    where = where or {"locality": "01182-17"}
    return medicare_amount(reference, code, modifier, date=DAY, facility=facility, **where)


# --- CMS-published amounts ----------------------------------------------------------------------------


def test_11042_at_01182_17_matches_cms(cms):
    assert amount(cms, "11042").amount == D("140.72")
    assert amount(cms, "11042", facility=True).amount == D("62.28")


def test_77078_is_paid_the_lesser_of_pfs_and_opps_cap(cms):
    result = amount(cms, "77078")
    assert (result.pfs_amount, result.opps_cap, result.amount) == (D("113.18"), D("115.86"), D("113.18"))
    assert "OPPS cap" in result.formula() and "lesser = 113.18" in result.formula()


def test_opps_cap_binds_when_lower(cms):
    glob, tc = amount(cms, "70496"), amount(cms, "70496", "TC")  # CT angiography head, 01182-17, 2025
    assert (glob.pfs_amount, glob.opps_cap, glob.amount) == (D("311.42"), D("294.20"), D("294.20"))
    assert (tc.pfs_amount, tc.opps_cap, tc.amount) == (D("227.55"), D("210.33"), D("210.33"))


def test_professional_component_has_no_cap_and_differs_from_global(cms):
    pc, tc, glob = amount(cms, "70450", "26"), amount(cms, "70450", "TC"), amount(cms, "70450")
    assert pc.opps_cap is None and pc.amount is not None
    assert pc.amount + min(tc.pfs_amount, tc.amount) >= glob.amount - D("0.02") or glob.opps_cap is not None


def test_zip_lookup_zip_plus_four_and_nine_digits(cms):
    by_locality = amount(cms, "99214").amount
    for zip_code in ("93001", "93001-1234", "930011234", " 93001 "):
        result = amount(cms, "99214", zip_code=zip_code)
        assert result.amount == by_locality and result.locality_key == "01182-17"
    assert amount(cms, "99214", zip_code="9300").reason == "invalid_zip"
    assert amount(cms, "99214", zip_code="00000").reason == "unknown_zip"


def test_locality_string_forms_and_leading_zeros(cms):
    reference_amount = amount(cms, "99214", locality="01182-17").amount
    for text in ("1182-17", "01182/17", "01182 17"):
        assert amount(cms, "99214", locality=text).amount == reference_amount
    alabama = amount(cms, "99214", locality="10112-0")  # locality 00 written as 0
    assert alabama.amount is not None and alabama.locality_key == "10112-00"
    assert amount(cms, "99214", locality="01182-99").reason == "unknown_locality"
    assert amount(cms, "99214", locality="abc").reason == "unknown_locality"


def test_alaska_zip_joins_carrier_with_leading_zero(cms):
    result = amount(cms, "99214", zip_code="99501")
    assert result.locality_key == "02102-01" and result.gpci.work == D("1.5")


def test_statuses_without_a_national_amount_are_never_zero(cms):
    for code in ("G0008", "0001F", "00100", "J1100"):
        result = amount(cms, code)
        assert result.amount is None and result.reason == "not_payable" and result.status != "A"
        assert "no national Medicare amount" in result.detail
    carrier_priced = next(
        row for row in cms.years[2025].rvu_release().rows.values() if row.status == "C" and not row.modifier
    )
    result = amount(cms, carrier_priced.code)
    assert result.amount is None and "carrier priced" in result.detail


def test_status_t_and_r_with_rvus_have_amounts_with_a_note(cms):
    t = amount(cms, "96523")
    assert t.amount is not None and t.status == "T" and any("no other PFS service" in note for note in t.notes)
    r = amount(cms, "11055")
    assert r.amount is not None and r.status == "R" and any("restricted" in note for note in r.notes)


def test_unknown_code_and_missing_year(cms):
    assert amount(cms, "ZZZZZ").reason == "unknown_code"
    result = medicare_amount(cms, "99214", date=dt.date(2024, 12, 31), facility=False, locality="01182-17")
    assert result.reason == "missing_year" and "2024" in result.detail


def test_na_indicator_is_noted(cms):
    result = amount(cms, "70450", "TC", facility=True)
    assert result.amount is not None
    assert any("NA in the facility setting" in note for note in result.notes)


def test_loading_the_full_files_is_fast(cms_2025_dir):
    import time

    files = cms_files(cms_2025_dir)
    started = time.perf_counter()
    load_medicare(files)
    assert time.perf_counter() - started < 3.0  # ~0.5 s on a developer machine; generous for CI


# --- facility places of service ---------------------------------------------------------------------


def test_facility_places_of_service():
    assert FACILITY_PLACES_OF_SERVICE == {
        "02",
        "19",
        "21",
        "22",
        "23",
        "24",
        "26",
        "31",
        "34",
        "41",
        "42",
        "51",
        "52",
        "53",
        "56",
        "61",
    }
    assert is_facility("22") and is_facility("2") and is_facility(" 21 ")
    assert not is_facility("11") and not is_facility("10") and not is_facility("32") and not is_facility(None)


def test_zip_and_locality_parsing():
    assert normalize_zip("12345-6789") == "12345"
    assert normalize_zip("123456789") == "12345"
    assert normalize_zip("1234") is None and normalize_zip("ABCDE") is None and normalize_zip(None) is None
    assert parse_locality("4412-18") == ("04412", "18")
    assert parse_locality("04412-018") is None


# --- years, releases, conversion factors (demo subset: no ../shared needed) ---------------------------


def demo_year(year: int, files: dict[str, bytes] | None = None) -> dict[str, bytes]:
    files = files or demo_medicare_files()
    return {name.replace("/2025/", f"/{year}/"): content for name, content in files.items()}


def test_several_years_side_by_side_chosen_by_date_of_service():
    files = {**demo_medicare_files(), **demo_year(2026)}
    files["medicare/conversion_factors.csv"] = (
        b"year,conversion_factor,qualifying_apm_conversion_factor\n2026,33.4009,33.5675\n"
    )
    reference = load_medicare(files)
    assert sorted(reference.years) == [2025, 2026]
    y2025 = medicare_amount(reference, "99214", date=dt.date(2025, 12, 31), facility=False, locality="04412-18")
    y2026 = medicare_amount(reference, "99214", date=dt.date(2026, 1, 1), facility=False, locality="04412-18")
    apm = medicare_amount(reference, "99214", date=dt.date(2026, 1, 1), facility=False, locality="04412-18", apm=True)
    assert y2025.conversion_factor == D("32.3465")
    assert y2026.conversion_factor == D("33.4009") and apm.conversion_factor == D("33.5675")
    assert y2025.amount < y2026.amount < apm.amount
    rvu, gpci = y2026.rvu, y2026.gpci
    manual = (rvu.work * gpci.work + rvu.pe_nonfacility * gpci.pe + rvu.mp * gpci.mp) * D("33.4009")
    assert y2026.amount == manual.quantize(D("0.01"), rounding="ROUND_HALF_UP")


def test_quarterly_releases_apply_from_their_month():
    files = demo_medicare_files()
    october = next(name for name in files if "PPRRVU" in name)
    original = files[october].decode("latin-1")
    january = original.replace("\n99214,,,A,,1.92,", "\n99214,,,A,,2.00,")
    assert january != original
    both = {name: content for name, content in files.items() if name != october}
    both["medicare/2025/PPRRVU2025_Jan.csv"] = january.encode("latin-1")
    both["medicare/2025/PPRRVU2025_Oct.csv"] = files[october]
    reference = load_medicare(both)
    march = medicare_amount(reference, "99214", date=dt.date(2025, 3, 1), facility=False, locality="04412-18")
    november = medicare_amount(reference, "99214", date=dt.date(2025, 11, 1), facility=False, locality="04412-18")
    assert march.rvu.work == D("2.00") and november.rvu.work == D("1.92")


def test_qpp_file_only_contributes_its_conversion_factor():
    files = dict(demo_medicare_files())
    october = next(name for name in files if "PPRRVU" in name)
    files["medicare/2025/PPRRVU2025_Oct_QPP.csv"] = files[october].replace(b"32.3465", b"32.9999")
    reference = load_medicare(files)
    assert reference.years[2025].qualifying_apm_conversion_factor == D("32.9999")
    assert reference.years[2025].conversion_factor() == D("32.3465")


def test_folder_loader_reads_only_the_years_asked(tmp_path):
    for year in (2025, 2026):
        for name, content in demo_year(year).items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    (tmp_path / "medicare" / "2025" / "ZIP5lyout.txt").write_text("layout")
    assert sorted(load_medicare_folder(tmp_path, years={2026}).years) == [2026]
    assert sorted(load_medicare_folder(tmp_path).years) == [2025, 2026]
    with pytest.raises(ReferenceError, match="no medicare/ folder"):
        load_medicare_folder(tmp_path / "medicare")


# --- validation errors name file, line, column --------------------------------------------------------


def broken(name_part: str, transform) -> dict[str, bytes]:
    files = dict(demo_medicare_files())
    name = next(item for item in files if name_part in item)
    files[name] = transform(files[name].decode("latin-1")).encode("latin-1")
    return files


def test_bad_rvu_value_names_line_and_column():
    files = broken("PPRRVU", lambda text: text.replace("\n99214,,,A,,1.92,", "\n99214,,,A,,1.9x2,"))
    with pytest.raises(ReferenceValidationError) as caught:
        load_medicare(files)
    error = caught.value.errors[0]
    assert error.file.endswith("PPRRVU2025_Oct.csv") and error.column == "WORK RVU" and error.line > 10
    assert "1.9x2" in str(error)


def test_missing_rvu_column_is_reported_with_its_cms_name():
    files = broken("PPRRVU", lambda text: text.replace("CONV,", "CONVERSION,", 1))
    with pytest.raises(ReferenceValidationError, match="CONV FACTOR"):
        load_medicare(files)


def test_bad_zip5_line_names_position():
    files = broken("ZIP5", lambda text: "TX7A0300441218 Z9   0\n" + text)
    with pytest.raises(ReferenceValidationError) as caught:
        load_medicare(files)
    error = caught.value.errors[0]
    assert error.line == 1 and error.column == "Zip Code" and "positions 3-7" in str(error)


def test_zip5_locality_absent_from_gpci_is_an_error():
    files = broken("ZIP5", lambda text: "PR006010441277 Z9   0\n" + text)
    with pytest.raises(ReferenceValidationError, match="locality 77 is not in the GPCI"):
        load_medicare(files)


def test_missing_files_and_bad_paths():
    files = {name: content for name, content in demo_medicare_files().items() if "GPCI" not in name}
    with pytest.raises(ReferenceValidationError, match="missing the CMS GPCI"):
        load_medicare(files)
    with pytest.raises(ReferenceValidationError, match="4-digit year"):
        load_medicare({"medicare/25/PPRRVU.csv": b""})


def test_conversion_factor_override_validation():
    files = dict(demo_medicare_files())
    files["medicare/conversion_factors.csv"] = b"year,conversion_factor\n2025,abc\n"
    with pytest.raises(ReferenceValidationError) as caught:
        load_medicare(files)
    assert caught.value.errors[0].line == 2 and caught.value.errors[0].column == "conversion_factor"
    files["medicare/conversion_factors.csv"] = b"year,conversion_factor\n2025,33.0000\n"
    reference = load_medicare(files)
    result = medicare_amount(reference, "99214", date=DAY, facility=False, locality="04412-18")
    assert result.conversion_factor == D("33.0000")


def test_all_errors_are_collected():
    files = broken(
        "PPRRVU",
        lambda text: text.replace("\n99214,,,A,,1.92,", "\n99214,,,A,,x,").replace(
            "\n99213,,,A,,1.30,", "\n99213,,,A,,y,"
        ),
    )
    with pytest.raises(ReferenceValidationError) as caught:
        load_medicare(files)
    assert len(caught.value.errors) == 2


def test_rvu_rows_are_immutable():
    reference = load_medicare(demo_medicare_files())
    row = reference.years[2025].rvu_release().rows[("99214", "")]
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.work = D(0)  # type: ignore[misc]
