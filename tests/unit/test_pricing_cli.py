"""``claimwatch price``, ``claimwatch medicare-rate`` and ``claimwatch reference check``."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from services import cli
from tests.unit.test_pricing_support import DEMO_DIR, PAYEE_NPI, context, event, line


@pytest.fixture
def main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("services.pricing.cli",))

    def invoke(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


@pytest.fixture(scope="module")
def cms_reference(tmp_path_factory, cms_2025_dir) -> Path:
    root = tmp_path_factory.mktemp("cms-ref")
    target = root / "medicare" / "2025"
    target.mkdir(parents=True)
    for path in cms_2025_dir.iterdir():
        shutil.copyfile(path, target / path.name)
    return root


# --- medicare-rate ----------------------------------------------------------------------------------------


def test_medicare_rate_cms_published_amounts(main, cms_reference):
    common = ("--date", "2025-03-01", "--reference", str(cms_reference))
    assert main("medicare-rate", "11042", "--locality", "01182-17", *common)[:2] == (0, "140.72\n")
    assert main("medicare-rate", "11042", "--locality", "01182-17", "--facility", *common)[:2] == (0, "62.28\n")
    assert main("medicare-rate", "77078", "--zip", "93001", *common)[:2] == (0, "113.18\n")
    code, out, err = main("medicare-rate", "70450", "--modifier", "26", "--zip", "93001-4321", "--explain", *common)
    assert code == 0 and out.strip().replace(".", "").isdigit()
    assert "70450-26" in err and "32.3465" in err


def test_medicare_rate_exit_codes(main, cms_reference):
    common = ("--date", "2025-03-01", "--reference", str(cms_reference))
    code, out, err = main("medicare-rate", "G0008", "--zip", "93001", *common)
    assert (code, out) == (3, "") and "status X" in err and "no national Medicare amount" in err
    code, _, err = main("medicare-rate", "99214", "--zip", "00000", *common)
    assert code == 2 and "ZIP 00000" in err
    code, _, err = main("medicare-rate", "ZZZZZ", "--zip", "93001", *common)
    assert code == 2 and "ZZZZZ" in err
    code, _, err = main("medicare-rate", "99214", "--modifier", "50", "--zip", "93001", *common)
    assert code == 2 and "26, TC, 53" in err
    code, _, err = main(
        "medicare-rate", "99214", "--zip", "93001", "--date", "2024-05-01", "--reference", str(cms_reference)
    )
    assert code == 2 and "no Medicare 2024 files" in err
    code, _, err = main(
        "medicare-rate", "99214", "--zip", "93001", "--date", "2025-02-30", "--reference", str(cms_reference)
    )
    assert code == 2 and "not a valid date" in err


def test_medicare_rate_on_the_demo_reference(main):
    code, out, _ = main(
        "medicare-rate", "99214", "--zip", "77030", "--date", "2025-05-01", "--reference", str(DEMO_DIR)
    )
    assert (code, out) == (0, "128.21\n")  # ((1.92 x 1.014) + (1.80 x 1.003) + (0.15 x 1.409)) x 32.3465


# --- reference check -------------------------------------------------------------------------------------


def test_reference_check_valid_and_invalid(main, tmp_path):
    code, out, _ = main("reference", "check", str(DEMO_DIR))
    assert code == 0 and "valid" in out and "payer_policies.csv: 11 policies" in out
    bad = tmp_path / "ref"
    shutil.copytree(DEMO_DIR, bad)
    (bad / "fee_schedules.csv").write_text(
        "payer_id,code,rate_type,rate,effective_from\nA,99214,fixed,abc,2025-01-01\nA,99213,bogus,1,2025-01-01\n"
    )
    (bad / "ucr.csv").write_text("geozip,code,p50\n7,99214,1\n")
    code, out, err = main("reference", "check", str(bad))
    assert code == 2
    assert "3 problem(s)" in err
    assert "fee_schedules.csv:2 column 'rate'" in err and "fee_schedules.csv:3 column 'rate_type'" in err
    assert "ucr.csv:2 column 'geozip'" in err
    code, _, err = main("reference", "check", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err


def test_reference_check_medicare_only_folder(main, tmp_path):
    shutil.copytree(DEMO_DIR / "medicare", tmp_path / "medicare")
    code, out, _ = main("reference", "check", str(tmp_path))
    assert code == 0 and "medicare 2025" in out


# --- price -------------------------------------------------------------------------------------------------


def remittance_json(**kwargs) -> str:
    return event(kwargs.pop("lines", [line(paid="50.00")]), **kwargs).model_dump_json()


def context_json(**kwargs) -> str:
    return context(**kwargs).model_dump_json()


def test_price_joins_contexts_and_writes_one_evaluation_per_remittance(main):
    stdin = "\n".join(
        [
            context_json(pcn="PCN-1", pos="11"),
            remittance_json(pcn="PCN-1", event_id="e1", payer_id="PEACH"),
            remittance_json(pcn="PCN-2", event_id="e2", payer_id="PEACH"),
            "",
        ]
    )
    code, out, err = main("price", "--reference", str(DEMO_DIR), stdin=stdin)
    assert code == 0
    evaluations = [json.loads(text) for text in out.splitlines()]
    assert [item["event_id"] for item in evaluations] == ["e1", "e2"]
    first, second = evaluations
    assert first["context_joined"] and first["payer_group"] == "peachtree"
    assert first["lines"][0]["basis"] == "oon_policy" and first["lines"][0]["expected_amount"]
    assert first["status"] == "underpaid"
    assert not second["context_joined"] and second["lines"][0]["reason"] == "missing_reference"
    summary = json.loads(err.strip().splitlines()[-1])
    assert summary["remittances"] == 2 and summary["contexts"] == 1 and summary["evaluations_out"] == 2
    assert summary["joined"] == 1 and summary["rejected"] == 0


def test_price_rejects_bad_lines_with_their_number(main):
    stdin = (
        "\n".join(
            [
                "{not json",
                json.dumps({"event_type": "remittance", "event_id": "x"}),
                '{"event_type": "bogus"}',
                remittance_json(event_id="ok"),
                json.dumps({"event_type": "provider_adjustment"}),
            ]
        )
        + "\n"
    )
    code, out, err = main("price", "--reference", str(DEMO_DIR), stdin=stdin)
    assert code == 0 and len(out.splitlines()) == 1
    rejects = [json.loads(text) for text in err.splitlines()[:-1]]
    assert [(item["line"], item["reason"]) for item in rejects] == [
        (1, "invalid_json"),
        (2, "invalid_event"),
        (3, "invalid_event"),
    ]
    summary = json.loads(err.splitlines()[-1])
    assert summary["rejected"] == 3 and summary["skipped_provider_adjustments"] == 1


def test_price_exit_1_when_nothing_is_usable_and_2_for_a_bad_reference(main, tmp_path):
    code, out, _ = main("price", "--reference", str(DEMO_DIR), stdin="garbage\n")
    assert code == 1 and out == ""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "payer_policies.csv").write_text("payer_id,benchmark\n*,150% medicaid\n")
    code, _, err = main("price", "--reference", str(bad), stdin="")
    assert code == 2 and "payer_policies.csv:2 column 'benchmark'" in err


def test_price_claims_file_and_alerts_file(main, tmp_path):
    claims = tmp_path / "claims.jsonl"
    claims.write_text(context_json(pcn="PCN-1") + "\n")
    alerts = tmp_path / "alerts.jsonl"
    lines = [line(paid="50.00")]
    stdin = (
        "\n".join(
            [
                event(lines, event_id="e1", payer_id="PEACH").model_dump_json(),
                event(lines, event_id="e1", payer_id="PEACH").model_dump_json(),  # re-delivered
                event(lines, event_id="e1-rev", payer_id="PEACH", status="22", sign=-1).model_dump_json(),
                event(lines, event_id="e1-corr", payer_id="PEACH").model_dump_json(),
            ]
        )
        + "\n"
    )
    code, out, err = main(
        "price", "--reference", str(DEMO_DIR), "--claims", str(claims), "--alerts", str(alerts), stdin=stdin
    )
    assert code == 0 and len(out.splitlines()) == 4
    written = [json.loads(text) for text in alerts.read_text().splitlines()]
    assert len(written) == 1 and written[0]["claim_key"] == "PEACH|CLM-1"
    summary = json.loads(err.splitlines()[-1])
    assert summary["alerts"] == 1 and summary["joined"] == 4


def test_price_reads_claims_jsonl_of_the_reference_folder(main, tmp_path):
    folder = tmp_path / "ref"
    shutil.copytree(DEMO_DIR, folder)
    (folder / "claims.jsonl").write_text(context_json(pcn="PCN-1") + "\n")
    code, out, _ = main("price", "--reference", str(folder), stdin=remittance_json() + "\n")
    assert code == 0 and json.loads(out)["context_joined"]
    assert PAYEE_NPI in out
