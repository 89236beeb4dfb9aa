"""Synthetic, balanced X12 835 files for benchmarks, tests and demos.

Everything here is made up: names are the same placeholder for every patient, member ids are random
digits. The text is realistic in shape (several service lines per claim, claim and line CAS, AMT*B6 that
is sometimes missing, LQ*HE remarks, MOA, reversals, PLB) and every balancing rule holds, so a correct
parser reports no balance issue and no warning on it.

``generate_835(n_claims, seed)`` returns the whole text; ``iter_835`` yields it in pieces and
``write_835`` streams it to a file, so large files (hundreds of MB) can be written without holding them
in memory.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

CENT = Decimal("0.01")

_PROCEDURES = (
    "99213", "99214", "99215", "99203", "99204", "20610", "36415", "71046", "73721", "80053",
    "85025", "93000", "97110", "97140", "G0439", "J1100", "11042", "29881", "45378", "64483",
)  # fmt: skip
_MODIFIERS = ("25", "59", "26", "TC", "LT", "RT", "50", "GP", "XU", "QW")
_REMARKS = ("N130", "M15", "N381", "MA130", "N830", "N876", "M80", "N20")
_FILING = ("12", "13", "14", "15", "CI", "HM", "MB", "BL")


def _money(value: Decimal) -> str:
    """X12 style: no trailing zeros after the point (``12.5``, ``12``), sign kept."""
    text = format(value.quantize(CENT), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def _cents(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low, high)) * CENT


class _World:
    """The repeated structure of real remittances: one charge master, fee schedules, a patient panel."""

    def __init__(self, rng: random.Random, n_claims: int, unique_amounts: bool):
        self.rng = rng
        self.unique_amounts = unique_amounts
        self.charges = {code: _cents(rng, 8_000, 300_000) for code in _PROCEDURES}
        self.fee_schedules = {
            filing: {
                code: (charge * Decimal(rng.randint(35, 90)) / 100).quantize(CENT)
                for code, charge in self.charges.items()
            }
            for filing in _FILING
        }
        self.copays = {filing: Decimal(rng.choice((0, 0, 20, 30, 40, 50))) for filing in _FILING}
        self.members = [f"{rng.randint(0, 10**9 - 1):09d}" for _ in range(max(20, n_claims // 3))]
        self.renderings = [f"1{rng.randint(0, 10**9 - 1):09d}" for _ in range(25)]

    def prices(self, code: str, filing: str, units: int) -> tuple[Decimal, Decimal]:
        """(charge, allowed) for ``units`` of ``code``: fixed per code and product unless unique_amounts."""
        if self.unique_amounts:
            charge = _cents(self.rng, 5_000, 250_000)
            return charge, (charge * Decimal(self.rng.randint(40, 95)) / 100).quantize(CENT)
        return self.charges[code] * units, self.fee_schedules[filing][code] * units


def _claim_segments(world: _World, number: int, service_date: dt.date) -> tuple[list[list[str]], Decimal]:
    """Segments (as element lists, tag first) of one LX + CLP loop, and its CLP04."""
    rng = world.rng
    filing = rng.choice(_FILING)
    lines: list[list[list[str]]] = []
    claim_charge = Decimal(0)
    claim_paid = Decimal(0)
    claim_pr = Decimal(0)
    day = service_date.strftime("%Y%m%d")
    deductible_left = _cents(rng, 0, 50_000) if rng.random() < 0.3 else Decimal(0)
    copay = world.copays[filing]
    for line_number in range(rng.randint(1, 5)):
        code = rng.choice(_PROCEDURES)
        units = rng.choice((1, 1, 1, 1, 2, 3))
        charge, allowed = world.prices(code, filing, units)
        denied = rng.random() < 0.08
        if denied:
            allowed = Decimal(0)
        contractual = charge - allowed
        deductible = min(allowed, deductible_left)
        deductible_left -= deductible
        if line_number == 0 and copay and not denied:
            patient_share = min(allowed - deductible, copay)
            share_reason = "3"
        else:
            patient_share = ((allowed - deductible) * Decimal("0.2")).quantize(CENT)
            share_reason = "2"
        paid = allowed - deductible - patient_share
        modifiers = rng.sample(_MODIFIERS, rng.choice((0, 0, 0, 1, 1, 2)))
        composite = ":".join(["HC", code, *modifiers])
        segments = [["SVC", composite, _money(charge), _money(paid), "", str(units)]]
        segments.append(["DTM", "472", day])
        if denied:
            segments.append(["CAS", "CO", rng.choice(("97", "242", "279")), _money(charge)])
        else:
            segments.append(["CAS", "CO", "45", _money(contractual)])
            patient = ["CAS", "PR"]
            if deductible:
                patient += ["1", _money(deductible), ""]
            if patient_share:
                patient += [share_reason, _money(patient_share), ""]
            if len(patient) > 2:
                while patient[-1] == "":
                    patient.pop()
                segments.append(patient)
        segments.append(["REF", "6R", f"{number:07d}{line_number:02d}"])
        if not denied and rng.random() < 0.7:
            segments.append(["AMT", "B6", _money(allowed)])
        if denied or rng.random() < 0.2:
            segments.append(["LQ", "HE", rng.choice(_REMARKS)])
        lines.append(segments)
        claim_charge += charge
        claim_paid += paid
        claim_pr += deductible + patient_share
    reversal = rng.random() < 0.03
    sign = Decimal(-1) if reversal else Decimal(1)
    if reversal:
        for segments in lines:
            for segment in segments:
                if segment[0] == "SVC":
                    segment[2] = _money(-Decimal(segment[2]))
                    segment[3] = _money(-Decimal(segment[3]))
                elif segment[0] == "CAS":
                    for index in range(3, len(segment), 3):
                        if segment[index]:
                            segment[index] = _money(-Decimal(segment[index]))
                elif segment[0] == "AMT":
                    segment[2] = _money(-Decimal(segment[2]))
    if reversal:
        status = "22"
    elif claim_paid == 0:
        status = "4"
    else:
        status = rng.choice(("1", "1", "1", "1", "2"))
    member = rng.choice(world.members)
    claim: list[list[str]] = [
        ["LX", str(number)],
        [
            "CLP", f"PCN{number:08d}", status, _money(sign * claim_charge), _money(sign * claim_paid),
            _money(sign * claim_pr), filing, f"PCID{rng.randint(0, 10**12):012d}", "11", "1",
        ],
        ["NM1", "QC", "1", "PATIENT", "SYNTHETIC", "", "", "", "MI", member],
        ["NM1", "82", "1", "RENDERING", "SYNTHETIC", "", "", "", "XX", rng.choice(world.renderings)],
    ]  # fmt: skip
    if rng.random() < 0.3:
        claim.append(["MOA", "", "", rng.choice(_REMARKS)])
    claim.append(["DTM", "050", (service_date + dt.timedelta(days=3)).strftime("%Y%m%d")])
    claim.append(["AMT", "AU", _money(sign * claim_charge)])
    for segments in lines:
        claim.extend(segments)
    return claim, sign * claim_paid


def iter_835(
    n_claims: int,
    seed: int = 0,
    *,
    claims_per_transaction: int = 500,
    newline: str = "\n",
    unique_amounts: bool = False,
) -> Iterator[str]:
    """Yield the text of a synthetic 835 in pieces: one ISA/GS, one ST per ``claims_per_transaction``.

    By default amounts repeat the way real remittances do (one charge master, one fee schedule per
    product, a panel of patients seen several times, services within a few weeks); ``unique_amounts=True``
    draws every charge and allowed amount at random instead (a worst case for caches).
    """
    rng = random.Random(seed)
    world = _World(rng, n_claims, unique_amounts)
    control = f"{rng.randint(1, 999_999_999):09d}"
    end = "~" + newline
    yield (
        f"ISA*00*          *00*          *ZZ*SYNTHPAYER     *ZZ*SYNTHPROVIDER  *250101*1200*^*00501*{control}"
        f"*0*P*:{end}"
    )
    yield f"GS*HP*SYNTHPAYER*SYNTHPROVIDER*20250101*1200*1*X*005010X221A1{end}"
    transactions = 0
    number = 0
    base = dt.date(2025, 3, 3)
    while number < n_claims:
        transactions += 1
        count = min(claims_per_transaction, n_claims - number)
        body: list[list[str]] = []
        total_paid = Decimal(0)
        for _ in range(count):
            number += 1
            service_date = base + dt.timedelta(days=rng.randint(0, 60))
            claim, paid = _claim_segments(world, number, service_date)
            body.extend(claim)
            total_paid += paid
        trailer: list[list[str]] = []
        plb_total = Decimal(0)
        if rng.random() < 0.5:
            interest = -_cents(rng, 1, 2_000)
            withhold = _cents(rng, 1, 5_000)
            plb_total = interest + withhold
            trailer.append(
                ["PLB", "1999999999", "20251231", "L6", _money(interest), f"WO:PCN{number:08d}", _money(withhold)]
            )
        payment = total_paid - plb_total
        payment_date = (base + dt.timedelta(days=90 + transactions)).strftime("%Y%m%d")
        header = [
            ["ST", "835", f"{transactions:04d}", "005010X221A1"],
            [
                "BPR", "I", _money(payment), "C", "ACH", "CCP", "01", "999999999", "DA", "123456",
                "1512345678", "", "01", "999988880", "DA", "98765", payment_date,
            ],
            ["TRN", "1", f"EFT{transactions:08d}", "1512345678"],
            ["DTM", "405", payment_date],
            ["N1", "PR", "SYNTHETIC HEALTH PLAN", "XV", "SYNPAYER01"],
            ["N3", "1 PLAN WAY"],
            ["N4", "ANYTOWN", "NY", "10001"],
            ["PER", "BL", "PROVIDER SERVICES", "TE", "8005550100"],
            ["N1", "PE", "SYNTHETIC SPECIALISTS", "XX", "1234567893"],
            ["REF", "TJ", "123456789"],
        ]  # fmt: skip
        segments = header + body + trailer
        yield "".join("*".join(segment) + end for segment in segments)
        yield f"SE*{len(segments) + 1}*{transactions:04d}{end}"
    yield f"GE*{transactions}*1{end}IEA*1*{control}{end}"


def generate_835(n_claims: int, seed: int = 0, **options) -> str:
    """The whole text of a synthetic, balanced 835 with ``n_claims`` claims (see ``iter_835``)."""
    return "".join(iter_835(n_claims, seed, **options))


def write_835(path: Path | str, n_claims: int, seed: int = 0, **options) -> int:
    """Stream a synthetic 835 to ``path``; returns its size in bytes."""
    size = 0
    with open(path, "w", encoding="ascii", newline="") as handle:
        for piece in iter_835(n_claims, seed, **options):
            handle.write(piece)
            size += len(piece)
    return size
