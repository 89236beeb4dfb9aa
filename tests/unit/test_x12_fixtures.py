"""One fixture per 835 pitfall (files the project wrote: tests/unit/fixtures/x12/, see README there)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from services.ingestion.phi import patient_key
from tests.unit.test_x12_support import (
    FIXTURES,
    KEY,
    adjustments_of,
    check_items,
    dead_letters,
    events,
    fixture,
)

D = Decimal


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.835")), ids=lambda path: path.name)
def test_every_fixture_holds_the_invariants(path):
    items, summary = fixture(path.name)
    check_items(items, summary)


def test_rich_5010_claim_with_crlf():
    items, summary = fixture("rich_5010_crlf.835")
    assert summary.warnings == []
    assert (summary.claims_seen, summary.events_emitted, summary.provider_adjustments) == (4, 4, 1)
    first, denied, reversal, correction = events(items)

    # header
    assert first.payment.amount == D("522.52")
    assert first.payment.method == "ACH" and first.payment.credit_debit == "C"
    assert first.payment.date == dt.date(2025, 1, 6)
    assert (first.payment.trace_number, first.payment.trace_originator) == ("EFT0001", "1512345678")
    assert (first.payer.id, first.payer.name) == ("FIXPAYER01", "FIXTURE HEALTH PLAN")
    assert (first.payee.name, first.payee.npi, first.payee.tax_id) == ("FIXTURE CLINIC", "1999999984", "111223333")
    assert first.production_date == dt.date(2025, 1, 5)
    assert first.source.interchange_control_number == "000000101"
    assert first.source.transaction_control_number == "0001"
    assert first.source.segment_index == 14 and first.source.line == 14

    # claim level
    assert first.patient_control_number == "CLAIM-A" and first.status_code == "1"
    assert (first.charge_amount, first.paid_amount, first.patient_responsibility_amount) == (D(1000), D(520), D(140))
    assert (first.claim_filing_indicator, first.payer_claim_id) == ("12", "PCN-A-001")
    assert (first.facility_type_code, first.frequency_code) == ("11", "1")
    assert [(a.group_code, a.reason_code, a.amount) for a in first.adjustments] == [
        ("OA", "23", D(-5)),
        ("OA", "94", D(5)),
    ]
    assert first.remark_codes == ["MA01", "N830"]
    assert first.rendering_provider_npi == "1234567893"
    assert first.claim_received_date == dt.date(2024, 12, 20)
    assert (first.service_date_from, first.service_date_to) == (dt.date(2024, 12, 1), dt.date(2024, 12, 2))
    assert first.amounts == {"AU": D(1000)} and first.reported_allowed_amount is None
    # NM1*QC has no id: the subscriber's (NM1*IL09) is used; names are nowhere
    assert first.patient_key == patient_key(KEY, "FIXPAYER01", "W123456789")
    assert "DOE" not in first.model_dump_json() and "JANE" not in first.model_dump_json()
    assert first.balance_issues == []

    # line 1: 4 modifiers, SVC06, two CAS groups, AMT*B6, two LQ*HE
    line = first.service_lines[0]
    assert (line.procedure_qualifier, line.procedure_code) == ("HC", "99215")
    assert line.modifiers == ["25", "59", "GT", "95"]
    assert line.original_procedure_code == "99214"
    assert (line.charge_amount, line.paid_amount, line.units) == (D(600), D(300), D(1))
    assert line.service_date == dt.date(2024, 12, 1)
    assert line.line_control_number == "LINE-A-1"
    assert [(a.group_code, a.reason_code, a.amount, a.quantity) for a in line.adjustments] == [
        ("CO", "45", D(150), D(1)),
        ("CO", "253", D(10), None),
        ("PR", "1", D(100), None),
        ("PR", "2", D(40), None),
    ]
    assert line.reported_allowed_amount == D(440)
    assert line.derived_allowed_amount == D(440)  # paid 300 + PR 140
    assert line.remark_codes == ["N130", "M15"]
    # line 2: no SVC05 (units 1), DTM*150/151, one CAS with 6 triplets incl. a negative one, no AMT*B6
    line = first.service_lines[1]
    assert line.procedure_code == "J1100" and line.modifiers == [] and line.units == D(1)
    assert line.service_date == dt.date(2024, 12, 1)
    assert [a.reason_code for a in line.adjustments] == ["45", "97", "94", "A2", "B10", "131"]
    assert sum(a.amount for a in line.adjustments) == D(180)
    assert line.adjustments[2].amount == D(-10)
    assert line.reported_allowed_amount is None  # missing AMT*B6 stays null, never 0
    assert line.derived_allowed_amount == D(220)

    # denial without service lines: claim-level CAS only, MIA remark
    assert denied.status_code == "4" and denied.service_lines == []
    assert denied.remark_codes == ["MA01"]
    assert denied.patient_key == patient_key(KEY, "FIXPAYER01", "M998877")

    # reversal (22) and correction of the same claim: same claim key, negative amounts kept
    assert reversal.is_reversal and reversal.paid_amount == D(-520)
    assert reversal.service_lines[0].derived_allowed_amount == D(-650)
    assert correction.status_code == "1" and correction.frequency_code == "7"
    assert reversal.claim_key == correction.claim_key == first.claim_key
    assert reversal.patient_key == correction.patient_key == first.patient_key
    assert len({first.event_id, reversal.event_id, correction.event_id}) == 3

    (plb,) = adjustments_of(items)
    assert plb.provider_id == "1999999984" and plb.fiscal_period_date == dt.date(2025, 12, 31)
    assert [(a.reason_code, a.reference_id, a.amount) for a in plb.adjustments] == [
        ("WO", "CLAIM-X", D(25)),
        ("L6", None, D("-3.5")),
        ("CV", "CP", D("-1.27")),
        ("FB", "REF1", D(10)),
        ("72", "LOAN9", D(5)),
        ("B2", None, D("2.25")),
    ]
    assert plb.payment == first.payment and plb.event_type == "provider_adjustment"


def test_one_line_file_with_two_interchanges_and_other_delimiters():
    items, summary = fixture("one_line_two_interchanges.835")
    assert summary.interchanges == 2 and summary.transactions == 2
    assert summary.delimiters == {"element": "|", "component": ">", "segment": "!", "repetition": "}"}
    assert "00401" in summary.versions and "004010X091A1" in summary.versions
    assert any("other delimiters" in warning for warning in summary.warnings)
    one, two = events(items)
    assert one.source.interchange_control_number == "000000201"
    assert one.service_lines[0].modifiers == ["25"]
    assert one.source.line == 1  # a one-line file: every segment is on line 1
    assert two.source.interchange_control_number == "000000202"
    assert two.service_lines[0].procedure_code == "97110" and two.service_lines[0].units == D(2)
    assert two.payment.method == "CHK"
    assert two.patient_key == patient_key(KEY, "FIXPAYER01", "123456789")


def test_declared_colon_but_written_greater_than():
    items, summary = fixture("declared_colon_writes_gt.835")
    (event,) = events(items)
    line = event.service_lines[0]
    assert (line.procedure_code, line.modifiers, line.original_procedure_code) == ("99214", ["25"], "99215")
    (plb,) = adjustments_of(items)
    assert (plb.adjustments[0].reason_code, plb.adjustments[0].reference_id) == ("WO", "GT-0")
    assert len(summary.warnings) == 1 and "uses '>'" in summary.warnings[0]


def test_file_without_envelope():
    items, summary = fixture("no_envelope.835")
    assert not summary.envelope and summary.readable
    assert summary.warnings[0].startswith("no ISA envelope")
    (event,) = events(items)
    assert event.source.interchange_control_number is None
    assert event.source.transaction_control_number == "1234"
    assert event.paid_amount == D(60)


@pytest.mark.parametrize("name", ["bom_wrapped_80.835", "indented_blank_lines.835"])
def test_bom_wrapping_indentation_and_blank_lines(name):
    items, summary = fixture(name)
    assert summary.warnings == []
    (event,) = events(items)
    line = event.service_lines[0]
    assert (event.patient_control_number, event.paid_amount) == ("WRAP-1", D("130.5"))
    assert (line.procedure_code, line.modifiers, line.line_control_number) == ("20610", ["RT"], "WRAPLINE1")
    assert line.reported_allowed_amount == D("160.5") == line.derived_allowed_amount
    assert event.source.line > 1


def test_the_same_claims_give_the_same_event_ids_whatever_the_layout():
    wrapped = events(fixture("bom_wrapped_80.835")[0])
    indented = events(fixture("indented_blank_lines.835")[0])
    assert [event.event_id for event in wrapped] == [event.event_id for event in indented]


def test_newline_as_segment_terminator():
    items, summary = fixture("newline_terminator.835")
    assert summary.delimiters["segment"] == "\n" and summary.delimiters["element"] == "|"
    (event,) = events(items)
    assert event.patient_control_number == "NOENV-1" and event.source.line == event.source.segment_index


def test_bad_claims_become_dead_letters_and_the_rest_parses():
    items, summary = fixture("bad_claims.835")
    assert [event.patient_control_number for event in events(items)] == ["GOOD-1", "GOOD-2"]
    assert summary.claims_seen == 11 and summary.claim_dead_letters == 9 and summary.dead_letters == 10
    # header problems are warnings, the dates become null, the claims live
    good = events(items)[0]
    assert good.payment.date is None and good.production_date is None
    assert any("BPR16" in warning for warning in summary.warnings)
    assert any("DTM*405" in warning for warning in summary.warnings)
    found = [(letter.reason, letter.location.segment_id, letter.location.element) for letter in dead_letters(items)]
    assert found == [
        ("bad_amount", "CLP", "CLP04"),
        ("bad_date", "DTM", "DTM02"),
        ("truncated_segment", "CLP", "CLP04"),
        ("unexpected_segment", "LQ", None),
        ("missing_element", "SVC", "SVC01-2"),
        ("missing_element", "CAS", "CAS03"),
        ("bad_number", "SVC", "SVC05"),
        ("missing_element", "CLP", "CLP01"),
        ("unexpected_segment", "C@S", None),
        ("bad_amount", "PLB", "PLB04"),
    ]
    bad_amount = dead_letters(items)[0]
    assert "'12.3.4'" in bad_amount.detail
    assert bad_amount.excerpt == "CLP*BAD-AMOUNT*1*100*12.3.4*20*12*P*11*1"
    assert bad_amount.location.file == "bad_claims.835"
    assert bad_amount.location.interchange_control_number == "000000801"
    assert bad_amount.location.transaction_control_number == "0001"
    assert bad_amount.location.segment_index == 19 and bad_amount.location.line == 19
    # no patient data anywhere in what goes to the dead-letter topic
    for letter in dead_letters(items):
        text = letter.model_dump_json()
        assert "SECRET" not in text, text
    assert len({letter.dead_letter_id for letter in dead_letters(items)}) == 10


def test_file_truncated_inside_a_claim():
    items, summary = fixture("truncated_mid_claim.835")
    assert [event.patient_control_number for event in events(items)] == ["WHOLE-1"]
    (letter,) = dead_letters(items)
    assert letter.reason == "truncated_segment" and letter.location.segment_id == "CAS"
    assert any("not closed by SE" in warning for warning in summary.warnings)


def test_balancing_failures_are_reported_not_raised():
    items, summary = fixture("unbalanced.835")
    line_issue, claim_issue, bare = events(items)
    (issue,) = line_issue.balance_issues
    assert (issue.rule, issue.line_index, issue.expected, issue.actual) == ("line", 0, D(80), D(85))
    (issue,) = claim_issue.balance_issues
    assert (issue.rule, issue.line_index, issue.expected, issue.actual) == ("claim", None, D(130), D(80))
    assert bare.balance_issues == []  # no lines and no CAS: nothing to balance against
    assert summary.claims_with_balance_issues == 2
    assert summary.unbalanced_transactions == 1
    assert any("BPR02 is 999" in warning for warning in summary.warnings)


def test_non_835_transaction_is_skipped_and_unusable_payment_dead_letters_its_claims():
    items, summary = fixture("mixed_837_and_bad_bpr.835")
    letters = dead_letters(items)
    assert [letter.reason for letter in letters] == ["not_835", "bad_header", "bad_header"]
    assert letters[0].location.segment_id == "ST"
    assert [event.patient_control_number for event in events(items)] == ["AFTER-837"]
    assert summary.claims_seen == 2 and summary.claim_dead_letters == 1
    assert any("balance not checked" in warning for warning in summary.warnings)


def test_several_groups_and_transactions_keep_their_own_header():
    items, summary = fixture("multi_gs_st.835")
    assert (summary.functional_groups, summary.transactions) == (2, 3)
    m1, m2, m3 = events(items)
    assert (m1.payer.id, m2.payer.id, m3.payer.id) == ("PAYER1", "PAYER1", "PAYER2")
    assert m1.source.transaction_control_number == "0001" and m3.source.transaction_control_number == "0002"
    # same member id, different payers: different keys
    assert m1.patient_key != m3.patient_key
    (plb,) = adjustments_of(items)
    assert plb.source.transaction_control_number == "0003" and plb.payment.amount == D("-12.5")
    assert summary.unbalanced_transactions == 0
