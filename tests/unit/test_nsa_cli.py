"""``claimwatch nsa-cases`` over RemittanceEvent / ClaimContext JSON lines on stdin."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest

from services import cli
from tests.unit.test_nsa_support import make_event_data, make_line


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("services.nsa.cli",))

    def invoke(lines: list[Any], *argv: str) -> tuple[int, list[dict], list[dict]]:
        text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
        monkeypatch.setattr("sys.stdin", io.StringIO(text))
        code = cli.main(["nsa-cases", *argv])
        captured = capsys.readouterr()
        out = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
        err = [json.loads(line) for line in captured.err.splitlines() if line.strip().startswith("{")]
        return code, out, err

    return invoke


def remittance(claim: str, **kwargs: Any) -> dict[str, Any]:
    return make_event_data(claim_id=claim, payer_claim_id=f"P{claim}", **kwargs)


def context(claim: str, **flags: Any) -> dict[str, Any]:
    return {"event_type": "claim_context", "payee_id": "1234567893", "patient_control_number": claim, **flags}


NEUTRAL = {"facility": "11", "lines": [make_line("27447")]}


def test_mixed_input(run) -> None:
    lines = [
        remittance("1", facility="23"),  # 1 federal (emergency room)
        remittance("2", remarks=["N858"], **NEUTRAL),  # 2 state
        remittance("3", **NEUTRAL),  # 3 not applicable (no signal)
        remittance("4", status="22", facility="23"),  # 4 reversal
        "{not json",  # 5
        {"event_type": "remittance", "event_id": "x"},  # 6 invalid event
        remittance("5", **NEUTRAL),  # 7 made federal by the context on line 10
        {"event_type": "provider_adjustment"},  # 8
        "",  # blank lines are ignored
        [1, 2],  # 10 (9 is the blank line) not an object
        context("5", emergency=True),  # 11
        {"event_type": "mystery"},  # 12
        remittance("6", remarks=["N884"], **NEUTRAL),  # 13 unknown
    ]
    code, out, err = run(lines, "--today", "2026-01-20")
    assert code == 0
    by_key = {case["claim_key"]: case for case in out}
    assert list(by_key) == ["87726|P1", "87726|P2", "87726|P5", "87726|P6"]
    assert by_key["87726|P1"]["classification"]["category"] == "federal"
    assert by_key["87726|P2"]["classification"]["category"] == "state"
    assert by_key["87726|P5"]["classification"]["reason"] == "context_emergency"
    assert by_key["87726|P6"]["classification"]["category"] == "unknown"
    case = by_key["87726|P1"]
    assert case["initial_date"] == "2025-12-19" and case["initial_date_basis"] == "production_date"
    assert case["deadlines"]["open_negotiation_deadline"] == "2026-02-03"
    assert case["state"] == "open"
    # 2026-01-20 is 10 business days before 2026-02-03
    assert [(r["deadline_kind"], r["offset"]) for r in case["due_reminders"]] == [("open_negotiation", 10)]
    assert by_key["87726|P2"]["due_reminders"] == []

    problems = [record for record in err if "summary" not in record]
    assert [(p["line"], p["reason"]) for p in problems] == [
        (5, "invalid_json"), (6, "invalid_event"), (10, "invalid_event"), (12, "invalid_event"),
    ]  # fmt: skip
    summary = err[-1]["summary"]
    assert summary["lines_in"] == 12
    assert summary["remittances"] == 6
    assert summary["contexts"] == 1
    assert summary["cases"] == summary["out"] == 4
    assert summary["rejected"] == 4
    assert summary["skipped_by_reason"] == {
        "not_applicable:no_nsa_signal": 1,
        "provider_adjustment": 1,
        "reversal": 1,
    }
    assert summary["skipped"] == 3


def test_expired_state_and_idr_free_output(run) -> None:
    code, out, _ = run([remittance("1", facility="23")], "--today", "2026-02-04")
    assert code == 0
    assert out[0]["state"] == "expired" and out[0]["due_reminders"] == []


def test_several_remittances_of_one_claim_keep_the_earliest(run) -> None:
    later = remittance("1", facility="23", production=dt.date(2026, 1, 5), payment_date=None, event_id="later")
    earlier = remittance("1", facility="23", event_id="earlier")
    code, out, err = run([later, earlier], "--today", "2026-01-02")
    assert code == 0
    assert len(out) == 1
    assert out[0]["source_event_id"] == "earlier"
    assert err[-1]["summary"]["merged"] == 1


def test_event_without_any_date_is_rejected(run) -> None:
    lines = [
        remittance("1", facility="23", production=None, payment_date=None),
        remittance("2", facility="23"),
    ]
    code, out, err = run(lines, "--today", "2026-01-02")
    assert code == 0
    assert [case["claim_key"] for case in out] == ["87726|P2"]
    assert err[0]["line"] == 1 and err[0]["reason"] == "no_received_date"


def test_reference_dir_claims_context(run, tmp_path: Path) -> None:
    (tmp_path / "claims.jsonl").write_text(json.dumps(context("5", emergency=True)) + "\nnot json\n", encoding="utf-8")
    code, out, err = run([remittance("5", **NEUTRAL)], "--reference", str(tmp_path), "--today", "2026-01-02")
    assert code == 0
    assert out[0]["classification"]["reason"] == "context_emergency"
    assert err[0] == {"reason": "invalid_json", "detail": err[0]["detail"], "line": 2, "file": "claims.jsonl"}
    assert err[-1]["summary"]["contexts"] == 1


def test_reference_dir_without_claims_file(run, tmp_path: Path) -> None:
    code, out, _ = run([remittance("5", **NEUTRAL)], "--reference", str(tmp_path), "--today", "2026-01-02")
    assert code == 0 and out == []


def test_batches(run) -> None:
    lines = [remittance(str(n), facility="23") for n in range(3)]
    code, out, _ = run(lines, "--today", "2026-01-02", "--batches")
    assert code == 0
    assert len(out) == 1
    assert out[0]["claim_keys"] == ["87726|P0", "87726|P1", "87726|P2"]


def test_offsets_option(run) -> None:
    code, out, _ = run([remittance("1", facility="23")], "--today", "2026-01-27", "--offsets", "7")
    assert code == 0
    assert [(r["offset"], r["business_days_remaining"]) for r in out[0]["due_reminders"]] == [(7, 5)]


@pytest.mark.parametrize(
    "argv",
    [
        ["--today", "2026-02-31"],
        ["--reference", "/nonexistent/claimwatch-nsa"],
        ["--offsets", "10,x"],
        ["--offsets", "-1"],
    ],
)
def test_bad_arguments(run, argv: list[str]) -> None:
    code, out, _ = run([remittance("1", facility="23")], *argv)
    assert code == 2 and out == []


def test_nothing_usable_exits_1(run) -> None:
    code, out, err = run(["{", "[]"])
    assert code == 1 and out == []
    assert err[-1]["summary"]["rejected"] == 2


def test_empty_input(run) -> None:
    code, out, err = run([])
    assert code == 0 and out == []
    assert err[-1]["summary"]["lines_in"] == 0
