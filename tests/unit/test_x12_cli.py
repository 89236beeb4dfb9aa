"""``claimwatch parse``: events on stdout, dead letters and one summary per file on stderr, exit codes."""

from __future__ import annotations

import json

from schemas.dead_letter import DeadLetter
from schemas.remittance import ProviderAdjustmentEvent, RemittanceEvent
from services.cli import build_parser, main
from tests.unit.test_x12_support import FIXTURES


def run(capsys, *arguments: str) -> tuple[int, list[dict], list[dict]]:
    code = main(["parse", *arguments])
    captured = capsys.readouterr()
    out = [json.loads(line) for line in captured.out.splitlines()]
    err = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    return code, out, err


def test_parse_is_a_subcommand():
    assert "parse" in build_parser()._subparsers._group_actions[0].choices


def test_events_on_stdout_dead_letters_and_summaries_on_stderr(capsys):
    code, out, err = run(capsys, str(FIXTURES / "rich_5010_crlf.835"), str(FIXTURES / "bad_claims.835"))
    assert code == 0
    kinds = [line["event_type"] for line in out]
    assert kinds.count("remittance") == 4 + 2 and kinds.count("provider_adjustment") == 1
    for line in out:
        model = RemittanceEvent if line["event_type"] == "remittance" else ProviderAdjustmentEvent
        model.model_validate_json(json.dumps(line))
    assert isinstance(out[0]["paid_amount"], str)  # money is a decimal string
    letters = [line for line in err if line.get("event_type") == "dead_letter"]
    assert len(letters) == 10
    for letter in letters:
        DeadLetter.model_validate_json(json.dumps(letter))
    summaries = [line["summary"] for line in err if "summary" in line]
    assert [summary["file"] for summary in summaries] == ["rich_5010_crlf.835", "bad_claims.835"]
    assert all(summary["accounted"] for summary in summaries)
    assert summaries[1]["claims_seen"] == 11 and summaries[1]["claim_dead_letters"] == 9
    assert "SECRET" not in json.dumps(err) and "SECRET" not in json.dumps(out)


def test_missing_file_is_reported_and_the_others_still_parse(capsys):
    code, out, err = run(capsys, "/nonexistent/file.835", str(FIXTURES / "no_envelope.835"))
    assert code == 0
    assert err[0]["summary"]["error"].startswith("cannot read")
    assert len(out) == 1


def test_nothing_readable_exits_2(capsys, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("not an edi file\n")
    code, out, err = run(capsys, "/nonexistent/file.835", str(junk))
    assert code == 2 and out == []
    assert [line.get("reason") for line in err if line.get("event_type") == "dead_letter"] == ["not_x12"]
