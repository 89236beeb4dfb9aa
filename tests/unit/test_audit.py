"""``claimwatch audit`` on simulated data: same numbers as ``claimwatch parse | claimwatch price`` netted with
``apply_remittance``, the planted underpaying group first, markdown = JSON, no patient data, bad files survived.

One 400-claim simulation (seed 7) is written once per module with ``claimwatch simulate`` and audited once
per option set through ``services.cli.main``.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.evaluation import ClaimEvaluation, ClaimState
from schemas.remittance import RemittanceEvent
from services.audit.cli import Progress, expand_paths, render_json, render_markdown
from services.audit.report import (
    ALL_GROUPS,
    AuditReport,
    ClaimHistory,
    audit_claim,
    build_report,
    net_claim,
    slim,
    ucr_line_amounts,
    ucr_percentiles,
)
from services.cli import build_parser, main
from services.ingestion.x12 import parse_path
from services.pricing.cli import run_price
from services.pricing.reference import load_pricing_folder
from services.settings import get_settings
from services.underpayment.evaluate import apply_remittance, evaluate

CLAIMS = 400


def _run(argv: list[str], stdin: str | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("audit") / "sim"
    code, _, err = _run(["simulate", "--out", str(folder), "--claims", str(CLAIMS), "--no-verify"])
    assert code == 0, err
    return folder


def _audit_args(sim: Path, *extra: str) -> list[str]:
    return [
        "audit",
        "--reference",
        str(sim / "reference"),
        "--claims",
        str(sim / "claims.jsonl"),
        "--quiet",
        *extra,
    ]


def _audit_json(sim: Path, *extra: str, paths: list[str] | None = None) -> AuditReport:
    code, out, err = _run([*_audit_args(sim, "--format", "json", *extra), *(paths or [str(sim / "remittances")])])
    assert code == 0, err
    return AuditReport.model_validate_json(out)


@pytest.fixture(scope="module")
def manifest(sim) -> dict:
    return json.loads((sim / "manifest.json").read_text())


@pytest.fixture(scope="module")
def report(sim) -> AuditReport:
    return _audit_json(sim)


@pytest.fixture(scope="module")
def markdown(sim) -> str:
    code, out, err = _run([*_audit_args(sim), str(sim / "remittances")])
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def priced(sim) -> tuple[str, list[ClaimEvaluation]]:
    """``claimwatch parse FILES | claimwatch price`` output: (parse stdout, evaluations in order)."""
    files = sorted(str(path) for path in (sim / "remittances").glob("*.835"))
    code, parsed, _ = _run(["parse", *files])
    assert code == 0
    args = build_parser().parse_args(
        ["price", "--reference", str(sim / "reference"), "--claims", str(sim / "claims.jsonl")]
    )
    out = io.StringIO()
    with contextlib.redirect_stderr(io.StringIO()):
        assert run_price(args, stdin=io.StringIO(parsed), stdout=out) == 0
    return parsed, [ClaimEvaluation.model_validate_json(line) for line in out.getvalue().splitlines()]


@pytest.fixture(scope="module")
def netted(priced) -> dict[str, tuple[ClaimState, Decimal]]:
    """claim key -> (final state, recovered dollars), folding the price output with apply_remittance."""
    states: dict[str, ClaimState] = {}
    recovered: Counter = Counter()
    for evaluation in priced[1]:
        state, _, amount = apply_remittance(states.get(evaluation.claim_key), evaluation)
        states[evaluation.claim_key] = state
        recovered[evaluation.claim_key] += amount
    return {key: (state, Decimal(recovered[key])) for key, state in states.items()}


def _independent_by_group(netted, keep=lambda net: True) -> dict[str, dict[str, Decimal | int]]:
    groups: dict[str, dict[str, Decimal | int]] = defaultdict(lambda: defaultdict(Decimal))
    for state, recovered in netted.values():
        net = state.net
        if net is None or not keep(net):
            continue
        group = groups[net.payer_group]
        group["claims"] += 1
        group["underpaid"] += net.totals.underpaid
        group["underpaid_claims"] += net.status == "underpaid"
        group["billed"] += net.totals.billed
        group["allowed"] += net.totals.allowed
        group["paid"] += net.totals.paid
        group["recovered"] += recovered
    return groups


# ------------------------------------------------------------------------------ same numbers as `price`


def test_left_on_the_table_per_group_equals_price_output_netted(report, netted):
    expected = _independent_by_group(netted)
    assert {group.group for group in report.groups} == set(expected)
    for group in report.groups:
        mine = expected[group.group]
        assert group.left_on_table == mine["underpaid"], group.group
        assert group.claims == mine["claims"], group.group
        assert group.underpaid_claims == mine["underpaid_claims"], group.group
        assert group.billed == mine["billed"] and group.allowed == mine["allowed"] and group.paid == mine["paid"]
        assert group.recovered == mine["recovered"], group.group
    assert report.totals.left_on_table == sum(item["underpaid"] for item in expected.values())
    assert report.totals.left_on_table == sum(group.left_on_table for group in report.groups)


def test_netting_removes_corrected_underpayments_and_counts_recoveries(report, netted, priced, manifest):
    # without netting, the originals of the recoveries (72% of expected) would count as underpaid
    gross = sum(evaluation.totals.underpaid for evaluation in priced[1] if evaluation.status == "underpaid")
    assert report.totals.left_on_table < gross
    assert str(report.totals.recovered) == manifest["patterns"]["reversals"]["recovered_total"]
    assert report.not_compared.reversed_claims == 0 and report.not_compared.reversal_only_claims == 0


def test_planted_underpaying_group_tops_the_ranking(report, manifest):
    spike = manifest["patterns"]["underpayment"]["spike"]
    top = report.groups[0]
    assert top.group == spike["payer_group"]
    assert set(spike["payer_ids"]) <= set(top.payer_ids)
    assert top.left_on_table >= Decimal(spike["shortfall"])
    assert all(top.left_on_table > group.left_on_table for group in report.groups[1:])
    assert top.underpaid_rate_pct == max(group.underpaid_rate_pct for group in report.groups)
    # its top codes are the planted office visits
    underpaid_codes = {row.code for row in top.top_codes if row.left_on_table > 0}
    assert underpaid_codes <= set(spike["codes"]) and underpaid_codes
    assert top.top_codes[0].left_on_table == max(row.left_on_table for row in top.top_codes)


def test_code_rows_and_medicare_percentages_add_up(report, netted):
    for group in [*report.groups, report.totals]:
        rows = group.top_codes
        assert len(rows) <= report.top
        assert [row.left_on_table for row in rows] == sorted((row.left_on_table for row in rows), reverse=True)
        medicare = group.medicare
        if medicare.lines:
            assert medicare.allowed_pct_of_medicare == (medicare.allowed * 100 / medicare.medicare_amount).quantize(
                Decimal("0.1")
            )
    # the Medicare denominator equals the evaluations' medicare_amount over priced lines
    total = Decimal(0)
    for state, _ in netted.values():
        if state.net is None:
            continue
        for line in state.net.lines:
            priced = line.status in ("underpaid", "as_expected", "overpaid") or (
                line.status == "not_comparable"
                and line.reason not in ("secondary_payer", "not_our_claim", "predetermination")
            )
            if priced and line.medicare_amount is not None:
                total += line.medicare_amount
    assert report.totals.medicare.medicare_amount == total


def test_ucr_comparison_only_where_the_terms_use_ucr(report, sim):
    by_group = {group.group: group for group in report.groups}
    # payer_policies.csv: PEACH "120% medicare", no UCR anywhere in its terms -> said, not invented
    assert by_group["peachtree"].ucr == []
    assert "not derivable" in by_group["peachtree"].ucr_note
    # DESRT "100% ucr75": allowed = expected = 100% of UCR p75 on as-expected lines
    desert = by_group["desertsky"].ucr
    assert [item.percentile for item in desert] == [75]
    assert desert[0].lines > 0 and desert[0].lines == desert[0].lines_from_rate_terms
    # CRSTN/CRSTX "min(max(125% medicare, 100% ucr70), 90% billed)" (+ a p80 contract row)
    assert 70 in [item.percentile for item in by_group["crestline"].ucr]


def test_ucr_amount_of_a_line_is_the_ucr_table_value(sim):
    reference = load_pricing_folder(sim / "reference")
    key = get_settings().hmac_key.get_secret_value().encode()
    from schemas.claims import ClaimContext

    contexts = {}
    for line in (sim / "claims.jsonl").read_text().splitlines():
        context = ClaimContext.model_validate_json(line)
        contexts[context.partition_key] = context
    checked = 0
    for path in sorted((sim / "remittances").glob("*DESRT*.835")):
        for item in parse_path(path, key):
            if not isinstance(item, RemittanceEvent) or len(item.service_lines) != 1:
                continue
            line = item.service_lines[0]
            if line.units != 1 or line.modifiers or item.status_code != "1":
                continue
            context = contexts[item.partition_key]
            evaluation = evaluate(item, context, reference)
            if evaluation.lines[0].basis != "oon_policy" or evaluation.status != "as_expected":
                continue  # a DESRT contract row or SCA: not the "100% ucr75" policy
            assert ucr_percentiles(evaluation.lines[0].rate_term) == (75,)
            amounts = ucr_line_amounts(item, context, evaluation, reference)
            row = reference.ucr[(context.place_of_service_zip[:3], line.procedure_code, "")]
            assert amounts[0][75] == row.values[75]
            assert evaluation.lines[0].expected_amount == row.values[75]
            checked += 1
    assert checked


def test_ucr_percentile_option_compares_every_priced_line(sim):
    report = _audit_json(sim, "--ucr-percentile", "80", "--payer", "PEACH")
    (group,) = report.groups
    (item,) = group.ucr
    assert item.percentile == 80 and item.lines_from_rate_terms == 0
    assert item.lines + item.lines_without_ucr_amount == group.priced_lines


# ------------------------------------------------------------------------------ markdown = JSON


def _tables(markdown: str) -> list[list[dict[str, str]]]:
    tables, current, headers = [], None, None
    for line in markdown.splitlines():
        if not line.startswith("|"):
            if current is not None:
                tables.append(current)
            current, headers = None, None
            continue
        cells = [cell.strip().strip("*") for cell in line.strip().strip("|").split(" | ")]
        if headers is None:
            headers, current = cells, []
        elif not set(line) <= set("|-"):
            current.append(dict(zip(headers, cells, strict=True)))
    if current is not None:
        tables.append(current)
    return tables


def _money(text: str) -> Decimal:
    return Decimal(text.replace("$", "").replace(",", ""))


def test_markdown_and_json_agree(report, markdown):
    tables = _tables(markdown)
    summary = {row["payer group"]: row for row in tables[0]}
    assert list(summary) == [group.group for group in report.groups] + ["all"]
    for group in [*report.groups, report.totals]:
        row = summary["all" if group.group == ALL_GROUPS else group.group]
        assert int(row["claims"].replace(",", "")) == group.claims
        assert int(row["underpaid claims"].replace(",", "")) == group.underpaid_claims
        for column, value in (
            ("billed", group.billed),
            ("allowed", group.allowed),
            ("paid", group.paid),
            ("expected", group.expected),
            ("left on the table", group.left_on_table),
            ("recovered", group.recovered),
        ):
            assert _money(row[column]) == value, (group.group, column)
        assert row["allowed % of Medicare"] == f"{group.medicare.allowed_pct_of_medicare}%"
        assert row["underpaid rate"] == f"{group.underpaid_rate_pct}%"
    # one code table per group then the all-payer one, in the same order and with the same rows
    code_tables = tables[1:-1]
    assert len(code_tables) == len(report.groups) + 1
    for group, table in zip([*report.groups, report.totals], code_tables, strict=True):
        assert [row["code"] for row in table] == [row.code for row in group.top_codes]
        for row, code in zip(table, group.top_codes, strict=True):
            assert _money(row["left on the table"]) == code.left_on_table
            assert _money(row["median allowed"]) == code.median_allowed
            assert int(row["lines"]) == code.lines
    accounting = tables[-1][0]
    assert int(accounting["claims seen"].replace(",", "")) == report.parse.claims_seen
    # JSON carries money as strings
    data = json.loads(render_json(report))
    assert data["totals"]["left_on_table"] == str(report.totals.left_on_table)
    assert isinstance(data["groups"][0]["medicare"]["allowed_pct_of_medicare"], str)
    assert render_markdown(report) == markdown


# ------------------------------------------------------------------------------ accounting, PHI, errors


def test_parse_accounting_matches_the_parser(report, priced, sim):
    parsed_events = [line for line in priced[0].splitlines() if '"event_type":"remittance"' in line]
    parse = report.parse
    assert parse.files == len(list((sim / "remittances").glob("*.835"))) == parse.files_readable
    assert parse.events == len(parsed_events) == len(priced[1])
    assert parse.claims_seen == parse.events + parse.claim_dead_letters
    assert parse.accounted and parse.files_with_errors == 0 and parse.duplicate_events == 0
    assert all(item.claims_seen == item.events + item.claim_dead_letters for item in report.files)
    assert sum(report.totals.claims_by_status.values()) == report.totals.claims
    assert report.not_compared.claims_by_reason.get("secondary_payer", 0) > 0


def test_no_patient_data_in_the_report(sim, report, markdown, tmp_path):
    contexts = [json.loads(line) for line in (sim / "claims.jsonl").read_text().splitlines()]
    secrets = {item["patient_key"] for item in contexts if item.get("patient_key")}
    control_numbers = {item["patient_control_number"] for item in contexts}
    text = render_json(report) + markdown
    assert not any(secret in text for secret in secrets)
    assert not any(number in text for number in control_numbers)
    assert "patient" not in render_json(report).lower()
    # the per-claim detail carries the provider's claim id, never the patient key
    detail = tmp_path / "detail.jsonl"
    code, _, _ = _run([*_audit_args(sim, "--detail", str(detail)), str(sim / "remittances")])
    assert code == 0
    lines = [json.loads(line) for line in detail.read_text().splitlines()]
    assert len(lines) == report.totals.claims
    assert {line["patient_control_number"] for line in lines} <= control_numbers
    assert not any(secret in detail.read_text() for secret in secrets)
    assert sum(Decimal(line["underpaid"]) for line in lines) == report.totals.left_on_table


def test_bad_files_are_reported_and_the_rest_processed(sim, report, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(sim / "remittances", folder)
    (folder / "notes.txt").write_text("not an 835 at all\n")
    missing = tmp_path / "nowhere.835"
    code, out, err = _run([*_audit_args(sim, "--format", "json"), str(folder), str(missing), str(sim / "remittances")])
    assert code == 0
    mixed = AuditReport.model_validate_json(out)
    errors = {Path(item.file).name: item.error for item in mixed.files if item.error}
    assert set(errors) == {"notes.txt", "nowhere.835"}
    assert "notes.txt" in err and "nowhere.835" in err
    # the same files twice: every event is a duplicate the second time, counted once
    assert mixed.parse.duplicate_events == report.parse.events
    assert mixed.totals.left_on_table == report.totals.left_on_table
    assert mixed.totals.claims == report.totals.claims


def test_nothing_readable_or_bad_reference_exits_2(sim, tmp_path):
    junk = tmp_path / "junk.835"
    junk.write_text("hello")
    code, _, err = _run([*_audit_args(sim), str(junk)])
    assert code == 2 and "no file could be read" in err
    bad_reference = tmp_path / "reference"
    bad_reference.mkdir()
    (bad_reference / "payer_policies.csv").write_text("payer_id,benchmark\nX,nonsense(\n")
    code, _, err = _run(["audit", "--reference", str(bad_reference), "--quiet", str(sim / "remittances")])
    assert code == 2 and "--reference" in err
    code, _, err = _run([*_audit_args(sim, "--from", "2025-12-01", "--to", "2025-11-01"), str(sim / "remittances")])
    assert code == 2


# ------------------------------------------------------------------------------ filters and grouping


def test_payer_filter_keeps_the_same_numbers(sim, report):
    by_group = {group.group: group for group in report.groups}
    one = _audit_json(sim, "--payer", "crestline")
    assert [group.group for group in one.groups] == ["crestline"]
    assert one.groups[0].left_on_table == by_group["crestline"].left_on_table
    assert one.groups[0].claims == by_group["crestline"].claims
    assert one.parse.outside_payer_filter > 0
    ids = _audit_json(sim, "--payer", "PEACH", "--payer", "SUNCO")
    assert {group.group for group in ids.groups} == {"peachtree", "suncoast"}


def test_date_filter_on_service_and_payment_dates(sim, report, netted):
    start, end = "2025-11-01", "2025-11-30"
    service = _audit_json(sim, "--from", start, "--to", end)
    expected = _independent_by_group(
        netted, lambda net: net.service_date_from and start <= net.service_date_from.isoformat() <= end
    )
    assert {group.group: group.left_on_table for group in service.groups} == {
        name: values["underpaid"] for name, values in expected.items()
    }
    assert service.totals.claims + service.not_compared.outside_date_filter == report.totals.claims
    last_week = _audit_json(sim, "--date-field", "payment", "--from", "2025-12-20")
    assert last_week.groups[0].group == "crestline"  # the backlog batch paid in the last week


def test_group_by_payer_splits_the_groups(sim, report):
    per_payer = _audit_json(sim, "--group-by", "payer", "--top", "3")
    assert {group.group for group in per_payer.groups} == set(report.totals.payer_ids)
    assert per_payer.totals.left_on_table == report.totals.left_on_table
    crestline = sum(group.left_on_table for group in per_payer.groups if group.group in ("CRSTN", "CRSTX"))
    assert crestline == next(group.left_on_table for group in report.groups if group.group == "crestline")
    assert all(len(group.top_codes) <= 3 for group in per_payer.groups)


# ------------------------------------------------------------------------------ pure pieces


def test_net_claim_of_reversal_histories(sim):
    reference = load_pricing_folder(sim / "reference")
    key = get_settings().hmac_key.get_secret_value().encode()
    by_claim: dict[str, list[RemittanceEvent]] = defaultdict(list)
    for path in sorted((sim / "remittances").glob("*.835")):
        for item in parse_path(path, key):
            if isinstance(item, RemittanceEvent):
                by_claim[item.claim_key].append(item)
    claim_key, events = next((k, v) for k, v in by_claim.items() if any(e.status_code == "22" for e in v))
    evaluations = [evaluate(event, None, reference) for event in events]
    original, reversal = evaluations[0], next(e for e in evaluations if e.status == "reversal")

    def history(*items: ClaimEvaluation) -> ClaimHistory:
        result = ClaimHistory()
        for number, item in enumerate(items):
            result.add(number, slim(item), audit_claim(item))
        return result

    assert net_claim(history(original, reversal)).status == "reversed"
    assert net_claim(history(reversal)).status == "reversal_only"
    full = net_claim(history(*evaluations))
    assert full.has_net and full.events == len(events)
    assert net_claim(history(*evaluations, *evaluations)).events == len(events)  # re-sent: once
    report = build_report([net_claim(history(original, reversal))], [])
    assert report.totals.claims == 0 and report.not_compared.reversed_claims == 1
    assert claim_key


def test_expand_paths_and_progress(tmp_path):
    (tmp_path / "b.835").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.835").write_text("x")
    (tmp_path / ".hidden").write_text("x")
    (tmp_path / "empty").mkdir()
    files = expand_paths([tmp_path, tmp_path / "empty", tmp_path / "missing.835"])
    assert [(path.name, problem) for path, problem in files] == [
        ("b.835", None),
        ("a.835", None),
        ("empty", "empty folder"),
        ("missing.835", "no such file or folder"),
    ]
    now = [0.0]
    stream = io.StringIO()
    progress = Progress(files_total=3, stream=stream, clock=lambda: now[0])
    progress.claims_done = 10
    progress.tick()
    assert stream.getvalue() == ""
    now[0] = 1.5
    progress.files_done = 1
    progress.tick()
    assert "1/3 files, 10 claims" in stream.getvalue()
