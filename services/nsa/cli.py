"""``claimwatch nsa-clock`` and ``claimwatch nsa-cases``: the offline face of the NSA core.

nsa-clock --initial-date YYYY-MM-DD [--negotiation-opened YYYY-MM-DD]
    One JSON object on stdout: ``open_negotiation_deadline``; with --negotiation-opened also
    ``negotiation_period_end``, ``idr_window_start``, ``idr_window_end`` (YYYY-MM-DD strings). Counting
    rules: services/nsa/clock.py. A bad date is an error (exit 2).

nsa-cases [--today YYYY-MM-DD] [--reference DIR] [--offsets 10,5,1] [--batches]
    Reads JSON lines on stdin: RemittanceEvent objects (``event_type`` "remittance" or absent) and,
    optionally, ClaimContext objects (``event_type`` "claim_context"), joined to remittances by partition
    key (payee | CLP01) wherever they appear in the input. ``--reference DIR``: when ``DIR/claims.jsonl``
    exists its ClaimContext lines are read first (stdin contexts win on the same key); other files in DIR
    are ignored. Writes one JSON case per NSA-relevant claim (federal, state, unknown) with its deadlines,
    its state as of --today (expired when the window passed) and ``due_reminders``. Not-applicable claims,
    reversals (CLP02 22), "not our claim" (23), predeterminations (25) and provider adjustments are
    skipped and counted. Several remittances of one claim key give one case, the one with the earliest
    initial date (the earliest, safe deadline). ``--batches`` writes batching candidates instead of cases.
    Malformed lines go to stderr as JSON objects with their line number; the rest is processed. A summary
    JSON object ends stderr. Exit 0, or 1 when input lines were given and none could be used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from schemas.claims import ClaimContext
from schemas.remittance import RemittanceEvent
from services.cli import CommandError
from services.jsonlines import read_event_lines, report
from services.nsa.cases import (
    DEFAULT_OFFSETS,
    batch_candidates,
    build_case,
    due_reminders,
    refresh,
    skip_reason,
)
from services.nsa.classify import classify
from services.nsa.clock import (
    NoReceivedDateError,
    idr_window,
    negotiation_period_end,
    open_negotiation_deadline,
)

DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CLAIMS_CONTEXT_FILE = "claims.jsonl"


def register(subparsers: argparse._SubParsersAction) -> None:
    clock = subparsers.add_parser(
        "nsa-clock",
        help="No Surprises Act deadlines for an initial payment date (and a negotiation-opened date).",
        description="Print the NSA open-negotiation deadline and, with --negotiation-opened, the end of "
        "the negotiation period and the IDR window, counted in federal business days.",
    )
    clock.add_argument(
        "--initial-date",
        required=True,
        metavar="YYYY-MM-DD",
        help="Day the initial payment or notice of denial was received (business day 1).",
    )
    clock.add_argument(
        "--negotiation-opened",
        metavar="YYYY-MM-DD",
        help="Day the open negotiation notice was sent (business day 1 of the negotiation).",
    )
    clock.set_defaults(handler=run_nsa_clock)

    cases = subparsers.add_parser(
        "nsa-cases",
        help="NSA cases, deadlines and due reminders from RemittanceEvent JSON lines on stdin.",
        description="Read RemittanceEvent (and ClaimContext) JSON lines on stdin; write one NSA case per "
        "NSA-relevant claim with its deadlines and the reminders due on --today.",
    )
    cases.add_argument("--today", metavar="YYYY-MM-DD", help="Reference day for states and reminders (default: today).")
    cases.add_argument(
        "--reference",
        metavar="DIR",
        type=Path,
        help=f"Reference folder; its {CLAIMS_CONTEXT_FILE} (ClaimContext JSON lines) is read when present.",
    )
    cases.add_argument(
        "--offsets",
        default=",".join(str(offset) for offset in DEFAULT_OFFSETS),
        metavar="N,N,...",
        help="Reminder offsets in business days before each deadline (default: %(default)s).",
    )
    cases.add_argument("--batches", action="store_true", help="Write batching candidates instead of cases.")
    cases.set_defaults(handler=run_nsa_cases)


def parse_date(option: str, value: str) -> dt.date:
    if DATE_PATTERN.match(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise CommandError(f"{option}: {value!r} is not a valid date (expected YYYY-MM-DD)")


def parse_offsets(value: str) -> tuple[int, ...]:
    try:
        offsets = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        offsets = ()
    if not offsets or any(offset < 0 for offset in offsets):
        raise CommandError(f"--offsets: {value!r} is not a list of business-day counts >= 0 (e.g. 10,5,1)")
    return offsets


def run_nsa_clock(args: argparse.Namespace) -> int:
    initial = parse_date("--initial-date", args.initial_date)
    opened = parse_date("--negotiation-opened", args.negotiation_opened) if args.negotiation_opened else None
    if opened is not None and opened < initial:
        raise CommandError(f"--negotiation-opened {opened} is before --initial-date {initial}")
    try:
        deadline = open_negotiation_deadline(initial)
        result = {"open_negotiation_deadline": deadline.isoformat()}
        if opened is not None:
            start, end = idr_window(opened)
            result.update(
                negotiation_period_end=negotiation_period_end(opened).isoformat(),
                idr_window_start=start.isoformat(),
                idr_window_end=end.isoformat(),
            )
    except OverflowError as error:
        raise CommandError("date out of range: the deadlines would fall after 9999-12-31") from error
    if opened is not None and opened > deadline:
        print(
            f"claimwatch nsa-clock: warning: negotiation opened {opened} after the open-negotiation "
            f"deadline {deadline}",
            file=sys.stderr,
        )
    print(json.dumps(result))
    return 0


def run_nsa_cases(args: argparse.Namespace, stdin: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    today = parse_date("--today", args.today) if args.today else dt.date.today()
    offsets = parse_offsets(args.offsets)
    contexts: dict[str, ClaimContext] = {}
    context_counts: Counter = Counter()
    if args.reference is not None:
        if not args.reference.is_dir():
            raise CommandError(f"--reference: {args.reference} is not a directory")
        claims_file = args.reference / CLAIMS_CONTEXT_FILE
        if claims_file.is_file():
            with claims_file.open(encoding="utf-8-sig") as handle:
                for _, kind, model in read_event_lines(handle, context_counts, sys.stderr, CLAIMS_CONTEXT_FILE):
                    if kind == "claim_context":
                        context_counts["contexts"] += 1
                        contexts[model.partition_key] = model
                    else:
                        context_counts["ignored"] += 1

    counts: Counter = Counter()
    skipped: Counter = Counter()
    remittances: list[tuple[int, RemittanceEvent]] = []
    for number, kind, model in read_event_lines(stdin, counts, sys.stderr):
        if kind == "claim_context":
            counts["contexts"] += 1
            contexts[model.partition_key] = model
        elif kind == "provider_adjustment":
            skipped["provider_adjustment"] += 1
        else:
            counts["remittances"] += 1
            remittances.append((number, model))

    cases: dict[str, Any] = {}
    for number, event in remittances:
        reason = skip_reason(event)
        if reason:
            skipped[reason] += 1
            continue
        classification = classify(event, contexts.get(event.partition_key))
        if classification.category == "not_applicable":
            skipped[f"not_applicable:{classification.reason}"] += 1
            continue
        try:
            case = build_case(event, classification=classification)
        except NoReceivedDateError as error:
            counts["rejected"] += 1
            report(sys.stderr, "no_received_date", str(error), number)
            continue
        existing = cases.get(case.claim_key)
        if existing is not None:
            counts["merged"] += 1
            if case.initial_date >= existing.initial_date:
                continue
        cases[case.claim_key] = case

    current = [refresh(case, today) for case in cases.values()]
    written = 0
    if args.batches:
        for group in batch_candidates(current):
            print(json.dumps(group.model_dump(mode="json")))
            written += 1
    else:
        for case in current:
            record = case.model_dump(mode="json")
            record["due_reminders"] = [
                reminder.model_dump(mode="json") for reminder in due_reminders(case, today, offsets)
            ]
            print(json.dumps(record))
            written += 1

    summary = {
        "lines_in": counts["lines_in"],
        "remittances": counts["remittances"],
        "contexts": counts["contexts"] + context_counts["contexts"],
        "cases": len(current),
        "out": written,
        "merged": counts["merged"],
        "skipped": sum(skipped.values()),
        "skipped_by_reason": dict(sorted(skipped.items())),
        "rejected": counts["rejected"] + context_counts["rejected"],
        "today": today.isoformat(),
    }
    print(json.dumps({"summary": summary}), file=sys.stderr)
    usable = counts["lines_in"] - counts["rejected"]
    return 1 if counts["lines_in"] and usable <= 0 else 0
