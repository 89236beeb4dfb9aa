"""Parser API, identities, error paths and PHI rules (small inline 835s)."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from decimal import Decimal

import pytest

from services.ingestion import x12
from services.ingestion.synthetic import generate_835
from services.ingestion.x12 import DEAD_LETTER_REASONS, ParseRun, parse_bytes, parse_path, parse_stream
from tests.unit.test_x12_support import FIXTURES, KEY, check_items, dead_letters, events, parse_text

ISA = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *250101*1200*^*00501*000000777*0*P*:~"
HEADER = (
    "GS*HP*S*R*20250101*1200*7*X*005010X221A1~ST*835*0001~BPR*I*{amount}*C*ACH************20250102~"
    "TRN*1*TR1*1999999999~N1*PR*PLAN*XV*PAYERX~N1*PE*CLINIC*XX*1234567893~LX*1~"
)
TRAILER = "SE**0001~GE*1*7~IEA*1*000000777~"
CLAIM = "CLP*{pcn}*1*100*80*20*12*PX*11*1~NM1*QC*1*HIDDENLAST*HIDDENFIRST****MI*M1~SVC*HC:99213*100*80**1~CAS*PR*2*20~"


def document(*claims: str, amount: str = "80", header: str = HEADER) -> str:
    return ISA + header.format(amount=amount) + "".join(claims) + TRAILER


def claim(pcn: str = "P1", body: str | None = None) -> str:
    return body if body is not None else CLAIM.format(pcn=pcn)


def test_path_bytes_and_stream_give_the_same_items():
    path = FIXTURES / "rich_5010_crlf.835"
    data = path.read_bytes()
    from_path = [item.model_dump_json() for item in parse_path(path, KEY)]
    from_bytes = [item.model_dump_json() for item in parse_bytes(data, path.name, KEY)]
    from_stream = [item.model_dump_json() for item in parse_stream(io.BytesIO(data), path.name, KEY)]
    assert from_path == from_bytes == from_stream


def test_parse_run_summary_is_complete_after_iteration():
    run = parse_bytes(document(claim()).encode(), "one.835", KEY)
    assert isinstance(run, ParseRun) and not run.summary.complete
    first = next(run)
    assert first.event_type == "remittance"
    assert list(run) == []
    assert run.summary.complete and run.summary.accounted
    assert json.loads(json.dumps(run.summary.to_dict()))["claims_seen"] == 1


def test_event_ids_are_deterministic_and_positional():
    text = document(claim("SAME"), claim("SAME"), amount="160")
    first, _ = parse_text(text, name="a.835")
    again, _ = parse_text(text, name="renamed.835")
    ids = [event.event_id for event in events(first)]
    assert ids == [event.event_id for event in events(again)]  # same content, same ids
    assert ids[0] != ids[1]  # identical claims at different positions
    assert all(re.fullmatch(r"[0-9a-f]{32}", event_id) for event_id in ids)
    other = document(claim("SAME"), claim("SAME"), amount="160").replace("000000777", "000000778")
    assert [event.event_id for event in events(parse_text(other)[0])] != ids  # other interchange


def test_constructed_models_stay_independent_after_model_copy():
    items, _ = parse_text(document(claim("A"), claim("B"), amount="160"))
    a, b = events(items)
    stamped = a.model_copy(update={"ingested_at": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)})
    assert "ingested_at" in stamped.model_fields_set
    assert stamped.ingested_at is not None and a.ingested_at is None and b.ingested_at is None
    assert type(a).model_validate(stamped.model_dump()).ingested_at is not None


@pytest.mark.parametrize("data", [b"", b"   \n", b"hello world", b"\xff\xfe\x00garbage"])
def test_not_x12(data):
    items, summary = parse_text(data, name="junk.txt")
    check_items(items, summary)
    (letter,) = dead_letters(items)
    assert letter.reason == "not_x12" and not summary.readable


def test_bom_leading_blank_and_junk_before_the_isa():
    items, summary = parse_text(b"\xef\xbb\xbf\r\n  " + document(claim()).encode())
    assert len(events(items)) == 1 and summary.warnings == []
    items, summary = parse_text("SOME BANNER\n" + document(claim()))
    assert len(events(items)) == 1
    assert any("before the ISA" in warning for warning in summary.warnings)


def test_non_ascii_names_and_cr_only_line_ends():
    text = document(claim()).replace("CLINIC", "CLÍNICA").replace("~", "~\r")
    items, _ = parse_text(text.encode("utf-8"))
    (event,) = events(items)
    assert event.payee.name == "CLÍNICA"
    assert event.source.line > 1
    latin = document(claim()).replace("CLINIC", "CLÍNICA").encode("latin-1")
    items, _summary = parse_text(latin)
    assert len(events(items)) == 1  # an undecodable byte is replaced, the claim survives


def test_debit_payment_balances_with_negative_total():
    text = document(claim()).replace("BPR*I*80*C", "BPR*I*80*D").replace("*100*80*20*", "*100*-80*20*")
    text = text.replace("SVC*HC:99213*100*80**1~CAS*PR*2*20~", "SVC*HC:99213*100*-80**1~CAS*PR*2*180~")
    items, summary = parse_text(text)
    assert summary.unbalanced_transactions == 0 and events(items)[0].payment.credit_debit == "D"


def test_composite_description_is_not_a_modifier_and_too_many_components_is_rejected():
    described = claim(body="CLP*D1*1*100*100**12~SVC*HC:99213:25::::OFFICE VISIT*100*100~")
    crowded = claim(body="CLP*D2*1*100*100**12~SVC*HC:99213:1:2:3:4:DESC:X:Y*100*100~")
    items, _ = parse_text(document(described, crowded, amount="200"))
    (event,) = events(items)
    assert event.service_lines[0].modifiers == ["25"]
    (letter,) = dead_letters(items)
    assert (letter.reason, letter.location.element) == ("bad_composite", "SVC01")


def test_cas_with_more_than_six_triplets_is_rejected():
    seven = "*".join(["CO", *["45*1*"] * 7])
    body = f"CLP*C7*1*100*93**12~SVC*HC:99213*100*93~CAS*{seven}~"
    items, _ = parse_text(document(claim(body=body), amount="93"))
    (letter,) = dead_letters(items)
    assert letter.reason == "truncated_segment" and letter.location.element == "CAS20"


def test_orphan_service_line_is_a_dead_letter_not_a_claim():
    text = document("SVC*HC:99213*100*80~CAS*PR*2*20~" + claim())
    items, summary = parse_text(text)
    assert summary.claims_seen == 1 and summary.accounted
    assert [letter.reason for letter in dead_letters(items)] == ["unexpected_segment", "unexpected_segment"]


def test_an_internal_error_costs_one_claim(monkeypatch):
    original = x12.Parser._claim_event

    def explode(self, claim, *args):
        if claim["patient_control_number"] == "BOOM":
            raise RuntimeError("bug")
        return original(self, claim, *args)

    monkeypatch.setattr(x12.Parser, "_claim_event", explode)
    items, summary = parse_text(document(claim("OK1"), claim("BOOM"), claim("OK2"), amount="240"))
    assert [event.patient_control_number for event in events(items)] == ["OK1", "OK2"]
    (letter,) = dead_letters(items)
    assert letter.reason == "internal_error" and "RuntimeError" in letter.detail
    assert summary.accounted


def test_phi_never_reaches_a_dead_letter():
    broken_nm1 = "CLP*N1*1*100*80*20*12~NM1~SVC*HC:99213*100*80~CAS*PR*2*20~"
    items, _ = parse_text(document(claim(body=broken_nm1)))
    (letter,) = dead_letters(items)
    assert letter.location.segment_id == "NM1" and letter.excerpt is None
    parser = x12.Parser("phi.835", KEY)
    problem = parser._problem_from_exception(IndexError("x"), "NM1*QC*1*HIDDENLAST*HIDDENFIRST****MI*SECRET", "*", 5, 5)
    assert problem.excerpt is None
    assert "HIDDEN" not in problem.detail and "SECRET" not in problem.detail
    for name in ("NM1", "N3", "N4", "DMG", "PER", "REF", "N1"):
        assert name not in x12.EXCERPT_SEGMENTS


def test_transaction_without_se_then_another_transaction():
    text = ISA + HEADER.format(amount="80") + claim() + "ST*835*0002~BPR*I*80*C*ACH~LX*1~" + claim("P2") + TRAILER
    items, summary = parse_text(text)
    assert [event.source.transaction_control_number for event in events(items)] == ["0001", "0002"]
    assert any("not closed by SE" in warning for warning in summary.warnings)


def test_every_reason_is_documented():
    assert {
        "bad_amount",
        "bad_date",
        "missing_element",
        "truncated_segment",
        "unexpected_segment",
    } <= DEAD_LETTER_REASONS
    items, _ = parse_text((FIXTURES / "bad_claims.835").read_bytes())
    assert {letter.reason for letter in dead_letters(items)} <= DEAD_LETTER_REASONS


def test_warnings_are_bounded(monkeypatch):
    monkeypatch.setattr(x12, "MAX_WARNINGS", 3)
    text = ISA + "".join(f"ST*835*{n:04d}~BPR*I*1*C*ACH~LX*1~{claim()}SE*9*{n:04d}~" for n in range(6))
    _items, summary = parse_text(text)
    assert len(summary.warnings) == 3 and summary.warnings_dropped > 0


def test_synthetic_files_parse_balanced():
    for unique in (False, True):
        items, summary = parse_text(generate_835(120, seed=2, claims_per_transaction=40, unique_amounts=unique))
        check_items(items, summary)
        assert summary.transactions == 3 and summary.events_emitted == 120
        assert summary.claims_with_balance_issues == 0 and summary.unbalanced_transactions == 0
        assert summary.warnings == []
        assert all(line.units >= 1 for event in events(items) for line in event.service_lines)
        assert sum(event.paid_amount for event in events(items)) != Decimal(0)
    assert generate_835(30, seed=4) == generate_835(30, seed=4) != generate_835(30, seed=5)
