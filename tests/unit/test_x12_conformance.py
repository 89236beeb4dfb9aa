"""Every public 835 sample in ../shared/data/x12/835 parses, every claim is accounted for, money adds up.

The expected figures come from a naive, independent scan of the same text (regular expressions over the
raw file, no code shared with the parser). Skipped when ../shared is absent.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from tests.unit.test_x12_support import check_items, dead_letters, events, parse_file

SHARED_SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "x12" / "835"
SAMPLE_FILES = sorted(path for path in SHARED_SAMPLES.rglob("*") if path.is_file()) if SHARED_SAMPLES.is_dir() else []


def naive_claims(path: Path) -> list[dict]:
    """CLP loops found by a plain scan: CLP01, CLP04, SVC03s and every CAS amount inside the loop."""
    text = path.read_text(encoding="utf-8-sig")
    element = text[3] if text.startswith("ISA") else "*"
    segments = [segment.strip() for segment in re.split(r"~", text)]
    claims: list[dict] = []
    current = None
    for segment in segments:
        fields = segment.split(element)
        tag = fields[0]
        if tag == "CLP":
            current = {"pcn": fields[1], "paid": fields[4], "svc_paid": [], "cas": [], "lines": 0}
            claims.append(current)
        elif tag in ("LX", "SE", "PLB", "ST", "GE", "IEA"):
            current = None
        elif current is not None and tag == "SVC":
            current["lines"] += 1
            current["svc_paid"].append(fields[3] if len(fields) > 3 else "")
        elif current is not None and tag == "CAS":
            current["cas"] += [fields[index] for index in range(3, len(fields), 3) if fields[index]]
    return claims


def test_samples_are_there_when_shared_is(x12_samples_dir):
    assert len(SAMPLE_FILES) >= 19


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_public_sample(x12_samples_dir, path):
    items, summary = parse_file(path)
    check_items(items, summary)
    naive = naive_claims(path)
    assert summary.claims_seen == len(naive)
    assert summary.events_emitted + summary.claim_dead_letters == len(naive)

    # match the events, in order, to the naive claims; the claims without event are the dead letters
    parsed = events(items)
    remaining = list(naive)
    matched = []
    for event in parsed:
        while remaining and not (
            remaining[0]["pcn"] == event.patient_control_number and Decimal(remaining[0]["paid"]) == event.paid_amount
        ):
            remaining.pop(0)
        assert remaining, f"no CLP in the file for event {event.patient_control_number}"
        matched.append((remaining.pop(0), event))
    assert len(matched) == len(parsed)

    for claim, event in matched:
        assert len(event.service_lines) == claim["lines"]
        assert sum((line.paid_amount for line in event.service_lines), Decimal(0)) == sum(
            (Decimal(value) for value in claim["svc_paid"]), Decimal(0)
        )
        adjustments = list(event.adjustments) + [a for line in event.service_lines for a in line.adjustments]
        assert sum((a.amount for a in adjustments), Decimal(0)) == sum((Decimal(v) for v in claim["cas"]), Decimal(0))
        assert len(adjustments) == len(claim["cas"])

    # money: the paid amounts of the events are the CLP04 of the claims that were not dead-lettered
    event_total = sum((event.paid_amount for event in parsed), Decimal(0))
    assert event_total == sum((Decimal(claim["paid"]) for claim, _ in matched), Decimal(0))


# What a reading of each file by hand gives (CLP count, events, claim dead letters).
EXPECTED = {
    "badx12/X221-dollars-and-data-sent-separate.edi": (2, 2, 0),
    "badx12/X221-dollars-and-data-sent-together.edi": (2, 2, 0),
    "badx12/X221-era-sample.edi": (1, 1, 0),
    "badx12/X221-error_validation.edi": (2, 2, 0),
    "badx12/X221-multiple-claims-single-check.edi": (9, 9, 0),
    "edi-835-parser/blue_cross_nc_sample.txt": (1, 0, 1),  # third SVC has no SVC02/SVC03
    "edi-835-parser/emedny_sample.txt": (3, 3, 0),
    "edi-835-parser/united_healthcare_legacy_sample.txt": (2, 2, 0),
    "lfh-x12/managed-care.835": (2, 2, 0),  # invalid BPR16: a warning, not a dead letter
    "lfh-x12/tertiary-payment.835": (1, 0, 1),  # broken SVC01 ("HC" without code)
    "pyx12/x12testdata_835id_4010_reversals.txt": (3, 3, 0),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hand_checked_samples(x12_samples_dir, name):
    _items, summary = parse_file(x12_samples_dir / name)
    assert (summary.claims_seen, summary.events_emitted, summary.claim_dead_letters) == EXPECTED[name]


def test_known_defects_are_reported(x12_samples_dir):
    items, summary = parse_file(x12_samples_dir / "lfh-x12" / "managed-care.835")
    assert any("BPR16" in warning for warning in summary.warnings)
    assert all(event.payment.date is None for event in events(items))
    items, summary = parse_file(x12_samples_dir / "lfh-x12" / "tertiary-payment.835")
    (letter,) = dead_letters(items)
    assert (letter.reason, letter.location.element) == ("missing_element", "SVC01-2")
    items, summary = parse_file(x12_samples_dir / "lfh-x12" / "secondary-payment.835")
    assert any("uses '>'" in warning for warning in summary.warnings)
    assert [line.modifiers for event in events(items) for line in event.service_lines] == [["26"], ["26"]]
    items, summary = parse_file(x12_samples_dir / "edi-835-parser" / "blue_cross_nc_sample.txt")
    assert not summary.envelope and summary.warnings[0].startswith("no ISA envelope")
    items, summary = parse_file(x12_samples_dir / "badx12" / "X221-error_validation.edi")
    assert any("SE01" in warning for warning in summary.warnings)
