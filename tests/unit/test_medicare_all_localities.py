"""Every status-A PPRRVU row at every 2025 locality, facility and non-facility, against an independent
recomputation (plain csv module + Decimal, fixed CMS 2025 column positions). Guards the loader's joins:
column lookup by header names, carrier/locality zero padding, ZIP5 -> GPCI."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from services.pricing.medicare import load_medicare, medicare_amount, resolve_locality

DAY = dt.date(2025, 7, 1)
CENT = Decimal("0.01")


def independent_rvus(folder: Path) -> list[dict]:
    with (folder / "PPRRVU2025_Oct.csv").open(encoding="latin-1", newline="") as handle:
        rows = list(csv.reader(handle))
    header = next(index for index, row in enumerate(rows) if row and row[0] == "HCPCS")
    names = rows[header]
    # CMS 2025 layout, checked here rather than trusted
    assert names[0:2] == ["HCPCS", "MOD"] and names[3] == "CODE" and names[5] == "RVU" and names[24] == "FACTOR"
    assert rows[header - 1][6] == "NON-FAC" and rows[header - 1][8] == "FACILITY" and rows[header - 1][10] == "MP"
    assert rows[header - 4][28] == "NON-FACILITY" and rows[header - 4][29] == "FACILITY"
    result = []
    for row in rows[header + 1 :]:
        if not row or row[3] != "A":
            continue
        result.append(
            {
                "code": row[0],
                "mod": row[1],
                "work": Decimal(row[5]),
                "pe_nf": Decimal(row[6]),
                "pe_f": Decimal(row[8]),
                "mp": Decimal(row[10]),
                "cf": Decimal(row[24]),
                "opps_nf": Decimal(row[28]),
                "opps_f": Decimal(row[29]),
                "opps_mp": Decimal(row[30]),
            }
        )
    return result


def independent_gpcis(folder: Path) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    with (folder / "GPCI2025.csv").open(encoding="latin-1", newline="") as handle:
        rows = list(csv.reader(handle))
    gpcis = {}
    for row in rows:
        if row and row[0].isdigit():
            gpcis[f"{int(row[0]):05d}-{int(row[2]):02d}"] = (Decimal(row[4]), Decimal(row[5]), Decimal(row[6]))
    return gpcis


def expected_amount(rvu: dict, gpci: tuple[Decimal, Decimal, Decimal], facility: bool) -> Decimal:
    work_g, pe_g, mp_g = gpci
    pe = rvu["pe_f"] if facility else rvu["pe_nf"]
    pfs = ((rvu["work"] * work_g) + (pe * pe_g) + (rvu["mp"] * mp_g)) * rvu["cf"]
    pfs = pfs.quantize(CENT, rounding=ROUND_HALF_UP)
    if rvu["opps_nf"] or rvu["opps_f"] or rvu["opps_mp"]:
        opps_pe = rvu["opps_f"] if facility else rvu["opps_nf"]
        cap = ((rvu["work"] * work_g) + (opps_pe * pe_g) + (rvu["opps_mp"] * mp_g)) * rvu["cf"]
        pfs = min(pfs, cap.quantize(CENT, rounding=ROUND_HALF_UP))
    return pfs


@pytest.fixture(scope="module")
def loaded(cms_2025_dir):
    files = {f"medicare/2025/{path.name}": path.read_bytes() for path in cms_2025_dir.iterdir()}
    return load_medicare(files)


@pytest.mark.slow  # ~2 million amounts: 15-30 s
def test_every_status_a_row_at_every_locality_both_settings(cms_2025_dir, loaded):
    rvus = independent_rvus(cms_2025_dir)
    gpcis = independent_gpcis(cms_2025_dir)
    assert len(gpcis) == 109 and len(rvus) > 9000
    assert {rvu["mod"] for rvu in rvus} >= {"", "26", "TC"}
    checked = 0
    mismatches = []
    for locality, gpci in gpcis.items():
        for facility in (False, True):
            for rvu in rvus:
                result = medicare_amount(
                    loaded, rvu["code"], rvu["mod"], date=DAY, facility=facility, locality=locality
                )
                want = expected_amount(rvu, gpci, facility)
                if result.amount != want or result.locality_key != locality:
                    mismatches.append((rvu["code"], rvu["mod"], locality, facility, result.amount, want))
                checked += 1
    assert not mismatches[:20], f"{len(mismatches)} mismatches, first: {mismatches[:20]}"
    assert checked == len(rvus) * len(gpcis) * 2


def test_every_zip_joins_to_its_gpci(cms_2025_dir, loaded):
    gpcis = independent_gpcis(cms_2025_dir)
    year = loaded.years[2025]
    count = 0
    with (cms_2025_dir / "ZIP5_OCT2025.txt").open(encoding="latin-1") as handle:
        for text in handle:
            if not text.strip():
                continue
            zip_code, key = text[2:7], f"{text[7:12]}-{text[12:14]}"
            gpci, reason, _, _ = resolve_locality(year, zip_code=zip_code)
            assert reason is None, (zip_code, reason)
            assert gpci.key == key and (gpci.work, gpci.pe, gpci.mp) == gpcis[key], zip_code
            count += 1
    assert count == 42956
