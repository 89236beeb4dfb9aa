#!/usr/bin/env python3
"""Write the demo pricing reference under services/reference/demo/ from the real CMS 2025 files.

    python scripts/make_demo_medicare.py [--cms ../shared/data/cms/pfs2025] [--out services/reference/demo]

Medicare (real CMS data, subset): PPRRVU rows of DEMO_CODES (every modifier row: global, 26, TC, 53) with
CMS's header rows kept, GPCI and LOCCO complete, ZIP5 rows of DEMO_STATES. The other files are fictional
demo data written from the constants below; ucr.csv is SYNTHETIC (multiples of the national Medicare
amount), never real FAIR Health or other licensed data. Deterministic: the same inputs give the same bytes.
Run it only to regenerate the demo; the project never reads ../shared at run time.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import shutil
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from services.ingestion.phi import patient_key  # noqa: E402
from services.settings import DEMO_HMAC_KEY  # noqa: E402

DEMO_STATES = ("TX", "FL", "GA", "AZ", "CO", "NC")

# Codes a multi-specialty OON group bills (CPT codes only, no descriptors: those are AMA-copyrighted).
DEMO_CODES = (
    # office / outpatient E/M, emergency, hospital, critical care
    "99202", "99203", "99204", "99205", "99211", "99212", "99213", "99214", "99215",
    "99281", "99282", "99283", "99284", "99285",
    "99222", "99223", "99232", "99233", "99291",
    # cardiology
    "93000", "93010", "93306", "93350", "78452", "93458",
    # orthopedics
    "27447", "27130", "29881", "29827", "20610",
    # gastroenterology
    "45378", "45380", "45385", "43239", "43235",
    # imaging (PC/TC rows included)
    "70450", "70551", "71046", "71250", "72148", "73721", "74177", "77067", "77078", "76700",
    # dermatology / wound care
    "11042", "11102", "17000", "17311", "17312",
    # pain management
    "64483", "64493", "62323", "20552",
    # ophthalmology
    "66984", "67028", "92014",
    # behavioral health
    "90791", "90792", "90834", "90837", "90853",
    # sleep, neurology
    "95810", "95811", "95886",
    # ENT
    "31231", "31237", "69210",
    # general surgery
    "47562", "49505", "44970", "19301",
    # urology
    "52000", "55700", "51798",
    # physical therapy, preventive
    "97110", "97140", "G0439",
    # codes without a national amount (demo of "no Medicare amount"): lab (X), drug (E), T-status
    "36415", "80053", "85025", "J1100", "96523",
)

# Demo practice locations (place-of-service ZIPs) of the fictional group, by state.
DEMO_LOCATIONS = {
    "77030": "TX", "75246": "TX", "78705": "TX", "78229": "TX",
    "33136": "FL", "33606": "FL", "32806": "FL",
    "30309": "GA",
    "85006": "AZ", "85719": "AZ",
    "80218": "CO",
    "28204": "NC", "27607": "NC",
}

PAYERS = [
    # payer_id, payer_name, payer_group, state
    ("ACME1", "Acme Health", "acme", ""),
    ("BLUEP", "Bluepeak Health Plan", "bluepeak", ""),
    ("CRSTN", "Crestline Insurance", "crestline", ""),
    ("HRTLD", "Heartland Mutual", "heartland", ""),
    ("SUNCO", "Suncoast Health Partners", "suncoast", "FL"),
    ("LSTAR", "Lone Star Benefit Co", "lonestar", "TX"),
    ("PEACH", "Peachtree Care Plans", "peachtree", "GA"),
    ("DESRT", "Desert Sky Health", "desertsky", "AZ"),
    ("ROCKY", "Rocky Ridge Health", "rockyridge", "CO"),
    ("PIEDM", "Piedmont Shield", "piedmont", "NC"),
]

FEE_SCHEDULE_HEADER = [
    "payer_id", "product", "code", "modifier", "pos_class", "effective_from", "effective_to", "rate_type", "rate",
    "ucr_percentile", "lesser_of_billed", "escalator_pct", "escalator_base_date", "notes",
]
FEE_SCHEDULES = [
    # Acme PPO office visits: fixed rates with a 3% annual escalator from 2023-01-01.
    ["ACME1", "PPO", "99213", "", "nonfacility", "2023-01-01", "", "fixed", "105.00", "", "false", "3", "2023-01-01",
     "office visit, +3%/year"],
    ["ACME1", "PPO", "99214", "", "nonfacility", "2023-01-01", "", "fixed", "150.00", "", "false", "3", "2023-01-01",
     ""],
    ["ACME1", "PPO", "99215", "", "nonfacility", "2023-01-01", "", "fixed", "205.00", "", "false", "3", "2023-01-01",
     ""],
    ["ACME1", "PPO", "27447", "", "facility", "2024-01-01", "", "pct_medicare", "160", "", "false", "", "", ""],
    ["ACME1", "PPO", "29881", "", "any", "2024-01-01", "", "pct_medicare", "150", "", "true", "", "",
     "lesser of billed"],
    ["ACME1", "", "70450", "26", "any", "2024-01-01", "", "fixed", "58.00", "", "false", "", "", "professional"],
    ["ACME1", "", "70450", "TC", "any", "2024-01-01", "", "fixed", "142.00", "", "false", "", "", "technical"],
    ["ACME1", "", "70450", "", "any", "2024-01-01", "", "fixed", "200.00", "", "false", "", "", "global"],
    # Bluepeak: endoscopy at % of Medicare; echo fixed; a rate that changed on 2025-01-01.
    ["BLUEP", "", "45378", "", "any", "2024-01-01", "", "pct_medicare", "140", "", "false", "", "", ""],
    ["BLUEP", "", "43239", "", "any", "2024-01-01", "", "pct_medicare", "140", "", "false", "", "", ""],
    ["BLUEP", "", "93306", "", "nonfacility", "2024-01-01", "2024-12-31", "fixed", "240.00", "", "false", "", "", ""],
    ["BLUEP", "", "93306", "", "nonfacility", "2025-01-01", "", "fixed", "255.00", "", "false", "", "", "2025 rate"],
    ["BLUEP", "", "93306", "26", "any", "2024-01-01", "", "fixed", "72.00", "", "false", "", "", ""],
    # Heartland: cataract surgery at 70% of billed; Crestline: ER at UCR p80.
    ["HRTLD", "", "66984", "", "any", "2024-01-01", "", "pct_billed", "70", "", "false", "", "", ""],
    ["CRSTN", "", "99284", "", "facility", "2024-01-01", "", "pct_ucr", "100", "80", "false", "", "", ""],
    ["CRSTN", "", "99285", "", "facility", "2024-01-01", "", "pct_ucr", "100", "80", "false", "", "", ""],
    # Piedmont HMO: psychotherapy fixed rates.
    ["PIEDM", "HMO", "90834", "", "any", "2024-07-01", "", "fixed", "118.00", "", "false", "", "", ""],
    ["PIEDM", "HMO", "90837", "", "any", "2024-07-01", "", "fixed", "160.00", "", "false", "", "", ""],
]

SCA_HEADER = [
    "sca_id", "payer_id", "patient_key", "payer_claim_id", "authorization_number", "codes", "rate_type", "rate",
    "ucr_percentile", "lesser_of_billed", "escalator_pct", "escalator_base_date", "effective_from", "effective_to",
    "notes",
]
DEMO_SCA_MEMBER = ("PIEDM", "DEMO-MEMBER-0001")


def sca_rows() -> list[list[str]]:
    demo_patient = patient_key(DEMO_HMAC_KEY.encode(), *DEMO_SCA_MEMBER)
    return [
        ["SCA-1001", "ACME1", "", "", "AUTH-TX-0001", "27447;29881", "pct_billed", "85", "", "false", "", "",
         "2025-01-01", "2025-12-31", "knee surgery, no in-network surgeon within 30 miles"],
        ["SCA-1002", "LSTAR", "", "LS2500001234", "", "*", "pct_medicare", "175", "", "true", "", "",
         "", "", "one claim, every line"],
        ["SCA-1003", "SUNCO", "", "", "AUTH-FL-0042", "64483;64493", "pct_medicare", "200", "", "false", "", "",
         "2025-01-01", "", "pain management series"],
        ["SCA-1004", "PIEDM", demo_patient, "", "", "90834;90837;90791", "fixed", "150.00", "", "false", "", "",
         "2025-01-01", "2025-12-31", f"patient_key = HMAC of {DEMO_SCA_MEMBER[0]}|{DEMO_SCA_MEMBER[1]} (demo key)"],
        ["SCA-1005", "DESRT", "", "", "AUTH-AZ-0007", "*", "pct_ucr", "90", "80", "false", "", "",
         "2025-01-01", "2025-06-30", ""],
    ]


POLICY_HEADER = ["payer_id", "benchmark", "tolerance_amount", "tolerance_pct", "notes"]
POLICIES = [
    ["*", "140% medicare", "1.00", "1", "default when a payer has no row"],
    ["ACME1", "max(150% medicare, 100% ucr80)", "5.00", "2", ""],
    ["BLUEP", "140% medicare", "2.00", "1", ""],
    ["CRSTN", "min(max(125% medicare, 100% ucr70), 90% billed)", "2.00", "1", ""],
    ["HRTLD", "85% billed", "1.00", "0", ""],
    ["SUNCO", "max(130% medicare, 100% ucr60)", "2.00", "1", ""],
    ["LSTAR", "135% medicare", "1.00", "1", ""],
    ["PEACH", "120% medicare", "1.00", "1", ""],
    ["DESRT", "100% ucr75", "2.00", "2", ""],
    ["ROCKY", "max(125% medicare, 100% ucr50)", "1.00", "1", ""],
    ["PIEDM", "150% medicare", "1.00", "1", ""],
]

# Synthetic UCR: multiples of the national (GPCI 1.0) non-facility Medicare amount, by percentile, scaled
# per geozip. Fictional: it only has to look like a charge distribution.
UCR_MULTIPLES = {50: "1.80", 60: "2.00", 70: "2.30", 75: "2.50", 80: "2.80", 85: "3.10", 90: "3.50", 95: "4.20"}
GEOZIP_FACTORS = {
    "770": "1.05", "752": "1.04", "787": "1.08", "782": "0.97",
    "331": "1.15", "336": "1.00", "328": "1.02",
    "303": "1.06",
    "850": "1.01", "857": "0.95",
    "802": "1.10",
    "282": "0.99", "276": "1.00",
}
CENT = Decimal("0.01")


def _csv_text(header: list[str], rows: list[list[str]], comment: str | None = None) -> str:
    buffer = io.StringIO()
    if comment:
        buffer.write(f"# {comment}\n")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_medicare(cms: Path, out: Path) -> list[list[str]]:
    """Copy the Medicare subset; returns the kept PPRRVU data rows (for the synthetic UCR)."""
    target = out / "medicare" / "2025"
    target.mkdir(parents=True, exist_ok=True)
    rvu_name = next(path.name for path in cms.iterdir() if path.name.upper().startswith("PPRRVU"))
    text = (cms / rvu_name).read_bytes().decode("latin-1")
    lines = text.splitlines(keepends=True)
    header_index = next(index for index, line in enumerate(lines) if line.startswith("HCPCS,"))
    wanted = set(DEMO_CODES)
    kept_lines = lines[: header_index + 1]
    kept_rows: list[list[str]] = []
    for line in lines[header_index + 1 :]:
        row = next(csv.reader([line]))
        if row and row[0] in wanted:
            row[2] = ""  # DESCRIPTION stays blank (AMA-copyrighted descriptors are never shipped)
            kept_rows.append(row)
            kept_lines.append(line)
    missing = wanted - {row[0] for row in kept_rows}
    if missing:
        raise SystemExit(f"codes not in {rvu_name}: {sorted(missing)}")
    (target / rvu_name).write_bytes("".join(kept_lines).encode("latin-1"))
    for path in cms.iterdir():
        upper = path.name.upper()
        if upper.startswith("GPCI") or "LOCCO" in upper:
            shutil.copyfile(path, target / path.name)
        elif upper.startswith("ZIP5") and "LYOUT" not in upper:
            zip_lines = path.read_bytes().decode("latin-1").splitlines(keepends=True)
            subset = [line for line in zip_lines if line[:2] in DEMO_STATES]
            (target / path.name).write_bytes("".join(subset).encode("latin-1"))
    return kept_rows


def ucr_rows(rvu_rows: list[list[str]]) -> list[list[str]]:
    rows = []
    for geozip, factor in GEOZIP_FACTORS.items():
        for row in rvu_rows:
            code, modifier, status = row[0], row[1], row[3]
            if status not in ("A", "T", "R"):
                continue
            total_nonfacility = Decimal(row[11] or "0")
            conversion_factor = Decimal(row[24])
            national = total_nonfacility * conversion_factor
            if national <= 0:
                continue
            values = [
                str((national * Decimal(multiple) * Decimal(factor)).quantize(CENT, rounding=ROUND_HALF_UP))
                for multiple in UCR_MULTIPLES.values()
            ]
            rows.append([geozip, code, modifier, *values])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cms", type=Path, default=PROJECT.parent / "shared" / "data" / "cms" / "pfs2025")
    parser.add_argument("--out", type=Path, default=PROJECT / "services" / "reference" / "demo")
    args = parser.parse_args(argv)
    if not args.cms.is_dir():
        raise SystemExit(f"{args.cms}: CMS 2025 files not found (use --cms)")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    rvu_rows = write_medicare(args.cms, out)
    (out / "payers.csv").write_text(
        _csv_text(["payer_id", "payer_name", "payer_group", "state"], [list(row) for row in PAYERS]), encoding="utf-8"
    )
    (out / "fee_schedules.csv").write_text(
        _csv_text(FEE_SCHEDULE_HEADER, FEE_SCHEDULES, "FICTIONAL demo contracts of a fictional provider group"),
        encoding="utf-8",
    )
    (out / "scas.csv").write_text(
        _csv_text(SCA_HEADER, sca_rows(), "FICTIONAL demo single-case agreements"), encoding="utf-8"
    )
    (out / "payer_policies.csv").write_text(
        _csv_text(POLICY_HEADER, POLICIES, "FICTIONAL demo payer OON benchmark policies"), encoding="utf-8"
    )
    (out / "ucr.csv").write_text(
        _csv_text(
            ["geozip", "code", "modifier", *[f"p{percentile}" for percentile in UCR_MULTIPLES]],
            ucr_rows(rvu_rows),
            "SYNTHETIC demo UCR table: fictional multiples of Medicare, NOT FAIR Health or any licensed data",
        ),
        encoding="utf-8",
    )
    print(f"wrote demo reference to {out} ({len(rvu_rows)} PPRRVU rows, {dt.date(2025, 1, 1).year} PFS)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
