"""``claimwatch simulate`` output: determinism, valid 835s, and every planted pattern where the manifest says.

One default-size simulation (seed 7, 1,500 claims) is written once per module and read by every test.
"""

from __future__ import annotations

import datetime as dt
import filecmp
import json
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.claims import ClaimContext
from services.reference.checks import run_checks
from services.reference.files import read_folder
from services.settings import DEMO_HMAC_KEY
from services.simulate.generate import Plan, Simulation, write_simulation, x12_amount

KEY = DEMO_HMAC_KEY.encode()


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("simulation") / "out"
    write_simulation(folder)
    return folder


@pytest.fixture(scope="module")
def manifest(out) -> dict:
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def contexts(out) -> dict[str, ClaimContext]:
    result = {}
    for line in (out / "claims.jsonl").read_text().splitlines():
        context = ClaimContext.model_validate_json(line)
        result[context.partition_key] = context
    return result


@pytest.fixture(scope="module")
def parsed(out):
    """(events, provider adjustments, dead letters, file summaries) from the project's 835 parser."""
    x12 = pytest.importorskip("services.ingestion.x12", reason="the 835 parser module is not there yet")
    from schemas.remittance import ProviderAdjustmentEvent, RemittanceEvent

    events, adjustments, dead, summaries = [], [], [], []
    for path in sorted((out / "remittances").glob("*.835")):
        run = x12.parse_path(path, KEY)
        for item in run:
            if isinstance(item, RemittanceEvent):
                events.append(item)
            elif isinstance(item, ProviderAdjustmentEvent):
                adjustments.append(item)
            else:
                dead.append(item)
        summaries.append(run.summary)
    return events, adjustments, dead, summaries


@pytest.fixture(scope="module")
def evaluations(out, parsed, contexts):
    evaluate_module = pytest.importorskip("services.underpayment.evaluate", reason="pricing is not there yet")
    from services.pricing.reference import load_pricing_reference

    reference = load_pricing_reference(read_folder(out / "reference"))
    events = parsed[0]
    return [evaluate_module.evaluate(event, contexts.get(event.partition_key), reference) for event in events]


# ------------------------------------------------------------------------------------------------ layout


def test_folder_layout_and_counts(out, manifest, contexts):
    assert (out / "reference" / "medicare" / "2025" / "PPRRVU2025_Oct.csv").is_file()
    for name in ("payers.csv", "fee_schedules.csv", "scas.csv", "ucr.csv", "payer_policies.csv"):
        assert (out / "reference" / name).is_file()
    for name in ("roster.csv", "directory.csv", "county_types.csv", "adequacy_standards.csv"):
        assert (out / "reference" / "network" / name).is_file()
    files = sorted((out / "remittances").glob("*.835"))
    assert len(files) == manifest["counts"]["files"] == len(manifest["files"])
    assert len(contexts) == manifest["counts"]["claims"] == 1500
    assert manifest["seed"] == 7
    assert manifest["start"] == "2025-10-01"
    transactions = [item["transactions"] for item in manifest["files"]]
    assert sum(transactions) == manifest["counts"]["transactions"]
    assert sum(1 for count in transactions if count > 1) > len(transactions) / 2  # several ST per file


def test_reference_folder_passes_the_project_checks(out):
    summary, problems = run_checks(read_folder(out / "reference"))
    assert problems == []
    assert any(line.startswith("network/directory.csv") for line in summary)


def test_same_seed_gives_byte_identical_output(out, tmp_path):
    again = tmp_path / "again"
    write_simulation(again)
    comparison = filecmp.dircmp(out, again)
    names = [path.relative_to(out) for path in out.rglob("*") if path.is_file()]
    assert len(names) > 100
    for name in names:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    assert not comparison.left_only and not comparison.right_only


def test_another_seed_gives_another_world(tmp_path):
    first = Simulation(seed=1, claims=300)
    second = Simulation(seed=2, claims=300)
    texts = [
        "".join(item.text for batch in simulation.weeks() for item in batch.files) for simulation in (first, second)
    ]
    assert texts[0] != texts[1]


def test_plan_scales_with_claims():
    assert Plan.for_claims(1500).spike == 60
    assert Plan.for_claims(200).spike == 10
    with pytest.raises(ValueError):
        Plan.for_claims(199)


def test_x12_amounts():
    assert x12_amount(Decimal("12.50")) == "12.5"
    assert x12_amount(Decimal("-40.00")) == "-40"
    assert x12_amount(Decimal("0.00")) == "0"
    assert x12_amount(Decimal("-0.001")) == "0"


def test_dates_fall_in_2025_and_the_claim_contexts_are_complete(manifest, contexts):
    first, last = (dt.date.fromisoformat(day) for day in manifest["service_dates"])
    assert dt.date(2025, 10, 1) <= first <= last <= dt.date(2025, 12, 31)
    for context in contexts.values():
        assert context.place_of_service_zip and context.state and context.specialty_group and context.taxonomy_code
        assert context.patient_zip and context.patient_key and context.product_type and context.rendering_npi
    assert {context.state for context in contexts.values()} == {"TX", "FL", "GA", "AZ", "CO", "NC"}
    assert len({context.specialty_group for context in contexts.values()}) == 11


# ------------------------------------------------------------------------------------------------ 835


def test_every_835_parses_without_dead_letters_or_balance_issues(parsed, manifest):
    events, adjustments, dead, summaries = parsed
    assert dead == []
    assert [event.balance_issues for event in events if event.balance_issues] == []
    assert all(summary.accounted and summary.complete for summary in summaries)
    assert sum(summary.unbalanced_transactions for summary in summaries) == 0
    assert [summary.warnings for summary in summaries if summary.warnings] == []
    assert len(events) == manifest["counts"]["remittance_claims"]
    assert adjustments  # PLB interest on some transactions
    assert Counter(event.status_code for event in events) == Counter(manifest["counts"]["by_status"])


def test_remittances_join_their_claim_context(parsed, contexts):
    events = parsed[0]
    for event in events:
        context = contexts[event.partition_key]
        assert event.payee.npi == context.payee_id
        assert event.rendering_provider_npi == context.rendering_npi
        if event.status_code in ("1", "4", "22"):
            assert event.patient_key == context.patient_key
            assert event.payer.id == context.payer_id


def test_amt_b6_co45_pr_and_sequestration(parsed):
    events = parsed[0]
    lines = [(event, line) for event in events for line in event.service_lines]
    with_b6 = [line for _, line in lines if line.reported_allowed_amount is not None]
    assert 0.3 * len(lines) < len(with_b6) < 0.9 * len(lines)
    codes = Counter(f"{adj.group_code}-{adj.reason_code}" for _, line in lines for adj in line.adjustments)
    for code in ("CO-45", "PR-1", "PR-2", "PR-3", "CO-253", "OA-23"):
        assert codes[code] > 0, code
    sequestration_payers = {
        event.payer.id for event, line in lines if any(adj.reason_code == "253" for adj in line.adjustments)
    }
    assert sequestration_payers == {"SILVR"}
    assert {event.claim_filing_indicator for event in events if event.payer.id == "SILVR"} == {"16"}


def test_reversals_are_followed_by_a_correction_of_the_same_claim(parsed, manifest):
    events = parsed[0]
    reversals = [event for event in events if event.status_code == "22"]
    assert len(reversals) == manifest["patterns"]["reversals"]["count"] == 10
    by_claim = defaultdict(list)
    for event in events:
        by_claim[(event.payer.id, event.payer_claim_id)].append(event)
    recovered = Decimal(0)
    for reversal in reversals:
        history = by_claim[(reversal.payer.id, reversal.payer_claim_id)]
        assert [event.status_code for event in history] == ["1", "22", "1"]
        original, _, correction = history
        assert reversal.charge_amount == -original.charge_amount and reversal.paid_amount == -original.paid_amount
        assert {event.patient_control_number for event in history} == {original.patient_control_number}
        assert correction.source.transaction_control_number == reversal.source.transaction_control_number
        assert correction.source.segment_index > reversal.source.segment_index
        recovered += sum(line.derived_allowed_amount for line in correction.service_lines) - sum(
            line.derived_allowed_amount for line in original.service_lines
        )
    assert recovered == Decimal(manifest["patterns"]["reversals"]["recovered_total"]) > 0


def test_secondary_payer_claims(parsed, manifest):
    events = parsed[0]
    secondary = [event for event in events if event.status_code == "2"]
    assert len(secondary) == manifest["patterns"]["secondary"]["count"] == 15
    keys = {item["claim_key"] for item in manifest["patterns"]["secondary"]["items"]}
    assert {event.claim_key for event in secondary} == keys
    for event in secondary:
        assert all(
            any(adj.group_code == "OA" and adj.reason_code == "23" for adj in line.adjustments)
            for line in event.service_lines
        )


def test_nsa_emergency_claims_carry_the_remarks(parsed, contexts, manifest):
    events = parsed[0]
    planted = {item["claim_key"] for item in manifest["patterns"]["nsa_emergency"]["items"]}
    assert len(planted) == manifest["patterns"]["nsa_emergency"]["count"] > 50
    for event in events:
        if event.claim_key not in planted:
            continue
        context = contexts[event.partition_key]
        assert context.emergency and context.place_of_service_code == "23" and event.facility_type_code == "23"
        assert event.claim_filing_indicator != "16"
        remarks = [code for line in event.service_lines for code in line.remark_codes]
        assert "N830" in remarks and ({"N877", "N876"} & set(remarks))


def test_network_denials(parsed, manifest):
    events = {event.claim_key: event for event in parsed[0]}
    in_gap = manifest["patterns"]["network_denials"]["in_gap_counties"]
    assert len(in_gap) == 4
    for item in in_gap:
        event = events[item["claim_key"]]
        assert event.status_code == "4" and event.claim_filing_indicator in ("HM", "14", "16")
        carcs = {adj.reason_code for line in event.service_lines for adj in line.adjustments}
        assert carcs & {"242", "243", "279"}
    assert len(manifest["patterns"]["network_denials"]["without_gap"]) == 4


# ------------------------------------------------------------------------------------------------ pricing


def test_planted_underpayments_and_only_they_evaluate_as_underpaid(evaluations, manifest):
    underpayment = manifest["patterns"]["underpayment"]
    planted = (
        {item["claim_key"] for item in underpayment["spike"]["claims"]}
        | {item["claim_key"] for item in underpayment["chronic"]["claims"]}
        | {item["claim_key"] for item in underpayment["sca_not_honored"]}
    )
    recovery_originals = set(underpayment["recovery_originals"])
    underpaid = [evaluation for evaluation in evaluations if evaluation.status == "underpaid"]
    assert {evaluation.claim_key for evaluation in underpaid} == planted | recovery_originals
    assert len(underpaid) == len(planted) + len(recovery_originals)  # originals only: corrections pay in full
    statuses = Counter(evaluation.status for evaluation in evaluations)
    assert statuses["overpaid"] == 0
    assert statuses["as_expected"] > 0.85 * len(evaluations)
    reasons = Counter(evaluation.reason for evaluation in evaluations if evaluation.status == "not_comparable")
    assert reasons == Counter({"secondary_payer": manifest["patterns"]["secondary"]["count"]})
    shortfall = sum(
        (evaluation.totals.underpaid for evaluation in underpaid if evaluation.claim_key in planted), Decimal(0)
    )
    expected_shortfall = sum(
        Decimal(item["shortfall"]) for key in ("spike", "chronic") for item in underpayment[key]["claims"]
    ) + sum(Decimal(item["shortfall"]) for item in underpayment["sca_not_honored"])
    assert shortfall == expected_shortfall


def test_the_spike_is_one_payer_group_in_the_last_week(evaluations, manifest, parsed):
    spike = manifest["patterns"]["underpayment"]["spike"]
    assert spike["payer_group"] == "crestline"
    assert Decimal(spike["shortfall"]) > 500 and spike["underpaid_claims"] >= 3
    last_week = dt.date.fromisoformat(spike["week_start"])
    by_group: dict[str, Counter] = defaultdict(Counter)
    for evaluation in evaluations:
        if evaluation.status == "reversal":
            continue
        by_group[evaluation.payer_group]["claims"] += 1
        by_group[evaluation.payer_group]["underpaid"] += evaluation.status == "underpaid"
        if evaluation.status == "underpaid" and evaluation.payer_group == "crestline":
            assert evaluation.payment_date >= last_week
    shares = {group: counts["underpaid"] / counts["claims"] for group, counts in by_group.items()}
    assert shares["crestline"] > 0.3  # the UnderpaymentSpike floor, even if the whole stream fits in 5 minutes
    assert all(share < 0.2 for group, share in shares.items() if group != "crestline"), shares


# ------------------------------------------------------------------------------------------------ adequacy


def test_the_adequacy_rules_find_exactly_the_planted_opportunities(out, parsed, contexts, evaluations, manifest):
    rules = pytest.importorskip("services.adequacy.rules", reason="the adequacy core is not there yet")
    from services.adequacy.reference import load_network_reference

    network = load_network_reference(read_folder(out / "reference"))
    book = rules.OpportunityBook()
    observations = []
    outcomes = []
    for event, evaluation in zip(parsed[0], evaluations, strict=True):
        outcomes.extend(rules.line_outcomes_from_evaluation(evaluation))
        try:
            facts = rules.claim_facts(event, contexts.get(event.partition_key), network)
        except rules.NotAssessable:
            continue
        assessment = rules.evaluate_claim(facts, network)
        for opportunity in assessment.opportunities:
            book.upsert(opportunity)
        if assessment.region is not None:
            observations.append((facts, assessment.region))
    for opportunity in rules.find_recurrences(observations) + rules.value_triggers(outcomes):
        book.upsert(opportunity)
    found = sorted((item.rule, item.payer_id, item.specialty_group, item.region) for item in book.opportunities())
    expected = sorted(
        (item["rule"], item["payer_id"], item["specialty_group"], item["region"])
        for item in manifest["expected_opportunities"]
    )
    assert found == expected
    assert {rule for rule, *_ in found} == {
        "distance_gap", "count_gap", "denial_gap", "medicare_advantage_access", "recurrence", "value",
    }  # fmt: skip
    planted_recurrence = [cell for cell in manifest["patterns"]["recurrence"]["cells"] if cell["planted"]]
    assert len(planted_recurrence) == len(manifest["patterns"]["network_gaps"]) == 5
    assert all(cell["planted"] for cell in manifest["patterns"]["recurrence"]["cells"])


def test_pyx12_accepts_the_835_files(out):
    """Optional: the files validate against the X12 005010X221A1 maps of pyx12 (pip install '.[validate]')."""
    pyx12_document = pytest.importorskip("pyx12.x12n_document", reason="pyx12 is not installed")
    import io
    import logging

    import pyx12.params

    logging.getLogger("pyx12").setLevel(logging.CRITICAL)
    params = pyx12.params.params()
    for path in sorted((out / "remittances").glob("*.835"))[:12]:
        with open(path, encoding="ascii") as source:
            assert pyx12_document.x12n_document(params, source, io.StringIO(), None, None), path.name
