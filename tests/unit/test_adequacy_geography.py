"""Offline ZIP geography (services/adequacy/geography.py): haversine by hand, packaged centroids and counties."""

from __future__ import annotations

import math

import pytest

from services.adequacy.geography import (
    EARTH_RADIUS_MILES,
    OverlayGeography,
    StaticGeography,
    ZipLocation,
    default_geography,
    haversine_miles,
    normalize_zip,
    round_miles,
)


def test_one_degree_of_latitude_is_69_1_miles() -> None:
    # R * pi / 180 = 3958.8 * 0.0174533 = 69.0934
    assert round_miles(haversine_miles(35.0, -100.0, 36.0, -100.0)) == 69.1
    assert round_miles(haversine_miles(35.0, -100.0, 35.5, -100.0)) == 34.5
    assert haversine_miles(35.0, -100.0, 36.0, -100.0) == pytest.approx(EARTH_RADIUS_MILES * math.pi / 180)


def test_one_degree_of_longitude_shrinks_with_latitude() -> None:
    assert round_miles(haversine_miles(0.0, 10.0, 0.0, 11.0)) == 69.1  # equator
    # at 60 N, cos(60) = 0.5: half a degree of latitude's length, to first order: 34.5 miles
    assert round_miles(haversine_miles(60.0, 10.0, 60.0, 11.0)) == 34.5


def test_distance_is_symmetric_and_zero_on_itself() -> None:
    assert haversine_miles(40.0, -75.0, 41.0, -74.0) == pytest.approx(haversine_miles(41.0, -74.0, 40.0, -75.0))
    assert haversine_miles(40.0, -75.0, 40.0, -75.0) == 0.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("75201", "75201"),
        ("75201-1234", "75201"),
        ("752011234", "75201"),
        (" 02138 ", "02138"),
        ("7520", None),
        ("ABCDE", None),
        (None, None),
    ],
)
def test_normalize_zip(value, expected) -> None:
    assert normalize_zip(value) == expected


def test_packaged_geography_locates_real_zips_with_county_fips() -> None:
    geography = default_geography()
    sanderson = geography.locate("79848")  # Sanderson, Terrell County, TX
    midland = geography.locate("79701-0001")  # Midland, Midland County, TX
    assert sanderson is not None and midland is not None
    # zipcodes 3.0.0 centroids (a monthly data refresh may move them slightly)
    assert (sanderson.latitude, sanderson.longitude) == pytest.approx((30.1221, -102.3984), abs=0.05)
    assert (midland.latitude, midland.longitude) == pytest.approx((31.9896, -102.0626), abs=0.05)
    assert sanderson.county_fips == "48443" and sanderson.state == "TX"
    assert sanderson.county_source == "zipcodes_geonames"
    assert midland.county_fips == "48329"
    # hand check: dlat = 1.8675 deg, dlon = 0.3358 deg at mean latitude 31.056 deg (cos = 0.85664)
    # equirectangular: 69.0934 * sqrt(1.8675^2 + (0.3358 * 0.85664)^2) = 69.0934 * 1.88955 = 130.56
    assert round_miles(haversine_miles(30.1221, -102.3984, 31.9896, -102.0626)) == 130.6
    assert sanderson.miles_to(midland) == pytest.approx(130.6, abs=3.0)


@pytest.mark.parametrize(
    ("zip_code", "county_fips", "state"),
    [
        ("77030", "48201", "TX"),  # Houston: Harris County
        ("10001", "36061", "NY"),  # Manhattan: New York County
        ("60601", "17031", "IL"),  # Chicago: Cook County
        ("00501", "36103", "NY"),  # Holtsville IRS unique ZIP: Suffolk County
        ("63105", "29189", "MO"),  # Clayton: zipcodes says "St Louis County", the county list "St. Louis County"
        ("99501", "02020", "AK"),  # zipcodes "Municipality of Anchorage", the county list "Anchorage Municipality"
        ("46350", "18091", "IN"),  # La Porte: zipcodes "La Porte County", the county list "LaPorte County"
        ("99686", "02063", "AK"),  # Valdez: Chugach Census Area, missing from the county list 0.4
    ],
)
def test_packaged_geography_county_fips_from_zipcodes_county_names(zip_code, county_fips, state) -> None:
    location = default_geography().locate(zip_code)
    assert location is not None
    assert (location.county_fips, location.state) == (county_fips, state)
    assert location.county_source == "zipcodes_geonames"


def test_packaged_geography_fallbacks_and_unknown_zips() -> None:
    geography = default_geography()
    # Washington DC unique ZIP with no county in zipcodes: the county of the nearest resolved DC ZIP
    treasury = geography.locate("20252")
    assert treasury is not None and treasury.state == "DC"
    assert treasury.county_fips == "11001" and treasury.county_source == "nearest_zip"
    # Gans, PA: zipcodes names a West Virginia county, which does not resolve in PA: nearest PA ZIP's county
    gans = geography.locate("15439")
    assert gans is not None and gans.state == "PA"
    assert gans.county_fips is not None and gans.county_fips.startswith("42")
    assert gans.county_source == "nearest_zip"
    # Guam: located, but no Guam ZIP has a county in zipcodes, so the county stays unknown
    hagatna = geography.locate("96910")
    assert hagatna is not None and hagatna.state == "GU"
    assert hagatna.county_fips is None and hagatna.county_source is None
    assert geography.locate("00000") is None
    assert geography.locate("not a zip") is None


def test_overlay_geography_prefers_reference_locations() -> None:
    override = ZipLocation("10001", 1.0, 2.0, "NY", "36061", "reference")
    overlay = OverlayGeography({"10001": override}, StaticGeography([ZipLocation("10002", 3.0, 4.0)]))
    assert overlay.locate("10001-9999") is override
    assert overlay.locate("10002").latitude == 3.0
    assert overlay.locate("10003") is None
