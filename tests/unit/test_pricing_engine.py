"""The expected-amount engine: precedence, rate terms and the CMS payment-policy adjustments."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest

from services.pricing.engine import escalation_years, price_claim
from tests.unit.test_pricing_support import context, event, line, medicare, policy, reference

D = Decimal


def cents(value: Decimal) -> Decimal:
    return value.quantize(D("0.01"), rounding=ROUND_HALF_UP)


def price(ref, lines, ctx=None, **kwargs):
    return price_claim(event(lines, **kwargs), ctx if ctx is not None else context(), ref).lines


FEE_HEADER = (
    "payer_id,product,code,modifier,pos_class,effective_from,effective_to,rate_type,rate,ucr_percentile,"
    "lesser_of_billed,escalator_pct,escalator_base_date\n"
)
SCA_HEADER = (
    "sca_id,payer_id,patient_key,payer_claim_id,authorization_number,codes,rate_type,rate,ucr_percentile,"
    "lesser_of_billed,escalator_pct,escalator_base_date,effective_from,effective_to\n"
)


# --- precedence --------------------------------------------------------------------------------------


def test_sca_beats_contract_beats_policy():
    fees = FEE_HEADER + "ACME1,,99214,,any,2024-01-01,,fixed,150.00,,false,,\n"
    scas = SCA_HEADER + "S1,ACME1,,,AUTH-1,99214,pct_billed,80,,false,,,,\n"
    ref = reference(payer_policies=policy("140% medicare"), fee_schedules=fees, scas=scas)
    with_auth = price(ref, [line(charge="300.00")], context(authorization="AUTH-1"))[0]
    assert (with_auth.basis, with_auth.expected) == ("sca", D("240.00"))
    assert with_auth.rate_term.sca_id == "S1"
    assert "SCA S1" in with_auth.explanation and "80% of billed 300.00" in with_auth.explanation
    without_auth = price(ref, [line()], context(authorization="OTHER"))[0]
    assert (without_auth.basis, without_auth.expected) == ("contract", D("150.00"))
    assert without_auth.rate_term.source == "fee_schedules.csv:2"
    other_code = price(ref, [line(code="99213")])[0]
    assert other_code.basis == "oon_policy"
    assert other_code.expected == cents(medicare(ref, "99213") * D("1.40"))


def test_sca_matches_on_payer_claim_id_and_patient_key_and_codes():
    scas = SCA_HEADER + (
        "S-CLAIM,ACME1,,CLM-9,,*,fixed,99.00,,false,,,,\n"
        "S-PATIENT,ACME1,abc123,,,99213;99214,fixed,77.00,,false,,,2025-01-01,2025-12-31\n"
    )
    ref = reference(payer_policies=policy(), scas=scas)
    assert price(ref, [line(code="20610")], payer_claim_id="CLM-9")[0].expected == D("99.00")
    by_patient = price(ref, [line(code="99213"), line(1, "20610")], patient_key="abc123")
    assert by_patient[0].basis == "sca" and by_patient[0].expected == D("77.00")
    assert by_patient[1].basis == "oon_policy"  # code not in the SCA's list
    expired = price_claim(
        event([line(code="99213", service_date="2026-01-05")], patient_key="abc123"), context(), ref
    ).lines[0]
    assert expired.basis == "oon_policy"


def test_sca_of_another_payer_does_not_apply():
    scas = SCA_HEADER + "S1,OTHER,,CLM-1,,*,fixed,99.00,,false,,,,\n"
    ref = reference(payer_policies=policy(), scas=scas)
    assert price(ref, [line()])[0].basis == "oon_policy"


def test_contract_match_prefers_specific_modifier_pos_and_product():
    fees = FEE_HEADER + (
        "ACME1,,70450,,any,2024-01-01,,fixed,200.00,,false,,\n"
        "ACME1,,70450,26,any,2024-01-01,,fixed,58.00,,false,,\n"
        "ACME1,PPO,99214,,any,2024-01-01,,fixed,150.00,,false,,\n"
        "ACME1,,99214,,nonfacility,2024-01-01,,fixed,140.00,,false,,\n"
        "ACME1,,99214,,facility,2024-01-01,,fixed,90.00,,false,,\n"
    )
    ref = reference(payer_policies=policy(), fee_schedules=fees)
    prices = price(ref, [line(code="70450", modifiers=["26"]), line(1, "70450")], context())
    assert [p.expected for p in prices] == [D("58.00"), D("200.00")]
    assert price(ref, [line()], context(pos="11"))[0].expected == D("140.00")
    assert price(ref, [line()], context(pos="22"))[0].expected == D("90.00")
    # pos_class outranks product (modifier > place of service > product)
    assert price(ref, [line()], context(pos="11", product="PPO"))[0].expected == D("140.00")


def test_contract_effective_dates_by_date_of_service():
    fees = FEE_HEADER + (
        "ACME1,,93306,,any,2024-01-01,2024-12-31,fixed,240.00,,false,,\n"
        "ACME1,,93306,,any,2025-01-01,,fixed,255.00,,false,,\n"
    )
    ref = reference(payer_policies=policy(), fee_schedules=fees)
    assert price(ref, [line(code="93306", service_date="2024-12-31")])[0].expected == D("240.00")
    assert price(ref, [line(code="93306", service_date="2025-01-01")])[0].expected == D("255.00")
    before = price(ref, [line(code="93306", service_date="2023-06-01")])[0]
    assert before.basis == "oon_policy"


def test_no_terms_at_all_gives_no_expected_amount():
    ref = reference()
    result = price(ref, [line()])[0]
    assert result.expected is None and result.reason == "no_terms" and result.basis is None


# --- rate terms -----------------------------------------------------------------------------------------


def test_percent_of_medicare_explanation_names_every_input():
    ref = reference(payer_policies=policy("140% medicare"))
    result = price(ref, [line()])[0]
    unit = medicare(ref, "99214")
    assert result.expected == cents(unit * D("1.40"))
    text = result.explanation
    assert f"140% of Medicare 2025 PFS 99214 at 04412-18 non-facility = 1.40 x {unit} = {result.expected}" in text
    assert "x 1 unit" in text
    assert "32.3465" in text and "1.003" in text  # the CF and a GPCI are shown


def test_units_multiply():
    ref = reference(payer_policies=policy("100% medicare"))
    unit = medicare(ref, "99214")
    assert price(ref, [line(units="3")])[0].expected == unit * 3


def test_fixed_rate_with_units_and_lesser_of_billed():
    fees = FEE_HEADER + "ACME1,,99214,,any,2024-01-01,,fixed,150.00,,true,,\n"
    ref = reference(payer_policies=policy(), fee_schedules=fees)
    assert price(ref, [line(units="2", charge="500.00")])[0].expected == D("300.00")
    lesser = price(ref, [line(units="2", charge="250.00")])[0]
    assert lesser.expected == D("250.00")
    assert "lesser of billed 250.00" in lesser.explanation


def test_pct_billed_uses_the_line_charge_once():
    ref = reference(payer_policies=policy("85% billed"))
    result = price(ref, [line(charge="123.45", units="3")])[0]
    assert result.expected == D("104.93")  # 0.85 x 123.45 = 104.9325 -> 104.93 (units are inside the charge)


def test_pct_ucr_uses_geozip_code_and_percentile():
    ucr = "geozip,code,modifier,p50,p80\n770,99214,,200.00,310.00\n770,70450,26,50.00,80.00\n"
    fees = FEE_HEADER + "ACME1,,99214,,any,2024-01-01,,pct_ucr,90,80,false,,\n"
    ref = reference(payer_policies=policy("100% ucr50"), ucr=ucr, fee_schedules=fees)
    assert price(ref, [line()])[0].expected == D("279.00")
    assert price(ref, [line(code="70450", modifiers=["26"])])[0].expected == D("50.00")
    missing = price(ref, [line(code="70450")])[0]  # no global 70450 row
    assert missing.expected is None and missing.reason == "missing_reference"
    other_zip = price(ref, [line()], context(zip_code="33136"))[0]
    assert other_zip.expected == D("279.00") or other_zip.basis == "contract"


def test_escalator_compounds_per_whole_year():
    assert escalation_years(dt.date(2023, 1, 1), dt.date(2025, 3, 4)) == 2
    assert escalation_years(dt.date(2023, 3, 5), dt.date(2025, 3, 4)) == 1
    assert escalation_years(dt.date(2023, 3, 4), dt.date(2025, 3, 4)) == 2
    assert escalation_years(dt.date(2026, 1, 1), dt.date(2025, 3, 4)) == 0
    assert escalation_years(dt.date(2024, 2, 29), dt.date(2025, 2, 28)) == 0
    assert escalation_years(dt.date(2024, 2, 29), dt.date(2025, 3, 1)) == 1
    fees = FEE_HEADER + (
        "ACME1,,99214,,any,2023-01-01,,fixed,100.00,,false,3,2023-01-01\n"
        "ACME1,,99213,,any,2023-01-01,,pct_medicare,100,,false,10,\n"
    )
    ref = reference(payer_policies=policy(), fee_schedules=fees)
    fixed = price(ref, [line()])[0]
    assert fixed.expected == D("106.09")  # 100 x 1.03^2
    assert "escalated +3%/year x 2 years" in fixed.explanation
    assert fixed.rate_term.escalated_rate == D("106.0900")
    pct = price(ref, [line(code="99213")])[0]  # base date defaults to effective_from
    assert pct.expected == cents(medicare(ref, "99213") * D("1.21"))


# --- Medicare-derived amounts: settings, modifiers, payment policy --------------------------------------


def test_facility_place_of_service_uses_facility_pe():
    ref = reference(payer_policies=policy("100% medicare"))
    assert price(ref, [line()], context(pos="22"))[0].expected == medicare(ref, "99214", facility=True)
    assert price(ref, [line()], context(pos="11"))[0].expected == medicare(ref, "99214", facility=False)
    # no context: CLP08 carries the place of service of a professional claim; no ZIP -> no locality
    no_zip = price(ref, [line()], context(zip_code=None))[0]
    assert no_zip.expected is None and no_zip.reason == "missing_reference"
    assert "no place-of-service ZIP" in no_zip.explanation


def test_unknown_place_of_service_is_non_facility_and_said_so():
    ref = reference(payer_policies=policy("100% medicare"))
    result = price(ref, [line()], context(pos=None))[0]
    assert result.expected == medicare(ref, "99214")
    assert "place of service unknown" in result.explanation
    from_clp08 = price(ref, [line()], context(pos=None), facility_type_code="22")[0]
    assert from_clp08.expected == medicare(ref, "99214", facility=True)


def test_professional_and_technical_component_rows():
    ref = reference(payer_policies=policy("100% medicare"))
    pc, tc, globl = price(
        ref, [line(0, "70450", modifiers=["26"]), line(1, "70450", modifiers=["TC"]), line(2, "70450")]
    )
    assert pc.expected == medicare(ref, "70450", "26")
    assert tc.expected == medicare(ref, "70450", "TC")
    assert globl.expected == medicare(ref, "70450")
    assert pc.expected != globl.expected


def test_multiple_procedure_reduction_highest_first_others_half():
    ref = reference(payer_policies=policy("100% medicare"))
    lower, higher = medicare(ref, "11042"), medicare(ref, "17311")
    assert higher > lower
    first, second = price(ref, [line(0, "11042"), line(1, "17311")])
    assert second.expected == higher
    assert first.expected == cents(lower * D("0.5"))
    assert "multiple-procedure reduction: 50%" in first.explanation
    # another date: no reduction
    first, second = price(ref, [line(0, "11042", service_date="2025-03-05"), line(1, "17311")])
    assert (first.expected, second.expected) == (lower, higher)


def test_multiple_procedure_reduction_counts_units_and_skips_denied_lines():
    ref = reference(payer_policies=policy("100% medicare"))
    unit = medicare(ref, "11042")
    alone = price(ref, [line(0, "11042", units="3")])[0]
    assert alone.expected == cents(unit * D("2"))  # 100% + 50% + 50%
    denied_other = price(
        ref,
        [
            line(0, "11042"),
            line(1, "17311", paid="0", adjustments=[{"group_code": "CO", "reason_code": "97", "amount": "300.00"}]),
        ],
    )
    assert denied_other[0].expected == unit  # the zero-allowed 17311 does not make 11042 secondary


def test_multiple_procedure_reduction_ignores_indicator_other_than_2_and_percent_of_billed():
    ref = reference(payer_policies=policy("100% medicare"))
    a, b = price(ref, [line(0, "99214"), line(1, "29881")])  # MULT PROC 0 and 3
    assert a.expected == medicare(ref, "99214") and b.expected == medicare(ref, "29881")
    billed = reference(payer_policies=policy("80% billed"))
    x, y = price(billed, [line(0, "11042", charge="100.00"), line(1, "17311", charge="200.00")])
    assert (x.expected, y.expected) == (D("80.00"), D("160.00"))


def test_bilateral_modifier_50():
    ref = reference(payer_policies=policy("100% medicare"))
    unit = medicare(ref, "20610")  # BILAT SURG 1
    result = price(ref, [line(code="20610", modifiers=["50"])])[0]
    assert result.expected == cents(unit * D("1.5"))
    assert "150% bilateral (modifier 50, BILAT SURG 1)" in result.explanation
    not_bilateral = price(ref, [line(code="11042", modifiers=["50"])])[0]  # BILAT SURG 0: 100%
    assert not_bilateral.expected == medicare(ref, "11042")


def test_assistant_at_surgery():
    ref = reference(payer_policies=policy("100% medicare"))
    unit = medicare(ref, "27447", facility=True)  # ASST SURG 2
    md = price(ref, [line(code="27447", modifiers=["80"])], context(pos="21"))[0]
    assert md.expected == cents(unit * D("0.16"))
    assert "16% assistant at surgery (modifier 80, ASST SURG 2)" in md.explanation
    pa = price(ref, [line(code="27447", modifiers=["AS"])], context(pos="21"))[0]
    assert pa.expected == cents(unit * D("0.136"))
    restricted = price(ref, [line(code="20610", modifiers=["80"])])[0]  # ASST SURG 1
    assert restricted.expected is None and restricted.reason == "no_medicare_amount"
    assert "ASST SURG 1" in restricted.explanation
    documented = price(ref, [line(code="93306", modifiers=["80"])])[0]  # ASST SURG 0
    assert documented.expected == cents(medicare(ref, "93306") * D("0.16"))
    assert "documentation" in documented.explanation


def test_fee_row_for_the_modifier_is_not_adjusted_again():
    fees = (
        FEE_HEADER
        + "ACME1,,27447,80,any,2024-01-01,,fixed,400.00,,false,,\n"
        + "ACME1,,27447,,any,2024-01-01,,fixed,2000.00,,false,,\n"
    )
    ref = reference(payer_policies=policy(), fee_schedules=fees)
    assistant = price(ref, [line(code="27447", modifiers=["80"])])[0]
    assert assistant.expected == D("400.00")
    via_wildcard = price(ref, [line(code="27447", modifiers=["82"])])[0]
    assert via_wildcard.expected == D("320.00")  # 16% of the 2000.00 global row


def test_no_national_amount_is_none_never_zero():
    ref = reference(payer_policies=policy("140% medicare"))
    lab = price(ref, [line(code="36415")])[0]  # status X
    assert lab.expected is None and lab.reason == "no_medicare_amount"
    assert "status X" in lab.explanation
    unknown = price(ref, [line(code="99999")])[0]
    assert unknown.expected is None and unknown.reason == "missing_reference"
    no_year = price(ref, [line(service_date="2031-01-01")])[0]
    assert no_year.expected is None and no_year.reason == "missing_reference"
    assert "no Medicare 2031 files" in no_year.explanation


def test_status_t_is_bundled_with_another_service_on_the_same_day():
    ref = reference(payer_policies=policy("100% medicare"))
    alone = price(ref, [line(code="96523")])[0]
    assert alone.expected == medicare(ref, "96523")
    bundled = price(ref, [line(0, "96523"), line(1, "99214")])[0]
    assert bundled.expected is None and "status T" in bundled.explanation


def test_benchmark_max_ignores_a_missing_operand_min_does_not():
    ucr = "geozip,code,modifier,p80\n770,99214,,500.00\n"
    ref_max = reference(payer_policies=policy("max(150% medicare, 100% ucr80)"), ucr=ucr)
    m = medicare(ref_max, "99214")
    assert price(ref_max, [line()])[0].expected == D("500.00")
    only_medicare = price(ref_max, [line(code="99213")])[0]
    assert only_medicare.expected == cents(medicare(ref_max, "99213") * D("1.5"))
    assert "ignored for max()" in only_medicare.explanation
    ref_min = reference(payer_policies=policy("min(150% medicare, 100% ucr80)"), ucr=ucr)
    assert price(ref_min, [line()])[0].expected == cents(m * D("1.5"))
    assert price(ref_min, [line(code="99213")])[0].expected is None


def test_reversal_negates_the_expected_amount():
    ref = reference(payer_policies=policy("100% medicare"))
    original = price(ref, [line()])[0]
    reversed_ = price(ref, [line()], status="22", sign=-1)[0]
    assert reversed_.expected == -original.expected


def test_line_without_date_uses_the_claim_date_and_says_so():
    ref = reference(payer_policies=policy("100% medicare"))
    result = price(ref, [line(service_date=None)])[0]
    assert result.expected == medicare(ref, "99214")  # payment date 2025-03-20 is in 2025
    assert "line has no service date" in result.explanation


@pytest.mark.parametrize("benchmark", ["140% medicare", "max(150% medicare, 100% ucr80)", "85% billed"])
def test_every_result_has_basis_term_and_explanation(benchmark):
    ref = reference(payer_policies=policy(benchmark), ucr="geozip,code,modifier,p80\n770,99214,,500.00\n")
    result = price(ref, [line()])[0]
    assert result.basis == "oon_policy"
    assert result.rate_term.rate_type == "benchmark" and result.rate_term.benchmark == benchmark
    assert result.explanation.startswith("payer OON policy payer_policies.csv:2")
