"""``claimwatch opportunities``: the offline face of the adequacy core (same functions as the stream).

opportunities --reference DIR [--recurrence-min-claims N] [--window-days D] [--period quarter]
              [--value-min-underpaid M] [--value-top-codes K] [--assume-county-type TYPE]
    Reads JSON lines on stdin: RemittanceEvent objects (``event_type`` "remittance" or absent), ClaimContext
    objects ("claim_context"), joined to remittances by partition key (payee | CLP01) wherever they appear,
    and optionally ClaimEvaluation objects ("claim_evaluation": the value rule's input; each also lends
    its expected / Medicare totals to the remittance it evaluated, by event_id). ``DIR/claims.jsonl``,
    when present, supplies ClaimContext lines first (stdin wins on the same key). Network reference files:
    ``DIR/network/*`` and ``DIR/medicare/<year>/ZIP5*.txt`` (docs/reference-network.md).
    Writes the final, deduplicated opportunities as JSON lines on stdout (one per payer + specialty +
    region + rule + period). Malformed lines go to stderr as JSON objects with their line number; the rest
    is processed. A summary JSON object (lines in, rejected, not assessable by reason, opportunities out
    per rule) ends stderr. Exit 0, or 1 when input lines were given and none could be used; 2 on a bad
    reference folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from schemas.claims import ClaimContext
from schemas.evaluation import ClaimEvaluation
from schemas.remittance import RemittanceEvent
from services.adequacy.reference import COUNTY_TYPES, load_network_reference, normalize_county_type
from services.adequacy.rules import (
    AdequacyConfig,
    ClaimFacts,
    LineOutcome,
    NotAssessable,
    OpportunityBook,
    RecurrenceState,
    claim_facts,
    evaluate_claim,
    line_outcomes_from_evaluation,
    value_triggers,
)
from services.cli import CommandError
from services.jsonlines import decode_event, read_event_lines
from services.reference.files import ReferenceError, read_folder

CLAIMS_CONTEXT_FILE = "claims.jsonl"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "opportunities",
        help="SCA / gap-exception opportunities from remittance + claim context JSON lines on stdin.",
        description="Read RemittanceEvent and ClaimContext (and claim evaluation) JSON lines on stdin; write "
        "the network-adequacy opportunities (distance, count, denial, Medicare Advantage access, recurrence, "
        "value) as JSON lines, deduplicated per payer + specialty + region + rule + period.",
    )
    parser.add_argument("--reference", required=True, type=Path, metavar="DIR", help="Reference folder.")
    defaults = AdequacyConfig()
    parser.add_argument(
        "--recurrence-min-claims",
        type=int,
        default=defaults.recurrence_min_claims,
        metavar="N",
        help="Recurrence: OON claims for payer + specialty + region within the window (default: %(default)s).",
    )
    parser.add_argument(
        "--window-days",
        type=int,
        default=defaults.recurrence_window_days,
        metavar="D",
        help="Recurrence window in calendar days, both ends included (default: %(default)s).",
    )
    parser.add_argument(
        "--period",
        choices=("month", "quarter", "year"),
        default=defaults.period,
        help="Dedup period of opportunities (default: %(default)s).",
    )
    parser.add_argument(
        "--value-min-underpaid",
        type=int,
        default=defaults.value_min_underpaid_lines,
        metavar="M",
        help="Value rule: underpaid lines of one payer on one top code in the period (default: %(default)s).",
    )
    parser.add_argument(
        "--value-top-codes",
        type=int,
        default=defaults.value_top_codes,
        metavar="K",
        help="Value rule: how many of the group's top codes (by volume) count (default: %(default)s).",
    )
    parser.add_argument(
        "--assume-county-type",
        metavar="TYPE",
        help=f"County type for ZIPs with no override and no ZIP5 rural indicator ({', '.join(COUNTY_TYPES)}); "
        "default: skip the distance and count rules for them.",
    )
    parser.set_defaults(handler=run_opportunities)


def _config(args: argparse.Namespace) -> AdequacyConfig:
    assumed = None
    if args.assume_county_type:
        assumed = normalize_county_type(args.assume_county_type)
        if assumed is None:
            raise CommandError(
                f"--assume-county-type: {args.assume_county_type!r} is not one of {', '.join(COUNTY_TYPES)}"
            )
    try:
        return AdequacyConfig(
            recurrence_min_claims=args.recurrence_min_claims,
            recurrence_window_days=args.window_days,
            period=args.period,
            value_min_underpaid_lines=args.value_min_underpaid,
            value_top_codes=args.value_top_codes,
            assumed_county_type=assumed,
        )
    except ValueError as error:
        raise CommandError(str(error)) from error


def _decode(text: str) -> tuple[str, Any]:
    """Like decode_event, plus claim evaluations (``claimwatch price`` output) for the value rule."""
    if '"claim_evaluation"' in text:
        evaluation = ClaimEvaluation.model_validate_json(text)
        return "claim_evaluation", (evaluation, line_outcomes_from_evaluation(evaluation))
    return decode_event(text)


def _evaluation_totals(evaluation: ClaimEvaluation) -> tuple[Decimal | None, Decimal | None]:
    """Expected and Medicare amounts of an evaluated claim (Medicare only when every line has one)."""
    expected = [line.expected_amount for line in evaluation.lines if line.expected_amount is not None]
    medicare = [line.medicare_amount for line in evaluation.lines if line.medicare_amount is not None]
    return (
        sum(expected, Decimal(0)) if expected else None,
        sum(medicare, Decimal(0)) if medicare and len(medicare) == len(evaluation.lines) else None,
    )


def run_opportunities(args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    config = _config(args)
    try:
        files = read_folder(args.reference)
        reference = load_network_reference(files)
    except ReferenceError as error:
        raise CommandError(f"--reference: {error}") from error

    counts: Counter = Counter()
    contexts: dict[str, ClaimContext] = {}
    claims_file = Path(args.reference) / CLAIMS_CONTEXT_FILE
    if claims_file.is_file():
        with claims_file.open(encoding="utf-8-sig") as handle:
            for _, kind, model in read_event_lines(handle, Counter(), sys.stderr, CLAIMS_CONTEXT_FILE, decode=_decode):
                if kind == "claim_context":
                    counts["reference_contexts"] += 1
                    contexts[model.partition_key] = model

    remittances: list[tuple[int, RemittanceEvent]] = []
    outcomes: list[LineOutcome] = []
    amounts: dict[str, tuple[Decimal | None, Decimal | None]] = {}
    for number, kind, model in read_event_lines(stdin, counts, sys.stderr, decode=_decode):
        counts[kind] += 1
        if kind == "claim_context":
            contexts[model.partition_key] = model
        elif kind == "remittance":
            remittances.append((number, model))
        elif kind == "claim_evaluation":
            evaluation, lines = model
            outcomes.extend(lines)
            amounts[evaluation.event_id] = _evaluation_totals(evaluation)

    not_assessable: Counter = Counter()
    facts_list: list[tuple[int, ClaimFacts]] = []
    for number, event in remittances:
        context = contexts.get(event.partition_key)
        if context is None:
            counts["without_context"] += 1
        expected, medicare = amounts.get(event.event_id, (None, None))
        try:
            facts = claim_facts(event, context, reference, expected=expected, medicare=medicare)
        except NotAssessable as error:
            not_assessable[error.reason] += 1
            continue
        facts_list.append((number, facts))

    book = OpportunityBook(config=config)
    notes: Counter = Counter()
    states: dict[str, RecurrenceState] = {}
    for _, facts in sorted(facts_list, key=lambda item: (item[1].claim_date, item[0])):
        assessment = evaluate_claim(facts, reference, config)
        counts["claims_assessed"] += 1
        for note in assessment.notes:
            notes[note.split(":", 1)[0] + ": " + _generic(note)] += 1
        for opportunity in assessment.opportunities:
            book.upsert(opportunity)
        key = assessment.recurrence_key
        if key is None or assessment.region is None:
            continue
        state = states.setdefault(key, RecurrenceState(region=assessment.region))
        opportunity = state.observe(facts, config)
        if opportunity is not None:
            book.upsert(opportunity)
    for opportunity in value_triggers(outcomes, config):
        book.upsert(opportunity)

    per_rule: dict[str, int] = defaultdict(int)
    for opportunity in book.opportunities():
        print(opportunity.model_dump_json(), file=stdout)
        per_rule[opportunity.rule] += 1

    summary = {
        "lines_in": counts["lines_in"],
        "remittances": counts["remittance"],
        "contexts": counts["claim_context"] + counts["reference_contexts"],
        "evaluations": counts["claim_evaluation"],
        "provider_adjustments_ignored": counts["provider_adjustment"],
        "rejected": counts["rejected"],
        "without_context": counts["without_context"],
        "not_assessable": sum(not_assessable.values()),
        "not_assessable_by_reason": dict(sorted(not_assessable.items())),
        "claims_assessed": counts["claims_assessed"],
        "rules_not_evaluated": dict(notes.most_common(20)),
        "opportunities_out": len(book),
        "opportunities_by_rule": dict(sorted(per_rule.items())),
        "reference_files": list(reference.files),
    }
    print(json.dumps({"summary": summary}), file=sys.stderr)
    usable = counts["lines_in"] - counts["rejected"]
    return 1 if counts["lines_in"] and usable <= 0 else 0


def _generic(note: str) -> str:
    """A rule note without the payer id, so that the summary counts reasons."""
    text = note.split(":", 1)[1].strip() if ":" in note else note
    if text.startswith("payer ") and "is not in" in text:
        return "payer (or product) is not in network/directory.csv"
    return text
