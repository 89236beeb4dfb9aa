"""The simulated group (services/simulate/world.py): its reference folder and its geography."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from services.adequacy.reference import npi_check_digit_ok
from services.reference.checks import run_checks
from services.reference.files import read_folder
from services.simulate.world import (
    AREA_BY_ZIP,
    CATCHMENTS,
    GAPS,
    LOCATIONS,
    PAYERS,
    SPECIALTIES,
    build_world,
    directory_rows,
    npi_with_check_digit,
    reference_files,
)


@pytest.fixture(scope="module")
def world():
    return build_world(7)


@pytest.fixture(scope="module")
def files(world):
    return reference_files(world)


def test_npi_check_digit_matches_the_project_validator():
    assert npi_with_check_digit("123456789") == "1234567893"  # the CMS example NPI
    for base in ("100000000", "198765432", "155555555"):
        assert npi_check_digit_ok(npi_with_check_digit(base))


def test_the_group_is_multi_state_and_multi_specialty(world):
    assert len(world.providers) >= 30
    assert len({provider.specialty for provider in world.providers}) >= 8
    assert len({provider.state for provider in world.providers}) >= 4
    assert {provider.state for provider in world.providers} <= {"TX", "FL", "GA", "AZ", "CO", "NC"}
    npis = [provider.npi for provider in world.providers] + [payee.npi for payee in world.payees.values()]
    assert len(npis) == len(set(npis))
    assert all(npi_check_digit_ok(npi) for npi in npis)


def test_payers_differ_in_policy_and_group():
    assert len(PAYERS) >= 8
    assert len({payer.benchmark for payer in PAYERS}) >= 8
    assert len({payer.group for payer in PAYERS}) >= 8
    assert any(payer.medicare_advantage for payer in PAYERS)


def test_reference_folder_validates_with_the_project_loaders(files, tmp_path):
    for relative, content in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    summary, problems = run_checks(read_folder(tmp_path))
    assert problems == []
    text = "\n".join(summary)
    assert "payers.csv: 12 payers" in text
    assert "network/roster.csv: 43 providers" in text
    assert "network/directory.csv" in text


def test_reference_files_are_marked_fictional_or_synthetic(files):
    assert files["ucr.csv"].startswith(b"# SYNTHETIC")
    for name in ("payers.csv", "fee_schedules.csv", "scas.csv", "payer_policies.csv", "network/roster.csv"):
        assert files[name].startswith(b"# FICTIONAL"), name
    assert {name for name in files if name.startswith("medicare/2025/")} == {
        "medicare/2025/25LOCCO.csv",
        "medicare/2025/GPCI2025.csv",
        "medicare/2025/PPRRVU2025_Oct.csv",
        "medicare/2025/ZIP5_OCT2025.txt",
    }


def test_same_seed_same_world_other_seed_other_world(files):
    assert reference_files(build_world(7)) == files
    other = reference_files(build_world(8))
    assert other["network/roster.csv"] != files["network/roster.csv"]
    assert other["medicare/2025/GPCI2025.csv"] == files["medicare/2025/GPCI2025.csv"]


def test_charges_are_two_to_four_times_medicare(world):
    """The charge master is 2.2-3.8 times the highest Medicare amount of the state (whole dollars)."""
    for state in {location.state for location in LOCATIONS}:
        zips = [location.zip for location in LOCATIONS if location.state == state]
        for key in world.price_keys:
            charge = world.charge(state, key)
            highest = max(world.medicare_unit(key, zip5, facility) for zip5 in zips for facility in (False, True))
            assert Decimal("2.2") <= charge / highest <= Decimal("3.81"), (state, key, charge / highest)
            assert charge == charge.to_integral_value()
    for specialty in SPECIALTIES.values():
        for visit in specialty.visits:
            location = next(location for location in LOCATIONS if location.state == "TX")
            facility = visit.pos in ("21", "22", "23", "24")
            for code in visit.codes:
                ratio = world.charge("TX", code) / world.medicare_unit(code, location.zip, facility)
                assert ratio >= 2, (code, ratio)


def test_every_billed_code_has_a_medicare_amount_on_the_default_dates(world):
    for specialty in SPECIALTIES.values():
        for visit in specialty.visits:
            for code in visit.codes:
                for location in LOCATIONS:
                    assert world.medicare_unit(code, location.zip, facility=False) > 0
    assert world.pricing_date.year == dt.date(2025, 10, 1).year


def test_patient_areas_are_in_the_counties_the_geography_says(world):
    from services.adequacy.geography import default_geography

    geography = default_geography()
    for area in AREA_BY_ZIP.values():
        location = geography.locate(area.zip)
        assert location is not None, area.zip
        assert location.county_fips == area.county_fips, (area.zip, location.county_fips, area.county_fips)
        assert location.state == area.state
    for location_zip, areas in CATCHMENTS.items():
        practice = geography.locate(location_zip)
        for area in areas:
            limit = 165 if area.state == "AZ" else 65  # Arizona's counties are few and large
            assert practice.miles_to(geography.locate(area.zip)) <= limit, (location_zip, area.zip)


def test_planted_distance_gaps_are_isolated_beyond_the_standard(world):
    """No in-network location of the gap payer and specialty lies within the standard of the gap county, and
    every other patient ZIP has an in-network location of every payer in the directory at its own ZIP."""
    from services.adequacy.geography import default_geography
    from services.adequacy.reference import default_standards

    geography = default_geography()
    standards = {(row.specialty_group, row.county_type): row for row in default_standards() if row.county_fips is None}
    rows = directory_rows(world)
    for gap in GAPS:
        if gap.kind != "distance":
            continue
        limit = float(standards[(gap.specialty, gap.area.county_type)].max_miles)
        patient = geography.locate(gap.area.zip)
        in_network = [
            zip5 for payer, _, specialty, zip5 in rows if payer == gap.payer_id and specialty == gap.specialty
        ]
        assert in_network
        nearest = min(patient.miles_to(geography.locate(zip5)) for zip5 in in_network)
        assert nearest > limit + 10, (gap.gap_id, nearest, limit)
    located = {(payer, specialty, zip5) for payer, _, specialty, zip5 in rows}
    gap_cells = {(gap.payer_id, gap.specialty, gap.area.zip) for gap in GAPS if gap.kind == "distance"}
    gap_cells |= {  # the count gap payer lists one location in the county (at the gap ZIP) and none elsewhere
        (gap.payer_id, gap.specialty, area.zip)
        for gap in GAPS
        if gap.kind == "count"
        for area in AREA_BY_ZIP.values()
        if area.county_fips == gap.area.county_fips and area.zip != gap.area.zip
    }
    for payer in (payer for payer in PAYERS if payer.in_directory):
        for area in AREA_BY_ZIP.values():
            if area.state not in payer.states:
                continue
            for specialty in SPECIALTIES:
                if specialty == "emergency_medicine" or (payer.payer_id, specialty, area.zip) in gap_cells:
                    continue
                assert (payer.payer_id, specialty, area.zip) in located


def test_the_count_gap_payer_has_fewer_providers_than_the_minimum(world):
    rows = directory_rows(world)
    for gap in GAPS:
        if gap.kind != "count":
            continue
        county_zips = {area.zip for area in AREA_BY_ZIP.values() if area.county_fips == gap.area.county_fips}
        counts: dict[str, int] = {}
        for payer, _, specialty, zip5 in rows:
            if specialty == gap.specialty and zip5 in county_zips:
                counts[payer] = counts.get(payer, 0) + 1
        assert counts[gap.payer_id] < gap.min_providers
        assert all(count >= gap.min_providers for payer, count in counts.items() if payer != gap.payer_id)
