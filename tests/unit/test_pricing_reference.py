"""Pricing reference files: loading, validation messages (file, line, column, expectation), benchmark grammar."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from services.pricing.benchmark import BenchmarkSyntaxError, Call, Term, parse_benchmark
from services.pricing.reference import load_pricing_folder, load_pricing_reference, pricing_summary
from services.pricing.validation import ErrorCollector, ReferenceValidationError
from tests.unit.test_pricing_support import DEMO_DIR, demo_files, demo_medicare_files

D = Decimal


def load(**csv_files: str):
    files = dict(demo_medicare_files())
    files.update({f"{name}.csv": text.encode() for name, text in csv_files.items()})
    return load_pricing_reference(files)


def errors_of(**csv_files: str):
    with pytest.raises(ReferenceValidationError) as caught:
        load(**csv_files)
    return caught.value.errors


# --- the demo folder ------------------------------------------------------------------------------------


def test_demo_reference_loads_and_summarises():
    reference = load_pricing_folder(DEMO_DIR)
    assert sorted(reference.medicare.years) == [2025]
    assert len(reference.payers) >= 8
    assert reference.payer_group("ACME1") == "acme" and reference.payer_group("nobody") == "other"
    assert reference.policy("ACME1").benchmark_text == "max(150% medicare, 100% ucr80)"
    assert reference.policy("nobody").payer_id == "*"
    summary = "\n".join(pricing_summary(reference))
    for part in (
        "PPRRVU2025_Oct.csv",
        "109 localities",
        "6 states",
        "payers.csv",
        "fee_schedules.csv",
        "scas.csv",
        "ucr.csv",
        "payer_policies.csv",
    ):
        assert part in summary
    assert not reference.warnings


def test_demo_medicare_subset_states_and_codes():
    files = demo_files()
    zip5 = next(content for name, content in files.items() if "ZIP5" in name).decode()
    assert {line[:2] for line in zip5.splitlines()} == {"TX", "FL", "GA", "AZ", "CO", "NC"}
    rvu = next(content for name, content in files.items() if "PPRRVU" in name).decode("latin-1")
    assert rvu.startswith(",,2025 National Physician Fee Schedule")
    for code in ("99214", "99285", "93306", "27447", "45378", "77078", "11042", "90837", "95810", "66984"):
        assert f"\n{code}," in rvu
    assert "\n70450,26," in rvu and "\n70450,TC," in rvu


def test_medicare_only_folder_is_valid():
    reference = load_pricing_reference(demo_medicare_files())
    assert reference.medicare.years and not reference.payers and not reference.payer_policies


def test_empty_reference_is_valid_but_empty():
    reference = load_pricing_reference({})
    assert not reference.medicare.years


# --- fee schedules ----------------------------------------------------------------------------------------

FEE_HEADER = "payer_id,product,code,modifier,pos_class,effective_from,effective_to,rate_type,rate,ucr_percentile\n"


def test_fee_schedule_rows_are_parsed():
    reference = load(fee_schedules=FEE_HEADER + "ACME1,ppo,99214,26,Non-Facility,2025-01-01,2025-12-31,pct_ucr,90,80\n")
    (row,) = reference.fee_schedules[("ACME1", "99214")]
    assert (row.product, row.modifier, row.pos_class) == ("PPO", "26", "nonfacility")
    assert row.effective_to == dt.date(2025, 12, 31)
    assert (row.terms.rate_type, row.terms.rate, row.terms.ucr_percentile) == ("pct_ucr", D("90"), 80)
    assert row.source == "fee_schedules.csv:2"


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        ("ACME1,,9921,,any,2025-01-01,,fixed,100", "code", "5-character"),
        ("ACME1,,99214,,office,2025-01-01,,fixed,100", "pos_class", "facility, nonfacility or any"),
        ("ACME1,,99214,,any,2025-13-01,,fixed,100", "effective_from", "YYYY-MM-DD"),
        ("ACME1,,99214,,any,2025-02-01,2025-01-01,fixed,100", "effective_to", "before effective_from"),
        ("ACME1,,99214,,any,2025-01-01,,percent,100", "rate_type", "fixed, pct_billed, pct_medicare, pct_ucr"),
        ("ACME1,,99214,,any,2025-01-01,,fixed,1O0", "rate", "decimal number"),
        ("ACME1,,99214,,any,2025-01-01,,fixed,0", "rate", "positive"),
        ("ACME1,,99214,,any,2025-01-01,,pct_medicare,1.4", "rate", "140 for 140%"),
        ("ACME1,,99214,,any,2025-01-01,,pct_ucr,100,", "ucr_percentile", "pct_ucr needs ucr_percentile"),
        ("ACME1,,99214,,any,2025-01-01,,pct_ucr,100,82", "ucr_percentile", "one of 50, 60"),
        ("ACME1,,99214,,any,2025-01-01,,fixed,100,80", "ucr_percentile", "only used with rate_type pct_ucr"),
        ("ACME1,,99214,XYZ,any,2025-01-01,,fixed,100", "modifier", "2-character modifier"),
    ],
)
def test_fee_schedule_errors_name_line_and_column(row, column, message):
    (error,) = errors_of(fee_schedules=FEE_HEADER + row + "\n")
    assert (error.file, error.line, error.column) == ("fee_schedules.csv", 2, column)
    assert message in str(error)


def test_overlapping_terms_are_an_error():
    errors = errors_of(
        fee_schedules=FEE_HEADER
        + "ACME1,,99214,,any,2024-01-01,,fixed,100\n"
        + "ACME1,,99214,,any,2025-01-01,,fixed,110\n"
    )
    assert errors[0].line == 3 and "overlap line 2" in str(errors[0])
    load(
        fee_schedules=FEE_HEADER
        + "ACME1,,99214,,any,2024-01-01,2024-12-31,fixed,100\n"
        + "ACME1,,99214,,any,2025-01-01,,fixed,110\n"
        + "ACME1,,99214,,facility,2024-01-01,,fixed,90\n"
    )


def test_header_problems_list_what_is_expected():
    (error,) = errors_of(fee_schedules="payer,code,rate_type,rate,effective_from\nA,99214,fixed,1,2025-01-01\n")
    assert error.line == 1
    assert "missing column(s) payer_id" in str(error) and "unknown column(s) payer" in str(error)
    assert "expected header columns payer_id, code" in str(error)


def test_escalator_terms():
    reference = load(
        fee_schedules="payer_id,code,rate_type,rate,effective_from,escalator_pct,escalator_base_date\n"
        "A,99214,fixed,100,2023-01-01,3,\n"
        "A,99213,fixed,100,2023-01-01,2.5,2023-07-01\n"
    )
    first = reference.fee_schedules[("A", "99214")][0].terms
    second = reference.fee_schedules[("A", "99213")][0].terms
    assert (first.escalator_pct, first.escalator_base_date) == (D("3"), dt.date(2023, 1, 1))
    assert second.escalator_base_date == dt.date(2023, 7, 1)
    (error,) = errors_of(
        fee_schedules="payer_id,code,rate_type,rate,effective_from,escalator_base_date\nA,99214,fixed,1,2023-01-01,2023-01-01\n"
    )
    assert error.column == "escalator_base_date" and "without escalator_pct" in str(error)


# --- SCAs, UCR, payers, policies ---------------------------------------------------------------------------

SCA_HEADER = "sca_id,payer_id,patient_key,payer_claim_id,authorization_number,codes,rate_type,rate\n"


def test_scas_parse_codes_and_match_column():
    reference = load(scas=SCA_HEADER + "S1,A,,,AUTH-1,27447; 29881,pct_billed,85\nS2,A,,CLM-1,,*,fixed,10\n")
    first, second = reference.scas["A"]
    assert (first.match_on, first.match_value, first.codes) == ("authorization_number", "AUTH-1", {"27447", "29881"})
    assert second.codes is None and second.match_on == "payer_claim_id"


def test_sca_needs_exactly_one_match_column_and_unique_ids():
    errors = errors_of(
        scas=SCA_HEADER
        + "S1,A,,,,*,fixed,10\nS2,A,key,CLM,,*,fixed,10\nS3,A,,CLM,,*,fixed,10\nS3,A,,CLM2,,*,fixed,10\n"
    )
    assert [error.line for error in errors] == [2, 3, 5]
    assert "exactly one of patient_key, payer_claim_id, authorization_number" in str(errors[0])
    assert "appears twice" in str(errors[2])


def test_ucr_rows_and_errors():
    reference = load(ucr="geozip,code,modifier,p50,p80\n770,99214,,100.00,150.00\n770,70450,26,40,60\n")
    assert reference.ucr[("770", "99214", "")].values == {50: D("100.00"), 80: D("150.00")}
    errors = errors_of(
        ucr="geozip,code,modifier,p50,p80\n77,99214,,1,2\n770,99214,,3,2\n770,99213,,,\n770,99212,,1,2\n770,99212,,1,2\n"
    )
    assert [(error.line, error.column) for error in errors] == [(2, "geozip"), (3, None), (4, None), (6, None)]
    assert "decrease" in str(errors[1]) and "no percentile value" in str(errors[2]) and "twice" in str(errors[3])
    (error,) = errors_of(ucr="geozip,code\n770,99214\n")
    assert "no percentile column" in str(error)


def test_payers_file():
    reference = load(payers="payer_id,payer_name,payer_group,state\nA,Alpha Health,alpha,tx\nB,Beta,,\n")
    assert reference.payers["A"].state == "TX" and reference.payers["B"].group == "other"
    errors = errors_of(payers="payer_id,payer_name,payer_group\nA,Alpha,al{pha}\nB,Beta,b\nB,Again,x\n")
    assert [error.column for error in errors] == ["payer_group", "payer_id"]


def test_unknown_payers_are_warnings_not_errors():
    errors = ErrorCollector()
    load_pricing_reference(
        {"payers.csv": b"payer_id,payer_name\nA,Alpha\n", "payer_policies.csv": b"payer_id,benchmark\nZ,85% billed\n"},
        errors=errors,
    )
    assert not errors.errors
    assert any("payer Z" in warning for warning in errors.warnings)
    assert any("no medicare" in warning.lower() for warning in errors.warnings) is False


def test_policies_parse_defaults_and_syntax_errors_point_at_the_column():
    reference = load(payer_policies='payer_id,benchmark\n*,"max(150% medicare, 100% ucr80)"\n')
    default = reference.payer_policies["*"]
    assert default.tolerance_amount == D("1.00") and default.tolerance_pct == D("0")
    assert isinstance(default.benchmark, Call)
    (error,) = errors_of(payer_policies="payer_id,benchmark\nA,140% medicaid\n")
    assert (error.line, error.column) == (2, "benchmark") and "unknown source 'medicaid'" in str(error)


def test_percent_of_medicare_without_medicare_files_is_a_warning():
    errors = ErrorCollector()
    load_pricing_reference({"payer_policies.csv": b"payer_id,benchmark\n*,140% medicare\n"}, errors=errors)
    assert any("no medicare/<year>/ files" in warning for warning in errors.warnings)


def test_every_problem_of_every_file_is_listed():
    errors = errors_of(
        payers="payer_id,payer_name\n,Nameless\n",
        fee_schedules=FEE_HEADER + "A,,99214,,any,2025-01-01,,fixed,x\n",
        payer_policies="payer_id,benchmark\nA,max(1)\n",
    )
    assert {error.file for error in errors} == {"payers.csv", "fee_schedules.csv", "payer_policies.csv"}


# --- benchmark grammar ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("140% medicare", Term(D("140"), "medicare")),
        ("85% Billed", Term(D("85"), "billed")),
        ("ucr80", Term(D("100"), "ucr", 80)),
        ("100% ucr p75", Term(D("100"), "ucr", 75)),
        ("90.5% ucr_p90", Term(D("90.5"), "ucr", 90)),
        ("max(150% medicare, 100% ucr80)", Call("max", (Term(D("150"), "medicare"), Term(D("100"), "ucr", 80)))),
        (
            "min(max(125% medicare, ucr70), 100% billed)",
            Call(
                "min", (Call("max", (Term(D("125"), "medicare"), Term(D("100"), "ucr", 70))), Term(D("100"), "billed"))
            ),
        ),
    ],
)
def test_benchmark_grammar(text, expected):
    assert parse_benchmark(text) == expected
    assert parse_benchmark(str(expected)) == expected  # canonical text round-trips


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("140 medicare", "expected '%'"),
        ("140% medicaid", "unknown source"),
        ("max(140% medicare)", "at least two"),
        ("max(140% medicare, 85% billed", "unexpected end"),
        ("140% medicare + 5", "unexpected character '+'"),
        ("100% ucr82", "not one of"),
        ("0% billed", "percent must be > 0"),
        ("__import__('os')", "unexpected character"),
        ("__import__", "unknown source"),
        ("max(" * 12 + "billed" + ")" * 12, "nested too deeply"),
    ],
)
def test_benchmark_syntax_errors(text, message):
    with pytest.raises(BenchmarkSyntaxError, match=message.replace("(", r"\(").replace("+", r"\+")):
        parse_benchmark(text)
