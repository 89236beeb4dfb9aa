"""``claimwatch opportunities`` (services/adequacy/cli.py): stdin JSON lines to opportunities, offline."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from services.cli import main
from tests.unit.test_adequacy_support import COUNTY_TYPES_CSV, context, remittance

ZIP_LOCATIONS = (
    "zip,latitude,longitude,state,county_fips\n"
    "90001,35.0,-100.0,OK,40001\n"
    "91001,35.5,-100.0,OK,40005\n"
    "91003,35.2895,-100.0,OK,40001\n"
)


@pytest.fixture
def reference_dir(tmp_path: Path) -> Path:
    network = tmp_path / "network"
    network.mkdir()
    (network / "directory.csv").write_text(
        "payer_id,product_type,specialty_group,provider_zip\n"
        "PAYER1,,cardiology,91001\n"  # 34.5 miles from 90001: beyond the 20-mile metro standard
        "PAYER1,,dermatology,91003\n"  # 20.0 miles: within the 30-mile metro standard
    )
    (network / "county_types.csv").write_bytes(COUNTY_TYPES_CSV)
    (network / "zip_locations.csv").write_text(ZIP_LOCATIONS)
    return tmp_path


def run(reference_dir: Path, lines: list[str], capsys, *extra: str) -> tuple[int, list[dict], list[dict]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
        code = main(["opportunities", "--reference", str(reference_dir), *extra])
    captured = capsys.readouterr()
    out = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    err = [json.loads(line) for line in captured.err.splitlines() if line.strip().startswith("{")]
    return code, out, err


def test_opportunities_from_remittances_and_contexts(reference_dir: Path, capsys) -> None:
    lines = [
        context("A").model_dump_json(),  # context before its remittance
        remittance("A", filing="16", claim_adjustments=[("CO", "242", "1000.00")]).model_dump_json(),
        remittance("B", filing="HM").model_dump_json(),
        "{not json",
        remittance("C", filing="12").model_dump_json(),
        context("B").model_dump_json(),  # context after its remittance
        context("C").model_dump_json(),
        json.dumps({"event_type": "mystery"}),
        remittance("D", filing="12").model_dump_json(),
        context("D", specialty="dermatology").model_dump_json(),  # within standard: no gap, no recurrence key hit
        remittance("A", status="22", filing="16").model_dump_json(),  # reversal: skipped
    ]
    code, out, err = run(reference_dir, lines, capsys)
    assert code == 0
    by_rule: dict[str, list[dict]] = {}
    for item in out:
        by_rule.setdefault(item["rule"], []).append(item)
    assert sorted(by_rule) == ["denial_gap", "distance_gap", "medicare_advantage_access", "recurrence"]
    (distance,) = by_rule["distance_gap"]  # three claims, one opportunity
    assert distance["claim_count"] == 3
    assert [ref["payer_claim_id"] for ref in distance["claims"]] == ["PCID-A", "PCID-B", "PCID-C"]
    assert distance["billed_amount"] == "3000.00"
    assert distance["evidence"]["nearest_in_network_miles"] == 34.5
    assert distance["anchors"]["opening_ask_low"] == "2400.00"
    assert distance["revision"] == 3
    (recurrence,) = by_rule["recurrence"]
    assert recurrence["evidence"]["claims_in_window"] == 3
    assert recurrence["region"] == "OK-40001"
    (ma,) = by_rule["medicare_advantage_access"]
    assert [ref["payer_claim_id"] for ref in ma["claims"]] == ["PCID-A"]
    rejected = [item for item in err if "reason" in item]
    assert [(item["line"], item["reason"]) for item in rejected] == [(4, "invalid_json"), (8, "invalid_event")]
    summary = err[-1]["summary"]
    assert summary["lines_in"] == 11
    assert summary["rejected"] == 2
    assert summary["remittances"] == 5
    assert summary["contexts"] == 4
    assert summary["not_assessable_by_reason"] == {"reversal": 1}
    assert summary["claims_assessed"] == 4
    assert summary["opportunities_by_rule"] == {
        "denial_gap": 1,
        "distance_gap": 1,
        "medicare_advantage_access": 1,
        "recurrence": 1,
    }


def test_recurrence_threshold_option(reference_dir: Path, capsys) -> None:
    lines = [remittance("A").model_dump_json(), context("A").model_dump_json()]
    lines += [remittance("B").model_dump_json(), context("B").model_dump_json()]
    _, out, _ = run(reference_dir, lines, capsys, "--recurrence-min-claims", "2")
    assert sorted(item["rule"] for item in out) == ["distance_gap", "recurrence"]
    _, out, _ = run(reference_dir, lines, capsys)
    assert sorted(item["rule"] for item in out) == ["distance_gap"]


def evaluation(event, *, status: str = "underpaid", expected: str = "100.00", medicare: str | None = None) -> str:
    line = {
        "line_index": 0,
        "procedure_code": "99214",
        "service_date": event.service_date_from.isoformat(),
        "units": "1",
        "charge_amount": str(event.charge_amount),
        "paid_amount": str(event.paid_amount),
        "derived_allowed_amount": str(event.paid_amount),
        "allowed_source": "derived",
        "allowed_amount": str(event.paid_amount),
        "expected_amount": expected,
        "medicare_amount": medicare,
        "explanation": "test",
        "status": status,
    }
    record = {
        "evaluation_id": f"ev-{event.event_id}",
        "event_id": event.event_id,
        "claim_key": event.claim_key,
        "payer_id": event.payer.id,
        "payer_group": "acme",
        "payer_claim_id": event.payer_claim_id,
        "patient_control_number": event.patient_control_number,
        "claim_status_code": event.status_code,
        "status": status,
        "context_joined": True,
        "service_date_from": event.service_date_from.isoformat(),
        "totals": {"billed": "1000.00", "expected": expected, "allowed": "200.00", "paid": "200.00", "underpaid": "0"},
        "lines": [line],
        "evaluated_at": "2025-03-15T00:00:00Z",
    }
    return json.dumps({"event_type": "claim_evaluation", **record})


def test_value_rule_from_claim_evaluation_lines(reference_dir: Path, capsys) -> None:
    events = [remittance(f"V{index}", payer_id="PAYER9") for index in range(3)]
    code, out, err = run(reference_dir, [evaluation(event, expected="300.00") for event in events], capsys)
    assert code == 0
    (value,) = out
    assert value["rule"] == "value" and value["payer_id"] == "PAYER9" and value["payer_group"] == "acme"
    assert value["evidence"]["codes"][0]["underpaid_lines"] == 3
    assert value["evidence"]["codes"][0]["shortfall_total"] == "300.00"  # (300 - 200) x 3
    assert value["billed_amount"] == "3000.00" and value["expected_amount"] == "900.00"
    assert err[-1]["summary"]["evaluations"] == 3


def test_evaluations_lend_medicare_amounts_to_the_anchors(reference_dir: Path, capsys) -> None:
    event = remittance("A", filing="12")
    lines = [
        event.model_dump_json(),
        context("A").model_dump_json(),
        evaluation(event, status="as_expected", medicare="400.00"),
    ]
    _, out, _ = run(reference_dir, lines, capsys)
    (distance,) = out
    assert distance["medicare_amount"] == "400.00"
    assert distance["anchors"]["expected_counter_low"] == "440.00"
    assert distance["anchors"]["expected_counter_high"] == "600.00"
    assert distance["claims"][0]["expected"] == "100.00"


def test_a_malformed_evaluation_is_rejected_with_its_line(reference_dir: Path, capsys) -> None:
    code, _, err = run(reference_dir, [json.dumps({"event_type": "claim_evaluation", "payer_id": "P"})], capsys)
    assert code == 1
    assert err[0]["line"] == 1 and err[0]["reason"] == "invalid_event"


def test_bad_reference_folder_is_a_command_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "network").mkdir()
    (tmp_path / "network" / "county_types.csv").write_text("zip,county_type\n90001,urban\n")
    code = main(["opportunities", "--reference", str(tmp_path)])
    assert code == 2
    message = capsys.readouterr().err
    assert "network/county_types.csv:2 column 'county_type'" in message


def test_nothing_usable_exits_1(reference_dir: Path, capsys) -> None:
    code, out, _ = run(reference_dir, ["[1, 2]", "nope"], capsys)
    assert code == 1 and out == []
