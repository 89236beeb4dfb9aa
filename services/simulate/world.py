"""The fictional multi-state provider group of ``claimwatch simulate``, deterministic from a seed.

Everything here is FICTIONAL except the Medicare PFS subset copied from ``services/reference/demo/medicare``
(real CMS 2025 files) and the geography (real ZIP codes and county FIPS, so that distances and counties
are what the adequacy rules compute). Payers, contracts, SCAs, the UCR table, the roster, the network
directory and the county types are made up; the UCR table is a multiple of Medicare, never licensed data.

The group: "Cobalt Ridge Specialty Partners", one billing entity (type-2 NPI + TIN) per state, 43 rendering
providers in 11 specialty groups at 13 practice locations in TX, FL, GA, AZ, CO and NC. Patients live in
the counties around each practice (``CATCHMENTS``), plus a few outlying counties (``GAP_AREAS``) where
planted network gaps are.

``build_world(seed)`` fixes every random choice of the world (NPIs, TINs, charge master, UCR jitter) from
the seed; claims are drawn by :mod:`services.simulate.generate`. ``reference_files(world)`` renders the
reference folder as ``{relative path: bytes}``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from functools import cached_property
from pathlib import Path

from services.pricing.medicare import MedicareReference, load_medicare, medicare_amount

CENT = Decimal("0.01")
DEMO_MEDICARE = Path(__file__).resolve().parents[1] / "reference" / "demo" / "medicare"
GROUP_NAME = "COBALT RIDGE SPECIALTY PARTNERS"
RECEIVER_ID = "COBALTRIDGE"
FICTIONAL = "# FICTIONAL data written by `claimwatch simulate` (seed {seed}): a made-up provider group and payers"

# ------------------------------------------------------------------------------------------------
# Places


@dataclass(frozen=True)
class Location:
    """A practice location of the group: its ZIP is the place-of-service ZIP (Medicare locality, UCR)."""

    zip: str
    state: str
    city: str
    county_fips: str


LOCATIONS: tuple[Location, ...] = (
    Location("77030", "TX", "HOUSTON", "48201"),
    Location("75246", "TX", "DALLAS", "48113"),
    Location("78705", "TX", "AUSTIN", "48453"),
    Location("78229", "TX", "SAN ANTONIO", "48029"),
    Location("33136", "FL", "MIAMI", "12086"),
    Location("33606", "FL", "TAMPA", "12057"),
    Location("32806", "FL", "ORLANDO", "12095"),
    Location("30309", "GA", "ATLANTA", "13121"),
    Location("85006", "AZ", "PHOENIX", "04013"),
    Location("85719", "AZ", "TUCSON", "04019"),
    Location("80218", "CO", "DENVER", "08031"),
    Location("28204", "NC", "CHARLOTTE", "37119"),
    Location("27607", "NC", "RALEIGH", "37183"),
)
LOCATION_BY_ZIP = {location.zip: location for location in LOCATIONS}
STATES: tuple[str, ...] = ("TX", "FL", "GA", "AZ", "CO", "NC")


@dataclass(frozen=True)
class PatientArea:
    """A patient ZIP (real ZIP, real county FIPS) in the catchment of a practice location."""

    zip: str
    county_fips: str
    state: str
    location_zip: str
    county_type: str

    @property
    def region(self) -> str:
        """The adequacy rules' region code of a patient living here (``ST-CCCCC``)."""
        return f"{self.state}-{self.county_fips}"


# Patient ZIPs around each practice (real ZIPs within about 60 miles; in Arizona, where counties are large and
# few, up to about 160 miles; county FIPS as the project's geography resolves them, checked by
# tests/unit/test_simulate_world.py). One or two ZIPs per county.
_CATCHMENT_ROWS: dict[str, tuple[tuple[str, str], ...]] = {
    "77030": (("77502", "48201"), ("77012", "48201"), ("77407", "48157"), ("77406", "48157"), ("77430", "48039"),
              ("77591", "48167"), ("77510", "48167"), ("77355", "48339"), ("77362", "48339"), ("77514", "48071"),
              ("77484", "48473"), ("77327", "48291"), ("77418", "48015"), ("77420", "48481")),
    "75246": (("75180", "48113"), ("75149", "48113"), ("75166", "48085"), ("75098", "48085"), ("76262", "48121"),
              ("75022", "48121"), ("76117", "48439"), ("76005", "48439"), ("75158", "48257"), ("75167", "48139"),
              ("75165", "48139"), ("75032", "48397"), ("75087", "48397"), ("76050", "48251"), ("75423", "48231"),
              ("76641", "48349")),
    "78705": (("78730", "48453"), ("78703", "48453"), ("78628", "48491"), ("78626", "48491"), ("78619", "48209"),
              ("78650", "48021"), ("78644", "48055"), ("78132", "48091"), ("78611", "48053"), ("78663", "48031"),
              ("76518", "48331"), ("78672", "48299")),
    "78229": (("78236", "48029"), ("78207", "48029"), ("78123", "48187"), ("78124", "48187"), ("78070", "48091"),
              ("78059", "48325"), ("78016", "48325"), ("78161", "48493"), ("78121", "48493"), ("78026", "48013"),
              ("78027", "48259"), ("78883", "48019"), ("78057", "48163"), ("78028", "48265")),
    "33136": (("33172", "12086"), ("33010", "12086"), ("33311", "12011"), ("33004", "12011"), ("33483", "12099"),
              ("33426", "12099"), ("34141", "12021")),
    "33606": (("33635", "12057"), ("33614", "12057"), ("33773", "12103"), ("33708", "12103"), ("34652", "12101"),
              ("34653", "12101"), ("34211", "12081"), ("34201", "12081"), ("33868", "12105"), ("34607", "12053"),
              ("34606", "12053"), ("34233", "12115"), ("34231", "12115"), ("33865", "12049"), ("33514", "12119"),
              ("34753", "12069")),
    "32806": (("32819", "12095"), ("32805", "12095"), ("32750", "12117"), ("32701", "12117"), ("34771", "12097"),
              ("34769", "12097"), ("34797", "12069"), ("32778", "12069"), ("33859", "12105"), ("33853", "12105"),
              ("32169", "12127"), ("32132", "12127"), ("32931", "12009"), ("32920", "12009"), ("34785", "12119"),
              ("34491", "12083"), ("33541", "12101")),
    "30309": (("30315", "13121"), ("30303", "13121"), ("30346", "13089"), ("30319", "13089"), ("30090", "13067"),
              ("30008", "13067"), ("30273", "13063"), ("30236", "13063"), ("30046", "13135"), ("30017", "13135"),
              ("30135", "13097"), ("30134", "13097"), ("30253", "13151"), ("30252", "13151"), ("30115", "13057"),
              ("30114", "13057"), ("30132", "13223"), ("30141", "13223"), ("30012", "13247"), ("30013", "13247")),
    "85006": (("85203", "04013"), ("85201", "04013"), ("85118", "04021"), ("85324", "04025"), ("86301", "04025"),
              ("86314", "04025"), ("85541", "04007"), ("86001", "04005"), ("86004", "04005"), ("85901", "04017"),
              ("85365", "04027"), ("85344", "04012")),
    "85719": (("85746", "04019"), ("85701", "04019"), ("85131", "04021"), ("85616", "04003"), ("85635", "04003"),
              ("85643", "04003"), ("85611", "04023"), ("85637", "04023"), ("85501", "04007"), ("85546", "04009"),
              ("85552", "04009")),
    "80218": (("80204", "08031"), ("80202", "08031"), ("80228", "08059"), ("80033", "08059"), ("80017", "08005"),
              ("80010", "08005"), ("80233", "08001"), ("80022", "08001"), ("80138", "08035"), ("80134", "08035"),
              ("80023", "08014"), ("80020", "08014"), ("80534", "08123"), ("80543", "08123"), ("80504", "08013"),
              ("80422", "08047"), ("80117", "08039")),
    "28204": (("28269", "37119"), ("28202", "37119"), ("28025", "37025"), ("28027", "37025"), ("28054", "37071"),
              ("28012", "37071"), ("28110", "37179"), ("28174", "37179"), ("28092", "37109"), ("28080", "37109"),
              ("28137", "37167"), ("28127", "37167"), ("28625", "37097"), ("28144", "37159"), ("28146", "37159"),
              ("28658", "37035"), ("28613", "37035"), ("28150", "37045"), ("28152", "37045")),
    "27607": (("27560", "37183"), ("27511", "37183"), ("27704", "37063"), ("27701", "37063"), ("27504", "37101"),
              ("27516", "37135"), ("27510", "37135"), ("27508", "37069"), ("27549", "37069"), ("28334", "37085"),
              ("27521", "37085"), ("27581", "37077"), ("27509", "37077"), ("27207", "37037"), ("27252", "37037"),
              ("27856", "37127"), ("27804", "37127"), ("27536", "37181"), ("27537", "37181")),
}  # fmt: skip

# Counties CMS designates Large Metro (the rest of the catchments is written as metro). Illustrative only.
LARGE_METRO_COUNTIES = frozenset(
    {"48201", "48113", "48439", "48453", "48029", "12086", "12011", "12099", "12057", "12103", "12095", "13121",
     "13089", "13067", "13135", "04013", "04019", "08031", "08005", "08001", "08059", "37119", "37183"}
)  # fmt: skip

# Outlying counties (about 100 miles from anything else of the world) where planted network gaps are.
GAP_AREAS: tuple[PatientArea, ...] = (
    PatientArea("78840", "48465", "TX", "78229", "micro"),  # Val Verde (Del Rio)
    PatientArea("28557", "37031", "NC", "27607", "micro"),  # Carteret (Morehead City)
    PatientArea("81201", "08015", "CO", "80218", "rural"),  # Chaffee (Salida)
    PatientArea("33040", "12087", "FL", "33136", "micro"),  # Monroe (Key West)
)


def _catchments() -> dict[str, tuple[PatientArea, ...]]:
    result: dict[str, tuple[PatientArea, ...]] = {}
    for location_zip, rows in _CATCHMENT_ROWS.items():
        state = LOCATION_BY_ZIP[location_zip].state
        result[location_zip] = tuple(
            PatientArea(zip5, county, state, location_zip, "large_metro" if county in LARGE_METRO_COUNTIES else "metro")
            for zip5, county in rows
        )
    return result


CATCHMENTS = _catchments()
AREA_BY_ZIP: dict[str, PatientArea] = {area.zip: area for areas in CATCHMENTS.values() for area in areas} | {
    area.zip: area for area in GAP_AREAS
}

# ------------------------------------------------------------------------------------------------
# Specialties and what they bill


@dataclass(frozen=True)
class Visit:
    """A kind of encounter: relative weight, place of service, codes (``CODE`` or ``CODE-MOD``)."""

    weight: int
    pos: str
    codes: tuple[str, ...]


@dataclass(frozen=True)
class Specialty:
    group: str
    taxonomy: str
    volume: float
    """Relative claim volume of one provider of this specialty."""
    visits: tuple[Visit, ...]


def _v(weight: int, pos: str, *codes: str) -> Visit:
    return Visit(weight, pos, codes)


SPECIALTIES: dict[str, Specialty] = {
    specialty.group: specialty
    for specialty in (
        Specialty("cardiology", "207RC0000X", 1.0, (
            _v(4, "11", "99214"), _v(3, "11", "99213", "93000"), _v(2, "11", "99204-25", "93000"),
            _v(2, "11", "93306"), _v(1, "11", "93350"), _v(1, "11", "78452"), _v(1, "22", "93458-26"))),
        Specialty("orthopedic_surgery", "207X00000X", 1.0, (
            _v(3, "11", "99213"), _v(3, "11", "99214-25", "20610"), _v(2, "11", "99203"), _v(1, "11", "73721"),
            _v(2, "24", "29881"), _v(1, "24", "29827"), _v(1, "21", "27447"), _v(1, "21", "27130"))),
        Specialty("gastroenterology", "207RG0100X", 1.0, (
            _v(3, "11", "99214"), _v(2, "11", "99204"), _v(3, "24", "45378"), _v(2, "24", "45380"),
            _v(1, "24", "45385"), _v(2, "24", "43239"), _v(1, "24", "43235", "45378"))),
        Specialty("dermatology", "207N00000X", 1.0, (
            _v(3, "11", "99213"), _v(2, "11", "99214-25", "17000"), _v(3, "11", "11102"), _v(2, "11", "17000"),
            _v(1, "11", "17311", "17312"), _v(1, "11", "11042"), _v(1, "11", "99203"))),
        Specialty("neurology", "2084N0400X", 1.0, (
            _v(4, "11", "99214"), _v(2, "11", "99204"), _v(1, "11", "99205"), _v(2, "11", "99215"),
            _v(1, "11", "95810"), _v(1, "11", "95811"))),
        Specialty("ophthalmology", "207W00000X", 1.0, (
            _v(4, "11", "92014"), _v(1, "11", "99214"), _v(2, "11", "67028"), _v(2, "24", "66984"))),
        Specialty("psychiatry", "2084P0800X", 1.0, (
            _v(2, "11", "90791"), _v(2, "11", "90792"), _v(3, "11", "90834"), _v(4, "11", "90837"),
            _v(1, "11", "90853"), _v(2, "11", "99214"))),
        Specialty("ent", "207Y00000X", 1.0, (
            _v(2, "11", "99203"), _v(3, "11", "99213"), _v(2, "11", "99214-25", "31231"), _v(2, "11", "31231"),
            _v(2, "11", "69210"), _v(1, "24", "31237"))),
        Specialty("general_surgery", "208600000X", 1.0, (
            _v(3, "11", "99204"), _v(2, "11", "99214"), _v(2, "11", "99213"), _v(2, "22", "47562"),
            _v(2, "22", "49505"), _v(1, "21", "44970"), _v(1, "22", "19301"))),
        Specialty("urology", "208800000X", 1.0, (
            _v(2, "11", "99204"), _v(3, "11", "99214"), _v(2, "11", "51798"), _v(3, "11", "52000"),
            _v(1, "11", "99213", "51798"), _v(1, "24", "55700"))),
        Specialty("emergency_medicine", "207P00000X", 0.45, (
            _v(2, "23", "99283"), _v(4, "23", "99284"), _v(3, "23", "99285"), _v(1, "23", "99291"),
            _v(1, "23", "99285-25", "93010"))),
    )
}  # fmt: skip
NETWORK_SPECIALTIES = tuple(group for group in SPECIALTIES if group != "emergency_medicine")
"""Specialty groups with a 42 CFR 422.116 standard (the payer directory lists them)."""

# Practice location -> specialties of its rendering providers (one entry per provider).
STAFFING: dict[str, tuple[str, ...]] = {
    "77030": ("cardiology", "cardiology", "general_surgery", "gastroenterology", "emergency_medicine",
              "emergency_medicine"),
    "75246": ("orthopedic_surgery", "orthopedic_surgery", "neurology", "emergency_medicine"),
    "78705": ("psychiatry", "dermatology", "urology"),
    "78229": ("cardiology", "ophthalmology", "emergency_medicine"),
    "33136": ("ent", "cardiology", "emergency_medicine", "emergency_medicine", "gastroenterology"),
    "33606": ("orthopedic_surgery", "gastroenterology"),
    "32806": ("neurology", "urology"),
    "30309": ("cardiology", "gastroenterology", "psychiatry", "emergency_medicine"),
    "85006": ("orthopedic_surgery", "dermatology", "emergency_medicine"),
    "85719": ("psychiatry", "ophthalmology"),
    "80218": ("dermatology", "general_surgery", "emergency_medicine"),
    "28204": ("gastroenterology", "ent", "urology"),
    "27607": ("orthopedic_surgery", "neurology", "emergency_medicine"),
}  # fmt: skip

# ------------------------------------------------------------------------------------------------
# Payers


@dataclass(frozen=True)
class Product:
    name: str
    """Claim context product_type: PPO, HMO, EPO, POS, INDEMNITY, MA."""
    filing: str
    """CLP06 claim filing indicator."""
    weight: int


@dataclass(frozen=True)
class PayerSpec:
    payer_id: str
    name: str
    group: str
    states: tuple[str, ...]
    products: tuple[Product, ...]
    weight: float
    """Relative volume in each state of its footprint."""
    benchmark: str
    tolerance_amount: str
    tolerance_pct: str
    b6_rate: float
    """Share of claims on which the payer sends AMT*B6."""
    home_state: str | None
    ein: str
    city: str
    zip: str
    in_directory: bool
    """The payer's network directory is loaded (network/directory.csv)."""
    policy_note: str = ""

    @property
    def medicare_advantage(self) -> bool:
        return any(product.name == "MA" for product in self.products)


PPO = Product("PPO", "12", 1)
HMO = Product("HMO", "HM", 1)
EPO = Product("EPO", "14", 1)
POS = Product("POS", "13", 1)


def _p(product: Product, weight: int) -> Product:
    return Product(product.name, product.filing, weight)


PAYERS: tuple[PayerSpec, ...] = (
    PayerSpec("ACME1", "ACME HEALTH", "acme", STATES, (_p(PPO, 7), _p(HMO, 3)), 3.0,
              "max(150% medicare, 100% ucr80)", "5.00", "2", 1.0, None, "741234567", "CHICAGO", "60601", True),
    PayerSpec("BLUEP", "BLUEPEAK HEALTH PLAN", "bluepeak", STATES, (_p(PPO, 6), _p(EPO, 4)), 3.0,
              "140% medicare", "2.00", "1", 0.0, None, "742345678", "COLUMBUS", "43215", False),
    PayerSpec("CRSTN", "CRESTLINE INSURANCE", "crestline", STATES, (_p(PPO, 7), _p(POS, 3)), 0.6,
              "min(max(125% medicare, 100% ucr70), 90% billed)", "2.00", "1", 0.7, None, "743456789", "HARTFORD",
              "06103", False),
    PayerSpec("CRSTX", "CRESTLINE HEALTH PLAN OF TEXAS", "crestline", ("TX",), (_p(PPO, 5), _p(HMO, 5)), 0.5,
              "min(max(125% medicare, 100% ucr70), 90% billed)", "2.00", "1", 0.7, "TX", "744567890", "IRVING",
              "75039", False),
    PayerSpec("HRTLD", "HEARTLAND MUTUAL", "heartland", STATES, (Product("INDEMNITY", "15", 1),), 1.5,
              "85% billed", "1.00", "0", 0.5, None, "745678901", "OMAHA", "68102", False),
    PayerSpec("SILVR", "SILVER HARBOR MEDICARE ADVANTAGE", "silverharbor", STATES, (Product("MA", "16", 1),), 2.0,
              "100% medicare", "1.00", "0", 1.0, None, "746789012", "LOUISVILLE", "40202", True,
              "Medicare Advantage: pays OON providers the Medicare amount, minus 2% sequestration (CO-253)"),
    PayerSpec("SUNCO", "SUNCOAST HEALTH PARTNERS", "suncoast", ("FL",), (_p(HMO, 5), _p(PPO, 5)), 4.0,
              "max(130% medicare, 100% ucr60)", "2.00", "1", 0.6, "FL", "747890123", "TAMPA", "33602", True),
    PayerSpec("LSTAR", "LONE STAR BENEFIT CO", "lonestar", ("TX",), (_p(PPO, 5), _p(EPO, 5)), 2.2,
              "135% medicare", "1.00", "1", 0.5, "TX", "748901234", "AUSTIN", "78701", True),
    PayerSpec("PEACH", "PEACHTREE CARE PLANS", "peachtree", ("GA",), (_p(HMO, 5), _p(PPO, 5)), 4.0,
              "120% medicare", "1.00", "1", 0.8, "GA", "749012345", "ATLANTA", "30303", False),
    PayerSpec("DESRT", "DESERT SKY HEALTH", "desertsky", ("AZ",), (_p(EPO, 5), _p(PPO, 5)), 4.0,
              "100% ucr75", "2.00", "2", 0.5, "AZ", "740123456", "PHOENIX", "85004", True),
    PayerSpec("ROCKY", "ROCKY RIDGE HEALTH", "rockyridge", ("CO",), (_p(HMO, 5), _p(PPO, 5)), 4.0,
              "max(125% medicare, 100% ucr50)", "1.00", "1", 0.6, "CO", "741122334", "DENVER", "80202", True),
    PayerSpec("PIEDM", "PIEDMONT SHIELD", "piedmont", ("NC",), (_p(HMO, 5), _p(PPO, 5)), 3.0,
              "150% medicare", "1.00", "1", 0.9, "NC", "742233445", "DURHAM", "27701", False),
)  # fmt: skip
PAYER_BY_ID = {payer.payer_id: payer for payer in PAYERS}

SPIKE_GROUP = "crestline"
"""The payer group that starts underpaying office visits in the last remittance week (the spike)."""
SPIKE_CODES = ("99204", "99213", "99214")
SPIKE_ALLOWED_SHARE = (Decimal("0.57"), Decimal("0.63"))
CHRONIC_PAYER = "PEACH"
CHRONIC_CODES = ("93306",)
CHRONIC_ALLOWED_SHARE = (Decimal("0.64"), Decimal("0.68"))
SECONDARY_PAYERS = ("HRTLD", "BLUEP")
"""Payers that pay as secondary (CLP02 2, OA-23). Not in the directory, so no gap conclusion for them."""

# ------------------------------------------------------------------------------------------------
# Contracts and single-case agreements (fictional)

FEE_SCHEDULE_HEADER = (
    "payer_id", "product", "code", "modifier", "pos_class", "effective_from", "effective_to", "rate_type", "rate",
    "ucr_percentile", "lesser_of_billed", "escalator_pct", "escalator_base_date", "notes",
)  # fmt: skip
FEE_SCHEDULES: tuple[tuple[str, ...], ...] = (
    ("ACME1", "PPO", "99203", "", "nonfacility", "2023-01-01", "", "fixed", "140.00", "", "false", "3", "2023-01-01",
     "office visits, +3%/year"),
    ("ACME1", "PPO", "99204", "", "nonfacility", "2023-01-01", "", "fixed", "190.00", "", "false", "3", "2023-01-01",
     ""),
    ("ACME1", "PPO", "99213", "", "nonfacility", "2023-01-01", "", "fixed", "105.00", "", "false", "3", "2023-01-01",
     ""),
    ("ACME1", "PPO", "99214", "", "nonfacility", "2023-01-01", "", "fixed", "150.00", "", "false", "3", "2023-01-01",
     ""),
    ("BLUEP", "", "45378", "", "any", "2024-01-01", "", "pct_medicare", "140", "", "false", "", "", "endoscopy"),
    ("BLUEP", "", "45380", "", "any", "2024-01-01", "", "pct_medicare", "140", "", "false", "", "", ""),
    ("BLUEP", "", "43239", "", "any", "2024-01-01", "", "pct_medicare", "140", "", "false", "", "", ""),
    ("BLUEP", "", "93306", "", "nonfacility", "2024-01-01", "2024-12-31", "fixed", "240.00", "", "false", "", "", ""),
    ("BLUEP", "", "93306", "", "nonfacility", "2025-01-01", "", "fixed", "255.00", "", "false", "", "", "2025 rate"),
    ("HRTLD", "", "66984", "", "any", "2024-01-01", "", "pct_billed", "70", "", "false", "", "", "cataract"),
    ("CRSTN", "", "99284", "", "facility", "2024-01-01", "", "pct_ucr", "100", "80", "false", "", "", "emergency"),
    ("CRSTN", "", "99285", "", "facility", "2024-01-01", "", "pct_ucr", "100", "80", "false", "", "", "emergency"),
    ("LSTAR", "EPO", "99214", "", "any", "2024-01-01", "", "fixed", "135.00", "", "true", "", "", "lesser of billed"),
    ("PIEDM", "HMO", "90834", "", "any", "2024-07-01", "", "fixed", "118.00", "", "false", "", "", "psychotherapy"),
    ("PIEDM", "HMO", "90837", "", "any", "2024-07-01", "", "fixed", "160.00", "", "false", "", "", ""),
)  # fmt: skip

SCA_HEADER = (
    "sca_id", "payer_id", "patient_key", "payer_claim_id", "authorization_number", "codes", "rate_type", "rate",
    "ucr_percentile", "lesser_of_billed", "escalator_pct", "escalator_base_date", "effective_from", "effective_to",
    "notes",
)  # fmt: skip


@dataclass(frozen=True)
class ScaPlan:
    """A single-case agreement and the one claim it covers (drawn by the generator)."""

    sca_id: str
    payer_id: str
    location_zip: str
    specialty: str
    codes: tuple[str, ...]
    """The visit the claim bills (codes of SPECIALTIES' visits)."""
    pos: str
    match_on: str
    """authorization_number or payer_claim_id."""
    match_value: str
    row: tuple[str, ...]
    """rate_type, rate, ucr_percentile, lesser_of_billed, codes column."""
    honored: bool
    product: str
    note: str


SCAS: tuple[ScaPlan, ...] = (
    ScaPlan("SCA-TX-0001", "LSTAR", "75246", "orthopedic_surgery", ("27447",), "21", "authorization_number",
            "AUTH-TX-0001", ("pct_billed", "80", "", "false", "27447;27130"), True, "PPO",
            "knee replacement, no in-network surgeon accepting the case"),
    ScaPlan("SCA-FL-0002", "SUNCO", "33136", "cardiology", ("93458-26",), "22", "authorization_number",
            "AUTH-FL-0002", ("pct_medicare", "175", "", "true", "*"), False, "HMO",
            "cardiac catheterization; the payer paid its OON rate instead (planted: SCA not honored)"),
    ScaPlan("SCA-NC-0003", "PIEDM", "28204", "gastroenterology", ("43239",), "24", "payer_claim_id",
            "PD2599000001", ("pct_billed", "85", "", "false", "*"), True, "HMO", "one claim, every line"),
    ScaPlan("SCA-CO-0004", "ROCKY", "80218", "dermatology", ("17311", "17312"), "11", "authorization_number",
            "AUTH-CO-0004", ("fixed", "950.00", "", "true", "17311"), True, "PPO", "Mohs surgery, first stage"),
    ScaPlan("SCA-AZ-0005", "DESRT", "85719", "psychiatry", ("90837",), "11", "authorization_number",
            "AUTH-AZ-0005", ("pct_medicare", "160", "", "false", "90837;90791"), True, "EPO",
            "psychotherapy series"),
)  # fmt: skip

# ------------------------------------------------------------------------------------------------
# Planted network gaps


@dataclass(frozen=True)
class GapPlan:
    """A payer + specialty + county where the payer's directory is inadequate (planted)."""

    gap_id: str
    kind: str
    """distance (no in-network location within the standard) or count (fewer than min_providers)."""
    payer_id: str
    product: str
    specialty: str
    area: PatientArea
    claims: int
    denials: tuple[str, ...]
    """CARC of each denied claim (the first claims), e.g. ('242', '242')."""
    min_providers: int | None = None

    @property
    def region(self) -> str:
        return self.area.region

    @property
    def filing(self) -> str:
        return next(product.filing for product in PAYER_BY_ID[self.payer_id].products if product.name == self.product)

    def expected_rules(self) -> list[str]:
        rules = ["distance_gap" if self.kind == "distance" else "count_gap"]
        if self.denials and self.filing in ("HM", "14", "16"):
            rules.append("denial_gap")
        if self.filing == "16":
            rules.append("medicare_advantage_access")
        if self.claims >= 3:
            rules.append("recurrence")
        return rules


_PIMA = next(area for area in CATCHMENTS["85719"] if area.county_fips == "04019")
GAPS: tuple[GapPlan, ...] = (
    GapPlan("gap-tx-lonestar-cardiology", "distance", "LSTAR", "EPO", "cardiology", GAP_AREAS[0], 4, ("242", "242")),
    GapPlan("gap-nc-silverharbor-orthopedics", "distance", "SILVR", "MA", "orthopedic_surgery", GAP_AREAS[1], 4,
            ("243",)),
    GapPlan("gap-co-rockyridge-dermatology", "distance", "ROCKY", "HMO", "dermatology", GAP_AREAS[2], 3, ("279",)),
    GapPlan("gap-fl-suncoast-ent", "distance", "SUNCO", "PPO", "ent", GAP_AREAS[3], 3, ()),
    GapPlan("gap-az-desertsky-psychiatry", "count", "DESRT", "EPO", "psychiatry", _PIMA, 3, (), min_providers=3),
)  # fmt: skip
GAP_CONTROL_PAYER = "ACME1"
"""In each distance-gap county, one claim of this payer for the same specialty: it has an in-network location
there, so no gap (a negative control)."""

# ------------------------------------------------------------------------------------------------
# Names (fictional, for the 835 NM1 segments only: the parser drops them)

FIRST_NAMES = ("ALEX", "JORDAN", "CASEY", "MORGAN", "TAYLOR", "RILEY", "JAMIE", "AVERY", "QUINN", "DREW", "SAGE",
               "ROBIN", "KENDALL", "PARKER", "REESE", "EMERSON", "HAYDEN", "LOGAN", "PEYTON", "SKYLER")  # fmt: skip
LAST_NAMES = ("ALDER", "BRISTOW", "CALLOWAY", "DUNMORE", "ELLSWORTH", "FAIRBANK", "GARROWAY", "HOLLOWAY", "IVERS",
              "JUNIPER", "KESTREL", "LINDQVIST", "MARROW", "NETTLETON", "ORCHARD", "PEMBERLY", "QUILLFEATHER",
              "ROWANTREE", "SILVERTON", "THISTLEWOOD", "UNDERHILL", "VANTERPOOL", "WHITLOCK", "YARBROUGH")  # fmt: skip


# ------------------------------------------------------------------------------------------------
# The world


@dataclass(frozen=True)
class Provider:
    npi: str
    specialty: str
    taxonomy: str
    location_zip: str
    state: str
    first: str
    last: str


@dataclass(frozen=True)
class Payee:
    """The group's billing entity in one state: N1*PE, payee_id of the claim context."""

    state: str
    npi: str
    tin: str
    name: str
    city: str
    zip: str


PRICING_MODIFIERS = ("26", "TC", "53")


def price_key(code_key: str) -> str:
    """``99214-25`` -> ``99214``; ``93458-26`` -> ``93458-26`` (only 26/TC/53 change the price)."""
    code, _, modifier = code_key.partition("-")
    return f"{code}-{modifier}" if modifier in PRICING_MODIFIERS else code


def all_price_keys() -> tuple[str, ...]:
    return tuple(sorted({price_key(code) for s in SPECIALTIES.values() for v in s.visits for code in v.codes}))


def npi_with_check_digit(base9: str) -> str:
    """Append the Luhn check digit (computed with the 80840 health-industry prefix) to 9 digits."""
    digits = [int(char) for char in "80840" + base9]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 0:  # the check digit will sit at the right, so these positions are doubled
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return base9 + str((10 - total % 10) % 10)


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class World:
    seed: int
    providers: tuple[Provider, ...]
    payees: dict[str, Payee]
    charge_factors: dict[str, Decimal]
    """(code or code-modifier) -> multiple of the highest Medicare amount of a state (2.2 to 3.8)."""
    ucr_jitter: dict[tuple[str, str], Decimal]
    """(geozip, code key) -> factor around 1 applied to every percentile."""
    medicare: MedicareReference = field(repr=False)
    pricing_date: dt.date = dt.date(2025, 7, 1)

    # -- lookups -----------------------------------------------------------------------------------

    @cached_property
    def providers_by_location(self) -> dict[str, tuple[Provider, ...]]:
        result: dict[str, list[Provider]] = {}
        for provider in self.providers:
            result.setdefault(provider.location_zip, []).append(provider)
        return {key: tuple(value) for key, value in result.items()}

    @cached_property
    def price_keys(self) -> tuple[str, ...]:
        """Every billed code with its pricing modifier (``99214``, ``93458-26``), sorted."""
        return all_price_keys()

    def medicare_unit(self, code_key: str, zip5: str, facility: bool) -> Decimal:
        code, _, modifier = code_key.partition("-")
        pricing_modifier = modifier if modifier in PRICING_MODIFIERS else ""
        amount = medicare_amount(
            self.medicare, code, pricing_modifier, date=self.pricing_date, facility=facility, zip_code=zip5
        ).amount
        if amount is None:
            raise ValueError(f"no Medicare amount for {code_key} at {zip5}: the world bills only payable codes")
        return amount

    @cached_property
    def charges(self) -> dict[tuple[str, str], Decimal]:
        """(state, code key) -> the group's charge per unit: a multiple (2.2-3.8) of the highest Medicare amount
        of the code at the state's practice locations (facility or not), rounded up to whole dollars."""
        result: dict[tuple[str, str], Decimal] = {}
        for state in STATES:
            zips = [location.zip for location in LOCATIONS if location.state == state]
            for key in self.price_keys:
                highest = max(self.medicare_unit(key, zip5, facility) for zip5 in zips for facility in (False, True))
                result[(state, key)] = (highest * self.charge_factors[key]).quantize(Decimal(1), rounding=ROUND_CEILING)
        return result

    def charge(self, state: str, code_key: str) -> Decimal:
        """The charge per unit of ``CODE`` or ``CODE-MOD`` (a non-pricing modifier such as 25 changes nothing)."""
        return self.charges[(state, price_key(code_key))]


def build_world(seed: int) -> World:
    rng = random.Random(f"claimwatch-simulate-world-{seed}")
    providers: list[Provider] = []
    used_npis: set[str] = set()

    def new_npi(first_digit: str) -> str:
        while True:
            npi = npi_with_check_digit(first_digit + f"{rng.randrange(10**8):08d}")
            if npi not in used_npis:
                used_npis.add(npi)
                return npi

    payees = {}
    for state in STATES:
        location = next(location for location in LOCATIONS if location.state == state)
        payees[state] = Payee(
            state=state,
            npi=new_npi("1"),
            tin=f"{rng.randrange(10, 99)}{rng.randrange(10**7):07d}",
            name=f"{GROUP_NAME} OF {state}",
            city=location.city,
            zip=location.zip,
        )
    for location in LOCATIONS:
        for specialty in STAFFING[location.zip]:
            providers.append(
                Provider(
                    npi=new_npi("1"),
                    specialty=specialty,
                    taxonomy=SPECIALTIES[specialty].taxonomy,
                    location_zip=location.zip,
                    state=location.state,
                    first=rng.choice(FIRST_NAMES),
                    last=rng.choice(LAST_NAMES),
                )
            )
    code_keys = all_price_keys()
    charge_factors = {key: Decimal(rng.randrange(220, 381)) / 100 for key in code_keys}
    ucr_jitter = {
        (location.zip[:3], key): Decimal(rng.randrange(94, 107)) / 100 for location in LOCATIONS for key in code_keys
    }
    medicare = load_medicare(medicare_files())
    return World(
        seed=seed,
        providers=tuple(providers),
        payees=payees,
        charge_factors=charge_factors,
        ucr_jitter=ucr_jitter,
        medicare=medicare,
    )


# ------------------------------------------------------------------------------------------------
# Reference files


def medicare_files() -> dict[str, bytes]:
    """The demo Medicare PFS subset (real CMS 2025 files), as ``medicare/<year>/<name>`` -> bytes."""
    files: dict[str, bytes] = {}
    for path in sorted(DEMO_MEDICARE.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            files[f"medicare/{path.relative_to(DEMO_MEDICARE).as_posix()}"] = path.read_bytes()
    if not files:
        raise FileNotFoundError(f"the demo Medicare files are missing under {DEMO_MEDICARE}")
    return files


def _csv(comment: str | None, header: tuple[str, ...] | list[str], rows) -> bytes:
    out = io.StringIO()
    if comment:
        out.write(comment.rstrip("\n") + "\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


UCR_MULTIPLES = (  # percentile -> multiple of the local non-facility Medicare amount (synthetic)
    ("p50", Decimal("1.05")), ("p60", Decimal("1.15")), ("p70", Decimal("1.28")), ("p75", Decimal("1.36")),
    ("p80", Decimal("1.45")), ("p85", Decimal("1.55")), ("p90", Decimal("1.68")), ("p95", Decimal("1.85")),
)  # fmt: skip


def directory_rows(world: World) -> list[tuple[str, str, str, str]]:
    """(payer_id, product_type, specialty_group, provider_zip): one in-network location per patient ZIP of the
    payer's states and per specialty group, minus the planted gaps (and three per ZIP where a county minimum
    count is planted, except for the payer of that count gap, which gets one)."""
    gaps = {(gap.payer_id, gap.specialty, gap.area.county_fips): gap for gap in GAPS}
    count_counties = {(gap.specialty, gap.area.county_fips): gap for gap in GAPS if gap.kind == "count"}
    areas = sorted(AREA_BY_ZIP.values(), key=lambda area: (area.state, area.county_fips, area.zip))
    rows: list[tuple[str, str, str, str]] = []
    for payer in PAYERS:
        if not payer.in_directory:
            continue
        product = "MA" if payer.medicare_advantage else ""
        for specialty in NETWORK_SPECIALTIES:
            for area in areas:
                if area.state not in payer.states:
                    continue
                gap = gaps.get((payer.payer_id, specialty, area.county_fips))
                count_gap = count_counties.get((specialty, area.county_fips))
                if gap is not None and gap.kind == "distance":
                    continue
                copies = 1
                if count_gap is not None:
                    if gap is not None:
                        # the payer of the count gap: one location in the county (below the minimum)
                        copies = 1 if area.zip == count_gap.area.zip else 0
                    else:
                        copies = count_gap.min_providers or 1
                rows.extend([(payer.payer_id, product, specialty, area.zip)] * copies)
    return rows


def reference_files(world: World) -> dict[str, bytes]:
    """Every file of the reference folder ``DIR/reference`` as {relative path: bytes}."""
    note = FICTIONAL.format(seed=world.seed)
    files = medicare_files()
    files["payers.csv"] = _csv(
        note,
        ("payer_id", "payer_name", "payer_group", "state", "notes"),
        [
            (payer.payer_id, payer.name.title(), payer.group, payer.home_state or "", payer.policy_note)
            for payer in PAYERS
        ],
    )
    files["payer_policies.csv"] = _csv(
        note,
        ("payer_id", "benchmark", "tolerance_amount", "tolerance_pct", "notes"),
        [("*", "140% medicare", "1.00", "1", "default for payers without a row")]
        + [(p.payer_id, p.benchmark, p.tolerance_amount, p.tolerance_pct, "") for p in PAYERS],
    )
    files["fee_schedules.csv"] = _csv(note, FEE_SCHEDULE_HEADER, FEE_SCHEDULES)
    files["scas.csv"] = _csv(
        note,
        SCA_HEADER,
        [
            (
                plan.sca_id, plan.payer_id, "",
                plan.match_value if plan.match_on == "payer_claim_id" else "",
                plan.match_value if plan.match_on == "authorization_number" else "",
                plan.row[4], plan.row[0], plan.row[1], plan.row[2], plan.row[3], "", "",
                "2025-01-01", "2026-06-30", plan.note,
            )
            for plan in SCAS
        ],
    )  # fmt: skip
    ucr_rows = []
    for location in LOCATIONS:
        geozip = location.zip[:3]
        for key in world.price_keys:
            code, _, modifier = key.partition("-")
            base = world.medicare_unit(key, location.zip, facility=False) * world.ucr_jitter[(geozip, key)]
            ucr_rows.append([geozip, code, modifier] + [str(money(base * multiple)) for _, multiple in UCR_MULTIPLES])
    ucr_rows.sort()
    files["ucr.csv"] = _csv(
        "# SYNTHETIC UCR table written by `claimwatch simulate`: fictional multiples of Medicare, NOT FAIR Health "
        "or any licensed data",
        ("geozip", "code", "modifier", *(name for name, _ in UCR_MULTIPLES)),
        ucr_rows,
    )
    files["network/roster.csv"] = _csv(
        note,
        ("npi", "taxonomy_code", "specialty_group", "practice_zip", "state", "tin"),
        [(p.npi, p.taxonomy, p.specialty, p.location_zip, p.state, world.payees[p.state].tin) for p in world.providers],
    )
    files["network/directory.csv"] = _csv(
        note + "; in-network provider locations of the payers whose directory is loaded (planted gaps: see manifest)",
        ("payer_id", "product_type", "specialty_group", "provider_zip"),
        directory_rows(world),
    )
    county_rows = sorted(
        {(area.county_fips, area.county_type) for area in AREA_BY_ZIP.values()}, key=lambda row: row[0]
    )
    files["network/county_types.csv"] = _csv(
        note + "; illustrative county types (large metro cores, metro catchments, outlying micro/rural counties)",
        ("county_fips", "county_type"),
        county_rows,
    )
    files["network/adequacy_standards.csv"] = _csv(
        note + "; a county minimum provider count (planted count gap); other rows: shipped 422.116 defaults",
        ("specialty_group", "county_type", "county_fips", "max_minutes", "max_miles", "min_providers", "notes"),
        [
            (gap.specialty, "", gap.area.county_fips, "", "", str(gap.min_providers), "planted: " + gap.gap_id)
            for gap in GAPS
            if gap.kind == "count"
        ],
    )
    return dict(sorted(files.items()))
