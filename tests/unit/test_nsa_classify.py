"""NSA classification (services/nsa/classify.py): one test per remark code, then precedence and conflicts."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.nsa import REASONS
from services.nsa.classify import DETAILS, NSA_RARCS, RARC_LABELS, classify, looks_institutional
from tests.unit.test_nsa_support import make_context, make_event, make_line

NEUTRAL_LINE = {"procedure_code": "27447"}  # a surgical code: no emergency / air-ambulance evidence


def neutral_event(**kwargs: Any):
    kwargs.setdefault("lines", [make_line(**NEUTRAL_LINE)])
    kwargs.setdefault("facility", "22")
    return make_event(**kwargs)


def with_line_remarks(codes: list[str], **kwargs: Any):
    return neutral_event(lines=[make_line(**NEUTRAL_LINE, remark_codes=codes)], **kwargs)


PER_CODE = [
    ("N830", "federal", "rarc_nsa_scope"),
    ("N858", "state", "rarc_state_process"),
    ("N859", "federal", "rarc_federal_process"),
    ("N860", "federal", "rarc_qpa_cost_share"),
    ("N862", "federal", "rarc_qpa_cost_share"),
    ("N864", "federal", "rarc_nsa_scope"),
    ("N865", "federal", "rarc_nsa_scope"),
    ("N866", "federal", "rarc_nsa_scope"),
    ("N867", "state", "rarc_state_process"),
    ("N868", "state", "rarc_state_process"),
    ("N869", "federal", "rarc_qpa_cost_share"),
    ("N870", "federal", "rarc_qpa_cost_share"),
    ("N871", "state", "rarc_state_process"),
    ("N872", "state", "rarc_state_process"),
    ("N874", "federal", "rarc_final_payment"),
    ("N875", "federal", "rarc_final_payment"),
    ("N876", "federal", "rarc_open_negotiation_notice"),
    ("N877", "federal", "rarc_open_negotiation_notice"),
    ("N884", "unknown", "rarc_nsa_may_apply"),
    ("N885", "not_applicable", "rarc_nsa_not_applicable"),
]


def test_every_nsa_code_is_covered() -> None:
    assert {code for code, _, _ in PER_CODE} == set(NSA_RARCS) == set(RARC_LABELS)


@pytest.mark.parametrize(("code", "category", "reason"), PER_CODE)
def test_claim_level_remark_code(code: str, category: str, reason: str) -> None:
    result = classify(neutral_event(remarks=[code]))
    assert (result.category, result.reason) == (category, reason)
    assert code in result.evidence
    assert result.detail


@pytest.mark.parametrize(("code", "category", "reason"), PER_CODE)
def test_line_level_remark_code(code: str, category: str, reason: str) -> None:
    result = classify(with_line_remarks([code]))
    assert (result.category, result.reason) == (category, reason)
    assert code in result.evidence


def test_remark_codes_are_normalised() -> None:
    assert classify(neutral_event(remarks=[" n859 "])).reason == "rarc_federal_process"


def test_codes_on_a_second_line_count() -> None:
    event = neutral_event(lines=[make_line(**NEUTRAL_LINE), make_line("27448", line_index=1, remark_codes=["N877"])])
    assert classify(event).reason == "rarc_open_negotiation_notice"


def test_no_signal_is_not_applicable() -> None:
    result = classify(neutral_event())
    assert (result.category, result.reason, result.evidence) == ("not_applicable", "no_nsa_signal", [])


@pytest.mark.parametrize(("indicator", "reason"), [
    ("MA", "excluded_program"), ("MB", "excluded_program"), ("MC", "excluded_program"),
    ("16", "excluded_program"), ("CH", "excluded_program"),
    ("WC", "excepted_benefit"), ("AM", "excepted_benefit"), ("LM", "excepted_benefit"),
])  # fmt: skip
def test_excluded_filing_indicators(indicator: str, reason: str) -> None:
    # even an emergency-room claim: Medicare / Medicaid / TRICARE are outside the NSA
    result = classify(make_event(filing=indicator, facility="23"))
    assert (result.category, result.reason) == ("not_applicable", reason)
    assert f"CLP06={indicator}" in result.evidence


@pytest.mark.parametrize("indicator", ["12", "13", "14", "15", "BL", "CI", "HM"])
def test_commercial_filing_indicators_are_not_excluded(indicator: str) -> None:
    assert classify(make_event(filing=indicator, facility="23")).category == "federal"


@pytest.mark.parametrize("product", ["MA", "Medicare Advantage", "medicaid managed care", "CHIP", "TRICARE"])
def test_excluded_product_type_from_context(product: str) -> None:
    event = neutral_event(remarks=["N830"])
    result = classify(event, make_context(event, product_type=product, emergency=True))
    # an NSA-scope remark on an excluded product is contradictory: tracked as unknown
    assert (result.category, result.reason) == ("unknown", "conflict_excluded_program")
    result = classify(event.model_copy(update={"remark_codes": []}), make_context(event, product_type=product))
    assert (result.category, result.reason) == ("not_applicable", "excluded_program")


def test_excluded_program_with_federal_remark_is_unknown() -> None:
    result = classify(neutral_event(filing="MC", remarks=["N877"]))
    assert (result.category, result.reason) == ("unknown", "conflict_excluded_program")
    assert result.evidence == ["CLP06=MC", "N877"]


def test_place_of_service_23_on_professional_claim() -> None:
    result = classify(neutral_event(facility="23"))
    assert (result.category, result.reason, result.evidence) == (
        "federal", "emergency_place_of_service", ["POS=23"],
    )  # fmt: skip


def test_clp08_of_an_institutional_claim_is_not_a_place_of_service() -> None:
    lines = [make_line("0300", procedure_qualifier="NU"), make_line(**NEUTRAL_LINE, revenue_code="0360")]
    event = neutral_event(facility="23", lines=lines)
    assert looks_institutional(event)
    assert classify(event).reason == "no_nsa_signal"
    assert looks_institutional(neutral_event(drg_code="470"))


def test_context_place_of_service_wins_over_clp08() -> None:
    event = neutral_event(facility="11")
    assert classify(event, make_context(event, place_of_service_code="23")).reason == "emergency_place_of_service"
    event = neutral_event(facility="23")
    assert classify(event, make_context(event, place_of_service_code="11")).reason == "no_nsa_signal"


@pytest.mark.parametrize("code", ["99281", "99282", "99283", "99284", "99285"])
def test_emergency_department_visit_codes(code: str) -> None:
    result = classify(neutral_event(lines=[make_line(code)]))
    assert (result.category, result.reason) == ("federal", "emergency_service_code")
    assert f"CPT={code}" in result.evidence


@pytest.mark.parametrize("revenue", ["0450", "450", "0451", "0459", "0981"])
def test_emergency_revenue_codes(revenue: str) -> None:
    event = neutral_event(lines=[make_line(**NEUTRAL_LINE, revenue_code=revenue)])
    assert classify(event).reason == "emergency_service_code"


@pytest.mark.parametrize("code", ["A0430", "A0431", "A0435", "A0436"])
def test_air_ambulance_codes(code: str) -> None:
    result = classify(neutral_event(lines=[make_line(code)]))
    assert (result.category, result.reason) == ("federal", "air_ambulance_service")


@pytest.mark.parametrize(
    ("flags", "category", "reason"),
    [
        ({"emergency": True}, "federal", "context_emergency"),
        ({"air_ambulance": True}, "federal", "context_air_ambulance"),
        ({"in_network_facility": True}, "federal", "context_in_network_facility"),
        (
            {"in_network_facility": True, "notice_and_consent": False},
            "federal",
            "context_in_network_facility",
        ),
        ({"in_network_facility": True, "notice_and_consent": True}, "not_applicable", "notice_and_consent"),
        ({"in_network_facility": False}, "not_applicable", "no_nsa_signal"),
        ({"state_law_applies": True}, "state", "context_state_law"),
        ({"state_law_applies": True, "emergency": True}, "state", "context_state_law"),
        ({"state_law_applies": False, "emergency": True}, "federal", "context_emergency"),
    ],
)
def test_context_flags(flags: dict[str, Any], category: str, reason: str) -> None:
    event = neutral_event()
    result = classify(event, make_context(event, **flags))
    assert (result.category, result.reason) == (category, reason)


def test_emergency_beats_notice_and_consent() -> None:
    event = neutral_event()
    context = make_context(event, emergency=True, in_network_facility=True, notice_and_consent=True)
    assert classify(event, context).reason == "context_emergency"


def test_emergency_place_of_service_under_state_law_is_state() -> None:
    assert classify(neutral_event(facility="23", remarks=["N858"])).category == "state"
    assert classify(neutral_event(facility="23", remarks=["N830", "N867"])).category == "state"


def test_state_and_federal_remarks_conflict() -> None:
    result = classify(neutral_event(remarks=["N858", "N859"]))
    assert (result.category, result.reason) == ("unknown", "conflict_state_federal")
    assert result.evidence == ["N858", "N859"]
    event = neutral_event(remarks=["N877"])
    assert classify(event, make_context(event, state_law_applies=True)).reason == "conflict_state_federal"


def test_state_remark_against_context() -> None:
    event = neutral_event(remarks=["N871"])
    result = classify(event, make_context(event, state_law_applies=False))
    assert (result.category, result.reason) == ("unknown", "conflict_state_context")


def test_payer_says_not_applicable_but_claim_is_an_emergency() -> None:
    result = classify(neutral_event(facility="23", remarks=["N885"]))
    assert (result.category, result.reason) == ("unknown", "conflict_not_applicable")
    assert "POS=23" in result.evidence and "N885" in result.evidence
    assert classify(neutral_event(remarks=["N885", "N864"])).reason == "conflict_not_applicable"


def test_may_apply_is_decided_by_other_evidence() -> None:
    assert classify(neutral_event(remarks=["N884"], facility="23")).category == "federal"
    assert classify(neutral_event(remarks=["N884", "N858"])).category == "state"


def test_final_payment_beside_open_negotiation_notice_stays_open() -> None:
    assert classify(neutral_event(remarks=["N874", "N877"])).reason == "rarc_open_negotiation_notice"
    assert classify(neutral_event(remarks=["N859", "N875"])).reason == "rarc_final_payment"


def test_non_nsa_remarks_are_ignored() -> None:
    result = classify(neutral_event(remarks=["N130", "M15"], facility="23"))
    assert result.evidence == ["POS=23"]


def test_reasons_are_bounded_and_documented() -> None:
    assert set(DETAILS) == set(REASONS)
    assert len(REASONS) == len(set(REASONS))
