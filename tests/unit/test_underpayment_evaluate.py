"""Underpayment evaluation: allowed amount, sequestration, tolerance, classification, totals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from schemas.evaluation import ClaimEvaluation
from services.underpayment.evaluate import compared_allowed, evaluate, evaluation_id_for
from tests.unit.test_pricing_support import adjustment, context, event, line, medicare, policy, reference

D = Decimal
FIXED_FEES = (
    "payer_id,code,rate_type,rate,effective_from\n"
    "ACME1,99214,fixed,100.00,2024-01-01\n"
    "ACME1,99213,fixed,80.00,2024-01-01\n"
)
NOW = dt.datetime(2025, 4, 1, 12, 0, tzinfo=dt.UTC)


def ref_with(tolerance_amount="1.00", tolerance_pct="0", benchmark="100% medicare"):
    return reference(payer_policies=policy(benchmark, tolerance_amount, tolerance_pct), fee_schedules=FIXED_FEES)


def run(ref, lines, ctx=None, **kwargs) -> ClaimEvaluation:
    return evaluate(event(lines, **kwargs), ctx if ctx is not None else context(), ref, evaluated_at=NOW)


def test_underpaid_as_expected_overpaid_with_dollar_tolerance():
    ref = ref_with(tolerance_amount="1.00")
    assert run(ref, [line(paid="98.99")]).lines[0].status == "underpaid"
    assert run(ref, [line(paid="99.00")]).lines[0].status == "as_expected"
    assert run(ref, [line(paid="101.00")]).lines[0].status == "as_expected"
    assert run(ref, [line(paid="101.01")]).lines[0].status == "overpaid"
    under = run(ref, [line(paid="90.00")]).lines[0]
    assert (under.expected_amount, under.allowed_amount, under.variance) == (D("100.00"), D("90.00"), D("-10.00"))
    assert under.underpaid_amount == D("10.00") and under.tolerance_amount == D("1.00")
    assert under.basis == "contract"


def test_percent_tolerance_wins_when_larger():
    ref = ref_with(tolerance_amount="1.00", tolerance_pct="5")
    assert run(ref, [line(paid="95.00")]).lines[0].status == "as_expected"
    assert run(ref, [line(paid="94.99")]).lines[0].status == "underpaid"
    assert run(ref, [line(paid="95.00")]).lines[0].tolerance_amount == D("5.00")


def test_default_tolerance_without_policy():
    ref = reference(fee_schedules=FIXED_FEES)
    assert run(ref, [line(paid="99.00")]).lines[0].status == "as_expected"
    assert run(ref, [line(paid="98.99")]).lines[0].status == "underpaid"


def test_allowed_is_paid_plus_patient_responsibility_when_amt_b6_is_absent():
    ref = ref_with()
    result = run(ref, [line(paid="70.00", pr="30.00")]).lines[0]
    assert result.allowed_source == "derived" and result.allowed_amount == D("100.00")
    assert result.status == "as_expected"


def test_reported_allowed_wins_and_disagreement_is_flagged():
    ref = ref_with()
    agree = run(ref, [line(paid="70.00", pr="30.00", allowed="100.00")]).lines[0]
    assert agree.allowed_source == "reported" and not agree.allowed_mismatch
    disagree = run(ref, [line(paid="70.00", pr="20.00", allowed="100.00")]).lines[0]
    assert disagree.allowed_mismatch and disagree.allowed_amount == D("100.00")
    assert disagree.derived_allowed_amount == D("90.00")
    within_a_cent = run(ref, [line(paid="70.00", pr="29.99", allowed="100.00")]).lines[0]
    assert not within_a_cent.allowed_mismatch


def test_sequestration_is_added_back_before_comparing():
    ref = ref_with(tolerance_amount="0.00")
    # Medicare-style: allowed 100, sequestration 2% of the payer's 80 = 1.60, paid 78.40, coinsurance 20
    lines = [line(paid="78.40", pr="20.00", adjustments=[adjustment("CO", "253", "1.60")])]
    derived = run(ref, lines).lines[0]
    assert derived.sequestration_amount == D("1.60")
    assert derived.allowed_amount == D("100.00") and derived.status == "as_expected"
    pre = run(ref, [dict(lines[0], reported_allowed_amount="100.00")]).lines[0]
    assert pre.allowed_amount == D("100.00") and not pre.allowed_mismatch
    net = run(ref, [dict(lines[0], reported_allowed_amount="98.40")]).lines[0]  # payer reported it net of CO-253
    assert net.allowed_amount == D("100.00") and not net.allowed_mismatch


def test_compared_allowed_function_directly():
    item = event([line(paid="78.40", pr="20.00", adjustments=[adjustment("CO", "253", "1.60")])]).service_lines[0]
    assert compared_allowed(item) == (D("100.00"), "derived", False, D("1.60"))


def test_secondary_payer_is_not_comparable():
    ref = ref_with()
    by_status = run(ref, [line(paid="10.00")], status="2")
    assert by_status.status == "not_comparable" and by_status.reason == "secondary_payer"
    assert by_status.lines[0].status == "not_comparable"
    by_oa23 = run(ref, [line(paid="10.00", adjustments=[adjustment("OA", "23", "90.00")])])
    assert by_oa23.status == "not_comparable" and by_oa23.lines[0].reason == "secondary_payer"
    claim_level = run(ref, [line(paid="10.00")], claim_adjustments=[adjustment("OA", "23", "90.00")])
    assert claim_level.reason == "secondary_payer"
    tertiary_forwarded = run(ref, [line(paid="10.00")], status="21")
    assert tertiary_forwarded.reason == "secondary_payer"
    primary_forwarded = run(ref, [line(paid="10.00")], status="19")
    assert primary_forwarded.status == "underpaid"


def test_denials():
    ref = ref_with()
    claim_denied = run(ref, [line(paid="0", adjustments=[adjustment("CO", "242", "300.00")])], status="4")
    assert claim_denied.status == "denied" and claim_denied.lines[0].reason == "claim_denied"
    line_denied = run(
        ref,
        [line(paid="0", adjustments=[adjustment("CO", "97", "300.00")]), line(1, "99213", paid="80.00")],
    )
    assert [item.status for item in line_denied.lines] == ["denied", "as_expected"]
    assert line_denied.status == "as_expected"
    assert line_denied.lines[0].adjustment_codes == ["CO-97"]
    # all to deductible: allowed 100, paid 0 -> not a denial
    deductible = run(ref, [line(paid="0", pr="100.00")]).lines[0]
    assert deductible.status == "as_expected"
    # zero allowed with only a fee-schedule reduction is an underpayment, not a denial
    zero = run(ref, [line(paid="0", adjustments=[adjustment("CO", "45", "300.00")])]).lines[0]
    assert zero.status == "underpaid"


def test_missing_reference_is_not_comparable_never_zero():
    ref = ref_with()
    result = run(ref, [line(code="99215", paid="50.00")], context(zip_code=None))
    item = result.lines[0]
    assert item.status == "not_comparable" and item.reason == "missing_reference"
    assert item.expected_amount is None and item.variance is None and item.underpaid_amount == 0
    assert result.status == "not_comparable" and result.reason == "missing_reference"
    assert result.totals.expected == 0  # sum of the lines that have one


def test_reversal_status():
    ref = ref_with()
    result = run(ref, [line(paid="90.00")], status="22", sign=-1)
    assert result.status == "reversal" and result.lines[0].status == "reversal"
    assert result.lines[0].expected_amount == D("-100.00")
    assert result.totals.allowed == D("-90.00")


def test_claim_status_and_totals():
    ref = ref_with()
    expected_99215 = medicare(ref, "99215")
    result = run(
        ref,
        [
            line(0, "99214", charge="300.00", paid="80.00", pr="10.00"),
            line(1, "99213", charge="200.00", paid="100.00"),
            line(2, "99215", charge="400.00", paid=str(expected_99215)),
        ],
    )
    assert [item.status for item in result.lines] == ["underpaid", "overpaid", "as_expected"]
    assert result.status == "underpaid"
    totals = result.totals
    assert totals.billed == D("900.00")
    assert totals.paid == D("180.00") + expected_99215
    assert totals.allowed == D("190.00") + expected_99215
    assert totals.underpaid == D("10.00")
    assert totals.expected == D("180.00") + expected_99215
    assert result.evaluation_id == evaluation_id_for("evt-1")
    assert result.evaluated_at == NOW
    assert result.payer_group == "other"


def test_claim_status_precedence_without_underpaid_lines():
    ref = ref_with()
    assert run(ref, [line(paid="100.00"), line(1, "99213", paid="95.00")]).status == "overpaid"
    denied_and_unpriced = run(
        ref, [line(paid="0", adjustments=[adjustment("CO", "97", "300.00")]), line(1, "99999", paid="5.00")]
    )
    assert denied_and_unpriced.status == "denied"


def test_evaluation_carries_context_facts_and_no_patient_data():
    ref = ref_with()
    result = run(ref, [line(paid="90.00")], context(state="TX"), patient_key="secret-hmac")
    assert result.state == "TX" and result.specialty_group == "orthopedic surgery" and result.context_joined
    assert "secret-hmac" not in result.model_dump_json()
    from_zip = run(ref, [line(paid="90.00")], context(state=None))
    assert from_zip.state == "TX"  # from the ZIP5 file


def test_evaluation_json_round_trip():
    ref = ref_with(benchmark="max(150% medicare, 100% ucr80)")
    result = run(ref, [line(paid="90.00"), line(1, "99215", paid="10.00", modifiers=["25"])])
    again = ClaimEvaluation.model_validate_json(result.model_dump_json())
    assert again == result
    data = result.model_dump(mode="json")
    assert isinstance(data["lines"][0]["expected_amount"], str)  # money as a decimal string


def test_medicare_amount_of_the_line_is_reported_for_percent_of_medicare_dashboards():
    ref = ref_with()
    item = run(ref, [line(paid="90.00", units="2")]).lines[0]
    unit = medicare(ref, "99214")
    assert item.medicare_unit_amount == unit
    assert item.medicare_amount == unit * 2
    assert item.medicare_locality == "04412-18"
