"""The pure adequacy rules (services/adequacy/rules.py): distances, counts, denials, MA, recurrence, value."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from services.adequacy.rules import (
    CITATION_422_112,
    CITATION_422_116,
    AdequacyConfig,
    ClaimFacts,
    LineOutcome,
    NotAssessable,
    OpportunityBook,
    RecurrenceState,
    Region,
    claim_facts,
    claims_in_window,
    evaluate_claim,
    find_recurrences,
    line_outcomes_from_evaluation,
    merge_opportunity,
    opportunity_id,
    period_bounds,
    recurrence_trigger,
    top_codes,
    value_triggers,
)
from tests.unit.test_adequacy_support import context, reference, remittance

D = dt.date
LOCATIONS = "payer_id,product_type,specialty_group,provider_zip\n"


def rules_of(assessment) -> list[str]:
    return sorted(opportunity.rule for opportunity in assessment.opportunities)


def assess(directory: str, event=None, ctx=None, **config):
    ref = reference(directory)
    facts = claim_facts(event or remittance(), ctx if ctx is not None else context(), ref)
    return evaluate_claim(facts, ref, AdequacyConfig(**config))


# ------------------------------------------------------------------------------------ distance gap


def test_distance_gap_when_nearest_in_network_provider_is_beyond_the_metro_standard() -> None:
    # cardiology, metro: 20 miles. Nearest listed: 91001 at 34.5 miles (0.5 degree of latitude).
    assessment = assess(LOCATIONS + "PAYER1,,cardiology,91001\nPAYER1,,cardiology,91002\n", remittance(filing="12"))
    assert rules_of(assessment) == ["distance_gap"]
    opportunity = assessment.opportunities[0]
    evidence = opportunity.evidence
    assert evidence["nearest_in_network_miles"] == 34.5
    assert evidence["nearest_in_network_zip"] == "91001"
    assert evidence["excess_miles_max"] == 14.5
    assert evidence["standard"]["max_miles"] == 20
    assert evidence["standard"]["max_minutes"] == 30
    assert evidence["standard"]["county_type"] == "metro"
    assert evidence["county_type_source"] == "network/county_types.csv:2"
    assert evidence["in_network_locations_considered"] == 2
    assert "understates road distance" in evidence["caveat"]
    assert evidence["distance_method"].startswith("straight-line (haversine)")
    assert any("understates road distance" in caveat for caveat in opportunity.caveats)
    assert opportunity.citations == [CITATION_422_116]
    assert opportunity.region == "OK-40001"
    assert opportunity.county_fips == "40001"
    assert opportunity.product_line == "ppo"
    assert opportunity.payer_group == "other"  # no payers.csv
    assert "34.5 miles" in opportunity.anchors.cited_gap


def test_distance_exactly_at_the_standard_is_no_gap_and_a_tenth_beyond_is() -> None:
    at_standard = assess(LOCATIONS + "PAYER1,,cardiology,91003\n")
    assert at_standard.checks[0].evidence["nearest_in_network_miles"] == 20.0
    assert rules_of(at_standard) == []
    beyond = assess(LOCATIONS + "PAYER1,,cardiology,91004\n")
    assert beyond.checks[0].evidence["nearest_in_network_miles"] == 20.1
    assert "distance_gap" in rules_of(beyond)


def test_nearest_location_is_remembered_per_origin_and_equals_a_fresh_search(monkeypatch) -> None:
    import services.adequacy.reference as network

    directory_csv = LOCATIONS + "PAYER1,,cardiology,91001\nPAYER1,,cardiology,91002\nPAYER1,HMO,cardiology,91004\n"
    ref = reference(directory_csv)
    origin = ref.geography.locate("90001")
    first = ref.directory.nearest_location("PAYER1", "cardiology", "PPO", origin, ref.geography)
    assert first.locations == 2 and first.unlocated == 0 and first.nearest[1] == "91001"
    assert first.nearest[0] == pytest.approx(34.5, abs=0.05)
    # remembered: the same object, whatever the geography says now
    assert ref.directory.nearest_location("PAYER1", "cardiology", "PPO", origin, None) is first
    # another product is another search (HMO also has the 91004 row)
    hmo = ref.directory.nearest_location("PAYER1", "cardiology", "HMO", origin, ref.geography)
    assert hmo.locations == 3
    fresh = reference(directory_csv)
    assert fresh.directory.nearest_location("PAYER1", "cardiology", "HMO", origin, fresh.geography) == hmo
    # bounded: the memo starts over at its limit
    monkeypatch.setattr(network, "NEAREST_MEMO_LIMIT", 2)
    ref.directory.nearest_location("PAYER1", "cardiology", None, origin, ref.geography)
    assert len(ref.directory._nearest) == 1


def test_rural_county_type_uses_the_rural_standard() -> None:
    # 90002 is rural by county override (40003): cardiology rural = 60 miles; 91001 is 0.5 deg N, 1 deg W.
    ctx = context(patient_zip="90002")
    assessment = assess(LOCATIONS + "PAYER1,,cardiology,91002\n", ctx=ctx)
    check = assessment.checks[0]
    assert check.evidence["county_type"] == "rural"
    assert check.evidence["standard"]["max_miles"] == 60
    assert check.evidence["nearest_in_network_miles"] > 60
    assert "distance_gap" in rules_of(assessment)


def test_no_listed_provider_of_the_specialty_is_a_distance_gap() -> None:
    assessment = assess(LOCATIONS + "PAYER1,,dermatology,91001\n")
    evidence = assessment.checks[0].evidence
    assert assessment.checks[0].holds
    assert evidence["nearest_in_network_miles"] is None
    assert evidence["no_in_network_location"] is True
    assert "lists no in-network cardiology provider" in assessment.checks[0].cited_gap


def test_product_type_filters_the_directory() -> None:
    directory = LOCATIONS + "PAYER1,PPO,cardiology,91003\nPAYER1,HMO,cardiology,91002\n"
    hmo = assess(directory, ctx=context(product="HMO"))
    assert hmo.checks[0].evidence["nearest_in_network_miles"] == 69.1
    ppo = assess(directory, ctx=context(product="PPO"))
    assert not ppo.checks[0].holds
    # no product known and CLP06 not a product: every row counts (the nearest, 20.0 miles)
    unknown = assess(directory, event=remittance(filing="CI"), ctx=context(product=None))
    assert unknown.checks[0].evidence["nearest_in_network_miles"] == 20.0


def test_payer_absent_from_the_directory_is_not_a_gap() -> None:
    assessment = assess(LOCATIONS + "OTHER,,cardiology,91001\n")
    assert rules_of(assessment) == []
    assert any("not in network/directory.csv" in note for note in assessment.notes)


def test_payer_listed_only_for_another_product_is_not_a_gap() -> None:
    directory = LOCATIONS + "PAYER1,HMO,cardiology,91003\n"
    assert rules_of(assess(directory, ctx=context(product="PPO"))) == []
    assert rules_of(assess(LOCATIONS + "PAYER1,HMO,dermatology,91003\n", ctx=context(product="HMO"))) == [
        "distance_gap"
    ]


def test_without_county_type_the_gap_rules_are_skipped_unless_assumed() -> None:
    ref = reference(LOCATIONS + "PAYER1,,cardiology,91002\n", extra={"network/county_types.csv": b"zip,county_type\n"})
    facts = claim_facts(remittance(), context(), ref)
    assert evaluate_claim(facts, ref).opportunities == ()
    assumed = evaluate_claim(facts, ref, AdequacyConfig(assumed_county_type="metro"))
    assert "distance_gap" in rules_of(assumed)
    assert assumed.checks[0].evidence["county_type_source"].startswith("assumed")


def test_opportunity_carries_no_patient_data() -> None:
    event = remittance("CLM77", payer_claim_id="PAYCLAIM9", filing="16", claim_adjustments=[("CO", "242", "9.00")])
    assessment = assess(LOCATIONS + "PAYER1,,cardiology,91002\n", event, context("CLM77"))
    assert len(assessment.opportunities) == 3
    text = json.dumps([opportunity.model_dump(mode="json") for opportunity in assessment.opportunities])
    assert "90001" not in text  # the patient's ZIP
    assert "a" * 64 not in text  # the patient key
    assert "CLM77" not in text  # the provider's claim id (CLP01) is not used when CLP07 exists
    assert "PAYCLAIM9" in text


# --------------------------------------------------------------------------------------- count gap


STANDARD_MIN_3 = b"specialty_group,county_type,min_providers\ncardiology,metro,3\n"


def test_count_gap_from_county_counts() -> None:
    directory = "payer_id,specialty_group,county_fips,provider_count\nPAYER1,cardiology,40001,1\n"
    ref = reference(directory, extra={"network/adequacy_standards.csv": STANDARD_MIN_3})
    assessment = evaluate_claim(claim_facts(remittance(filing="12"), context(), ref), ref)
    assert rules_of(assessment) == ["count_gap"]  # distance: counts only, not computable
    evidence = assessment.opportunities[0].evidence
    assert evidence["in_network_providers"] == 1
    assert evidence["min_providers"] == 3
    assert evidence["shortfall"] == 2
    assert evidence["count_basis"] == "directory county counts"
    # the override kept the default miles of the row it replaced? no: a type row replaces the whole row
    assert evidence["standard"]["sources"] == ["network/adequacy_standards.csv:2"]


def test_count_gap_from_locations_counts_providers_in_the_county() -> None:
    # 91003 and 91004 are in county 40001 (2 providers); min 3 -> gap; both within 20.1 miles.
    ref = reference(
        LOCATIONS + "PAYER1,,cardiology,91003\nPAYER1,,cardiology,91004\nPAYER1,,cardiology,91002\n",
        extra={"network/adequacy_standards.csv": STANDARD_MIN_3},
    )
    assessment = evaluate_claim(claim_facts(remittance(filing="12"), context(), ref), ref)
    assert rules_of(assessment) == ["count_gap"]
    assert assessment.opportunities[0].evidence["in_network_providers"] == 2
    assert assessment.opportunities[0].evidence["count_basis"] == "directory provider locations in the county"


def test_count_at_the_minimum_is_no_gap() -> None:
    directory = "payer_id,specialty_group,county_fips,provider_count\nPAYER1,cardiology,40001,3\n"
    ref = reference(directory, extra={"network/adequacy_standards.csv": STANDARD_MIN_3})
    assert evaluate_claim(claim_facts(remittance(), context(), ref), ref).opportunities == ()


def test_county_specific_minimum_overrides_the_type_row() -> None:
    standards = b"specialty_group,county_type,county_fips,min_providers\ncardiology,,40001,5\n"
    directory = "payer_id,specialty_group,county_fips,provider_count\nPAYER1,cardiology,40001,4\n"
    ref = reference(directory, extra={"network/adequacy_standards.csv": standards})
    assessment = evaluate_claim(claim_facts(remittance(filing="12"), context(), ref), ref)
    assert rules_of(assessment) == ["count_gap"]
    standard = assessment.opportunities[0].evidence["standard"]
    assert standard["min_providers"] == 5
    assert standard["max_miles"] == 20  # still from the 422.116 default for metro cardiology


# ------------------------------------------------------------------------------ denial gap and MA


GAP_DIRECTORY = LOCATIONS + "PAYER1,,cardiology,91002\n"  # 69.1 miles: a distance gap in a metro county


@pytest.mark.parametrize("filing", ["HM", "14", "16"])
def test_denial_gap_on_hmo_epo_ma_claims_with_carc_242(filing: str) -> None:
    event = remittance(filing=filing, paid="0.00", claim_adjustments=[("CO", "242", "1000.00")])
    assessment = assess(GAP_DIRECTORY, event)
    assert "denial_gap" in rules_of(assessment)
    denial = next(o for o in assessment.opportunities if o.rule == "denial_gap")
    assert denial.evidence["denial_codes_seen"] == ["CO-242"]
    assert denial.evidence["denied_amount_total"] == "1000.00"
    assert denial.evidence["filing_indicator"] == filing
    assert "distance_gap" in denial.evidence["gaps"]
    assert denial.anchors.gap_exception is True


@pytest.mark.parametrize("carc", ["243", "279"])
def test_denial_gap_on_line_level_carc(carc: str) -> None:
    event = remittance(filing="14", line_adjustments=[("OA", carc, "800.00")])
    assessment = assess(GAP_DIRECTORY, event)
    denial = next(o for o in assessment.opportunities if o.rule == "denial_gap")
    assert denial.evidence["denial_codes_seen"] == [f"OA-{carc}"]


def test_no_denial_gap_on_ppo_claims() -> None:
    event = remittance(filing="12", claim_adjustments=[("CO", "242", "1000.00")])
    assessment = assess(GAP_DIRECTORY, event)
    assert rules_of(assessment) == ["distance_gap"]


def test_no_denial_gap_without_a_network_gap() -> None:
    event = remittance(filing="HM", claim_adjustments=[("CO", "242", "1000.00")])
    assessment = assess(LOCATIONS + "PAYER1,,cardiology,91003\n", event)  # 20.0 miles: within standard
    assert rules_of(assessment) == []


def test_no_denial_gap_without_the_carc() -> None:
    event = remittance(filing="HM", claim_adjustments=[("CO", "45", "800.00")])
    assert rules_of(assess(GAP_DIRECTORY, event)) == ["distance_gap"]


def test_medicare_advantage_access_rule_cites_422_112() -> None:
    assessment = assess(GAP_DIRECTORY, remittance(filing="16"))
    assert rules_of(assessment) == ["distance_gap", "medicare_advantage_access"]
    ma = next(o for o in assessment.opportunities if o.rule == "medicare_advantage_access")
    assert ma.evidence["citation"] == "42 CFR 422.112(a)(1)(iii)"
    assert CITATION_422_112 in ma.citations
    assert "in-network cost sharing" in ma.anchors.cited_gap
    assert ma.product_line == "medicare_advantage"
    # the distance opportunity of an MA claim carries no "benchmark only" caveat: 422.116 applies directly
    distance = next(o for o in assessment.opportunities if o.rule == "distance_gap")
    assert not any("used as a benchmark" in caveat for caveat in distance.caveats)


def test_ma_denial_cites_both_sections() -> None:
    event = remittance(filing="16", claim_adjustments=[("CO", "242", "1000.00")])
    assessment = assess(GAP_DIRECTORY, event)
    assert rules_of(assessment) == ["denial_gap", "distance_gap", "medicare_advantage_access"]
    denial = next(o for o in assessment.opportunities if o.rule == "denial_gap")
    assert denial.citations == [CITATION_422_116, CITATION_422_112]


def test_no_ma_rule_for_hmo_or_without_a_gap() -> None:
    assert "medicare_advantage_access" not in rules_of(assess(GAP_DIRECTORY, remittance(filing="HM")))
    assert rules_of(assess(LOCATIONS + "PAYER1,,cardiology,91003\n", remittance(filing="16"))) == []


def test_commercial_claims_get_the_benchmark_caveat() -> None:
    distance = assess(GAP_DIRECTORY, remittance(filing="12")).opportunities[0]
    assert any("used as a benchmark" in caveat for caveat in distance.caveats)


def test_payer_group_comes_from_payers_csv() -> None:
    payers = b"payer_id,payer_name,payer_group\nPAYER1,Test Health Plan,acme\n"
    ref = reference(GAP_DIRECTORY, extra={"payers.csv": payers})
    (opportunity,) = evaluate_claim(claim_facts(remittance(filing="12"), context(), ref), ref).opportunities
    assert opportunity.payer_group == "acme"
    assert opportunity.alert_key == "PAYER1|cardiology|OK-40001|distance_gap"


# ----------------------------------------------------------------------------------------- anchors


def test_anchors_open_at_80_90_percent_of_billed_and_counter_at_110_150_of_medicare() -> None:
    ref = reference(GAP_DIRECTORY)
    facts = claim_facts(remittance(charge="1234.56"), context(), ref, medicare=Decimal("300.00"))
    anchors = evaluate_claim(facts, ref).opportunities[0].anchors
    assert anchors.billed_amount == Decimal("1234.56")
    assert anchors.opening_ask_low == Decimal("987.65")  # 987.648
    assert anchors.opening_ask_high == Decimal("1111.10")  # 1111.104
    assert anchors.medicare_amount == Decimal("300.00")
    assert anchors.expected_counter_low == Decimal("330.00")
    assert anchors.expected_counter_high == Decimal("450.00")
    assert anchors.opening_ask_basis == "80-90% of billed charges"
    assert len(anchors.checklist) == 5


def test_no_counter_without_a_medicare_amount() -> None:
    anchors = assess(GAP_DIRECTORY).opportunities[0].anchors
    assert anchors.medicare_amount is None
    assert anchors.expected_counter_low is None and anchors.expected_counter_high is None


# ------------------------------------------------------------------------------------- claim facts


@pytest.mark.parametrize(
    ("status", "filing", "reason"),
    [("22", "HM", "reversal"), ("23", "HM", "not_a_claim_payment"), ("1", "MB", "traditional_medicare")],
)
def test_claims_the_rules_cannot_look_at(status: str, filing: str, reason: str) -> None:
    with pytest.raises(NotAssessable) as caught:
        claim_facts(remittance(status=status, filing=filing), context())
    assert caught.value.reason == reason


def test_specialty_from_the_roster_when_the_context_has_none() -> None:
    roster = (
        b"npi,taxonomy_code,specialty_group,practice_zip,state,tin\n"
        b"1234567893,207RC0000X,Cardiology,91003,OK,12-3456789\n"
    )
    ref = reference(GAP_DIRECTORY, extra={"network/roster.csv": roster})
    facts = claim_facts(remittance(), context(specialty=None, rendering_npi="1234567893"), ref)
    assert facts.specialty_group == "cardiology"
    facts = claim_facts(remittance(), context(specialty=None, taxonomy_code="207rc0000x"), ref)
    assert facts.specialty_group == "cardiology"


def test_claim_facts_round_trip_through_a_dict() -> None:
    facts = claim_facts(remittance(claim_adjustments=[("CO", "242", "5.00")]), context(), medicare=Decimal("1.50"))
    assert ClaimFacts.from_dict(json.loads(json.dumps(facts.to_dict()))) == facts


# --------------------------------------------------------------------------------------- recurrence


def facts_on(day: dt.date, claim: str, **kwargs) -> ClaimFacts:
    return claim_facts(remittance(claim, service_date=day, **kwargs), context(claim))


REGION = Region("OK-40001", "OK", "40001", "900", "patient_zip")


@pytest.mark.parametrize(("span_days", "triggers"), [(88, True), (89, True), (90, False), (91, False)])
def test_recurrence_window_is_90_calendar_days_both_ends_included(span_days: int, triggers: bool) -> None:
    first = D(2025, 1, 1)
    claims = [
        facts_on(first, "A"),
        facts_on(first + dt.timedelta(days=30), "B"),
        facts_on(first + dt.timedelta(days=span_days), "C"),
    ]
    found = find_recurrences([(facts, REGION) for facts in claims])
    assert bool(found) is triggers
    if triggers:
        (opportunity,) = found
        assert opportunity.rule == "recurrence"
        assert opportunity.evidence["claims_in_window"] == 3
        assert opportunity.evidence["window_end"] == (first + dt.timedelta(days=span_days)).isoformat()
        assert opportunity.evidence["window_start"] == (first + dt.timedelta(days=span_days - 89)).isoformat()


def test_claims_in_window_boundaries() -> None:
    end = D(2025, 4, 1)
    claims = [facts_on(end - dt.timedelta(days=offset), f"C{offset}") for offset in (0, 88, 89, 90, 91)]
    inside = claims_in_window(claims, end, 90)
    assert sorted(facts.payer_claim_id for facts in inside) == ["PCID-C0", "PCID-C88", "PCID-C89"]


def test_recurrence_threshold_is_configurable_and_counts_distinct_claims() -> None:
    day = D(2025, 2, 1)
    claims = [facts_on(day, "A"), facts_on(day, "A"), facts_on(day + dt.timedelta(days=1), "B")]
    observations = [(facts, REGION) for facts in claims]
    assert find_recurrences(observations) == []  # A twice is one claim: 2 < 3
    (found,) = find_recurrences(observations, AdequacyConfig(recurrence_min_claims=2))
    assert found.claim_count == 2
    assert found.billed_amount == Decimal("2000.00")


def test_recurrence_state_is_incremental_and_serialisable() -> None:
    config = AdequacyConfig()
    state = RecurrenceState(region=REGION)
    day = D(2025, 2, 1)
    assert state.observe(facts_on(day, "A"), config) is None
    state = RecurrenceState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert state.observe(facts_on(day + dt.timedelta(days=10), "B"), config) is None
    third = state.observe(facts_on(day + dt.timedelta(days=20), "C"), config)
    assert third is not None and third.claim_count == 3
    fourth = state.observe(facts_on(day + dt.timedelta(days=40), "D"), config)
    assert fourth is not None and fourth.evidence["claims_in_window"] == 4
    assert fourth.opportunity_id == third.opportunity_id  # same quarter: one opportunity, updated


def test_recurrence_state_handles_out_of_order_claims() -> None:
    state = RecurrenceState(region=REGION)
    day = D(2025, 5, 1)
    assert state.observe(facts_on(day + dt.timedelta(days=60), "late"), AdequacyConfig()) is None
    assert state.observe(facts_on(day + dt.timedelta(days=59), "mid"), AdequacyConfig()) is None
    found = state.observe(facts_on(day, "early"), AdequacyConfig())  # fullest window containing 'early'
    assert found is not None
    assert found.evidence["window_end"] == (day + dt.timedelta(days=60)).isoformat()


def test_recurrence_trigger_from_a_windowed_count_and_a_sample() -> None:
    sample = [facts_on(D(2025, 3, 1), "X"), facts_on(D(2025, 3, 5), "Y")]
    start, end = D(2025, 1, 1), D(2025, 3, 31)
    assert recurrence_trigger(2, sample, REGION, window_start=start, window_end=end) is None
    found = recurrence_trigger(7, sample, REGION, window_start=start, window_end=end)
    assert found is not None
    assert found.claim_count == 7  # the table's count
    assert [ref.payer_claim_id for ref in found.claims] == ["PCID-X", "PCID-Y"]
    assert found.billed_amount == Decimal("2000.00")  # dollars of the listed claims
    assert found.period == "2025-01-01..2025-03-31"


def test_recurrence_is_per_payer_specialty_and_region() -> None:
    day = D(2025, 2, 1)
    other = Region("OK-40003", "OK", "40003", "900", "patient_zip")
    observations = [
        (facts_on(day, "A"), REGION),
        (facts_on(day, "B"), other),
        (facts_on(day, "C", payer_id="PAYER2"), REGION),
    ]
    assert find_recurrences(observations, AdequacyConfig(recurrence_min_claims=2)) == []


# ------------------------------------------------------------------------------------------- value


def outcome(payer: str, code: str, status: str, claim: str, day=D(2025, 2, 1), expected="100.00", allowed="60.00"):
    return LineOutcome(
        payer_id=payer,
        code=code,
        status=status,
        service_date=day,
        billed=Decimal("150.00"),
        paid=Decimal(allowed),
        expected=Decimal(expected),
        allowed=Decimal(allowed),
        payer_claim_id=claim,
        state="OK",
    )


def test_value_rule_triggers_on_m_underpaid_lines_of_a_top_code() -> None:
    lines = [outcome("P1", "99214", "underpaid", f"c{i}") for i in range(3)]
    lines += [outcome("P1", "99214", "ok", "c9", allowed="100.00")]
    lines += [outcome("P2", "99214", "underpaid", "d1"), outcome("P2", "99214", "underpaid", "d2")]
    lines += [outcome("P1", "99999", "underpaid", f"e{i}") for i in range(3)]  # not a top-1 code
    (found,) = value_triggers(lines, AdequacyConfig(value_top_codes=1))
    assert found.rule == "value"
    assert found.payer_id == "P1"
    assert found.specialty_group == "all"
    assert found.region == "OK"
    (code,) = found.evidence["codes"]
    assert code == {
        "code": "99214",
        "rank": 1,
        "lines": 4,
        "underpaid_lines": 3,
        "underpaid_rate": 0.75,
        "expected_total": "300.00",
        "allowed_total": "180.00",
        "shortfall_total": "120.00",
    }
    assert found.claim_count == 3
    assert found.billed_amount == Decimal("450.00")
    assert found.expected_amount == Decimal("300.00")
    assert "$120.00 below expected" in found.anchors.cited_gap


def test_value_rule_from_underpaid_lines_and_line_counts_equals_every_line() -> None:
    """The live tracker keeps per-code line counts, not every line of a period (line_counts)."""
    lines = [outcome("P1", "99214", "underpaid", f"c{i}") for i in range(4)]
    lines += [outcome("P1", "99214", "as_expected", f"k{i}", allowed="100.00") for i in range(7)]
    lines += [outcome("P1", "99213", "underpaid", f"u{i}") for i in range(3)]
    lines += [outcome("P1", "99213", "as_expected", "v1", allowed="100.00")]
    lines += [outcome("P1", "99215", "as_expected", f"w{i}", allowed="100.00") for i in range(5)]
    top = ["99214", "99215", "99213"]
    counts = {("P1", "OK", "99214"): 11, ("P1", "OK", "99213"): 4, ("P1", "OK", "99215"): 5}
    underpaid = [line for line in lines if line.status == "underpaid"]
    (every_line,) = value_triggers(lines, top=top)
    (from_counts,) = value_triggers(underpaid, top=top, line_counts=counts)
    assert from_counts == every_line
    assert [(code["code"], code["lines"], code["underpaid_rate"]) for code in from_counts.evidence["codes"]] == [
        ("99214", 11, 0.364),
        ("99213", 4, 0.75),
    ]


def test_value_rule_below_threshold_or_other_period() -> None:
    lines = [outcome("P1", "99214", "underpaid", "c1"), outcome("P1", "99214", "underpaid", "c2")]
    lines.append(outcome("P1", "99214", "underpaid", "c3", day=D(2025, 4, 1)))  # next quarter
    assert value_triggers(lines) == []
    assert len(value_triggers(lines, AdequacyConfig(period="year"))) == 1


def test_value_rule_keeps_the_latest_outcome_of_a_line_and_drops_reversed_lines() -> None:
    def keyed(claim: str, status: str) -> LineOutcome:
        line = outcome("P1", "99214", status, claim)
        return LineOutcome(**{**line.__dict__, "claim_key": f"P1|{claim}", "line_index": 0})

    lines = [keyed("c1", "underpaid"), keyed("c2", "underpaid"), keyed("c3", "underpaid")]
    assert len(value_triggers(lines)) == 1
    assert value_triggers([*lines, keyed("c3", "reversal")]) == []  # c3 reversed: 2 underpaid lines left
    assert value_triggers([*lines, keyed("c3", "as_expected")]) == []  # c3 corrected and paid as expected
    assert len(value_triggers([*lines, keyed("c3", "reversal"), keyed("c3", "underpaid")])) == 1


def test_top_codes_by_volume_then_dollars() -> None:
    lines = [
        outcome("P", "A", "ok", "1"),
        outcome("P", "B", "ok", "2", expected="500.00"),
        outcome("P", "A", "ok", "3"),
    ]
    lines.append(outcome("P", "C", "ok", "4"))
    assert top_codes(lines, 2) == ["A", "B"]


def test_line_outcomes_adapter_reads_an_evaluation_dict() -> None:
    evaluation = {
        "payer": {"id": "P1", "name": "Plan"},
        "payer_claim_id": "X1",
        "service_date_from": "2025-02-03",
        "lines": [
            {
                "procedure_code": "99214",
                "status": "underpaid",
                "expected": "100.00",
                "allowed": "70.00",
                "charge_amount": "150.00",
            },
            {"code": None, "status": "ok"},
        ],
    }
    (line,) = line_outcomes_from_evaluation(evaluation)
    assert line.payer_id == "P1" and line.code == "99214" and line.underpaid
    assert line.service_date == D(2025, 2, 3) and line.billed == Decimal("150.00") and line.paid == Decimal(0)


# ------------------------------------------------------------------------------------- dedup/merge


def test_one_opportunity_per_payer_specialty_region_rule_period() -> None:
    ref = reference(GAP_DIRECTORY)
    book = OpportunityBook()
    first = evaluate_claim(claim_facts(remittance("A", filing="12"), context("A"), ref), ref).opportunities[0]
    second = evaluate_claim(
        claim_facts(remittance("B", filing="12", charge="500.00", paid="100.00"), context("B"), ref), ref
    ).opportunities[0]
    assert first.opportunity_id == second.opportunity_id
    merged, changed = book.upsert(first)
    assert changed and merged.revision == 1
    merged, changed = book.upsert(second)
    assert changed and merged.revision == 2
    assert merged.claim_count == 2
    assert [ref.payer_claim_id for ref in merged.claims] == ["PCID-A", "PCID-B"]
    assert merged.billed_amount == Decimal("1500.00")
    assert merged.paid_amount == Decimal("300.00")
    assert merged.anchors.opening_ask_low == Decimal("1200.00")
    assert merged.anchors.opening_ask_high == Decimal("1350.00")
    # the same claims again change nothing (not even the order)
    again, changed = book.upsert(second)
    assert not changed and again.revision == 2
    again, changed = book.upsert(first)
    assert not changed and again is merged
    assert len(book) == 1


def test_next_quarter_is_a_new_opportunity() -> None:
    ref = reference(GAP_DIRECTORY)
    q1 = evaluate_claim(claim_facts(remittance("A"), context("A"), ref), ref).opportunities[0]
    q2 = evaluate_claim(claim_facts(remittance("B", service_date=D(2025, 4, 1)), context("B"), ref), ref).opportunities[
        0
    ]
    assert q1.opportunity_id != q2.opportunity_id
    assert q2.period == "2025-04-01..2025-06-30"
    assert q1.opportunity_id == opportunity_id(
        "PAYER1", "cardiology", "OK-40001", "distance_gap", D(2025, 1, 1), D(2025, 3, 31)
    )


def test_merge_bounds_the_claim_list_and_keeps_the_total_count() -> None:
    ref = reference(GAP_DIRECTORY)
    config = AdequacyConfig(max_claim_refs=3)
    book = OpportunityBook(config=config)
    for index in range(5):
        facts = claim_facts(remittance(f"C{index}"), context(f"C{index}"), ref)
        for opportunity in evaluate_claim(facts, ref, config).opportunities:
            book.upsert(opportunity)
    (merged,) = book.opportunities()
    assert merged.claim_count == 5
    assert [ref.payer_claim_id for ref in merged.claims] == ["PCID-C2", "PCID-C3", "PCID-C4"]
    assert merged.billed_amount == Decimal("5000.00")


def test_merge_evidence_keeps_min_max_and_sums_totals() -> None:
    ref = reference(LOCATIONS + "PAYER1,,cardiology,91001\n", extra={})
    near = evaluate_claim(
        claim_facts(remittance("A", filing="HM", claim_adjustments=[("CO", "242", "10.00")]), context("A"), ref), ref
    )
    far_ctx = context("B", patient_zip="90002")  # rural: 91001 is ~ 68 miles away, beyond 60
    far = evaluate_claim(
        claim_facts(remittance("B", filing="HM", claim_adjustments=[("CO", "242", "5.00")]), far_ctx, ref), ref
    )
    assert [o.rule for o in near.opportunities] == ["distance_gap", "denial_gap"]
    denial_a = near.opportunities[1]
    denial_b = next(o for o in far.opportunities if o.rule == "denial_gap")
    assert denial_a.opportunity_id != denial_b.opportunity_id  # different counties: different regions
    same_region = denial_a.model_copy(update={"claims": denial_b.claims, "evidence": denial_b.evidence})
    merged = merge_opportunity(denial_a, same_region)
    assert merged.evidence["denied_amount_total"] == "15.00"
    assert merged.evidence["denial_codes_seen"] == ["CO-242"]


def test_merge_rejects_different_ids() -> None:
    ref = reference(GAP_DIRECTORY)
    opportunities = evaluate_claim(claim_facts(remittance(filing="16"), context(), ref), ref).opportunities
    with pytest.raises(ValueError):
        merge_opportunity(opportunities[0], opportunities[1])


def test_period_bounds() -> None:
    assert period_bounds(D(2025, 2, 14), "quarter") == (D(2025, 1, 1), D(2025, 3, 31))
    assert period_bounds(D(2025, 12, 31), "quarter") == (D(2025, 10, 1), D(2025, 12, 31))
    assert period_bounds(D(2024, 2, 14), "month") == (D(2024, 2, 1), D(2024, 2, 29))
    assert period_bounds(D(2025, 7, 1), "year") == (D(2025, 1, 1), D(2025, 12, 31))


def test_opportunity_json_round_trip() -> None:
    from schemas.adequacy import SCAOpportunity

    ref = reference(GAP_DIRECTORY)
    for opportunity in evaluate_claim(claim_facts(remittance(filing="16"), context(), ref), ref).opportunities:
        text = opportunity.model_dump_json()
        assert SCAOpportunity.model_validate_json(text) == opportunity
        assert '"billed_amount":"1000.00"' in text
