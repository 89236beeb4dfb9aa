"""``claimwatch price``, ``claimwatch medicare-rate`` and ``claimwatch reference check``.

price --reference DIR [--claims FILE] [--alerts FILE]
    Reads JSON lines on stdin: RemittanceEvent objects (``event_type`` "remittance" or absent) and
    ClaimContext objects (``event_type`` "claim_context"), joined by partition key (payee | CLP01). A
    context must come before its remittance on stdin, or come from ``--claims FILE`` or
    ``DIR/claims.jsonl`` (read first; stdin contexts win on the same key). Writes one ClaimEvaluation
    JSON object per remittance on stdout, in input order. ``--alerts FILE`` also nets the evaluations per
    claim key (reversals, corrections, re-deliveries) and writes the UnderpaymentAlerts to FILE.
    Provider adjustments (PLB) are skipped. Malformed lines go to stderr as JSON objects
    ``{"reason", "detail", "line"}``; the rest is processed. A summary JSON object ends stderr. Exit 0,
    1 when input lines were given and none could be used, 2 when the reference folder is invalid.

medicare-rate CODE [--modifier M] (--zip ZIP | --locality CARRIER-LOCALITY) --date YYYY-MM-DD [--facility]
        [--apm] [--explain] --reference DIR
    Prints the Medicare PFS amount of one unit as a decimal string (``140.72``), OPPS cap applied. Only
    ``DIR/medicare/<year of --date>/`` is read. Exit 0 with the amount; exit 3 with a message on stderr
    when the code has no national amount (status other than A/T/R-with-RVUs: bundled, carrier priced,
    excluded...); exit 2 for an unknown code, ZIP, locality or year, or invalid files. ``--explain``
    prints the formula with every input on stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from schemas.claims import ClaimContext
from schemas.evaluation import ClaimState
from services.cli import CommandError
from services.jsonlines import read_event_lines, report
from services.pricing.medicare import PRICING_MODIFIERS_CMS, load_medicare_folder, medicare_amount
from services.pricing.reference import PricingReference, load_pricing_reference
from services.reference.checks import register_check_command
from services.reference.files import ReferenceError, read_folder
from services.underpayment.evaluate import apply_remittance, evaluate

CLAIMS_CONTEXT_FILE = "claims.jsonl"
EXIT_NOT_PAYABLE = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    price = subparsers.add_parser(
        "price",
        help="Price RemittanceEvent JSON lines on stdin: one claim evaluation per line on stdout.",
        description="Evaluate every remittance on stdin against a reference folder: per line the expected "
        "amount (SCA > contract > payer OON policy), its basis and explanation, the allowed amount, the "
        "variance and a status; one ClaimEvaluation JSON object per remittance on stdout.",
    )
    price.add_argument("--reference", required=True, type=Path, metavar="DIR", help="Reference folder.")
    price.add_argument("--claims", type=Path, metavar="FILE", help="ClaimContext JSON lines to join.")
    price.add_argument(
        "--alerts", type=Path, metavar="FILE", help="Also net claims and write UnderpaymentAlert JSON lines here."
    )
    price.set_defaults(handler=run_price)

    rate = subparsers.add_parser(
        "medicare-rate",
        help="Medicare PFS amount of a code at a ZIP or locality on a date.",
        description="Print the Medicare Physician Fee Schedule amount (one unit, OPPS cap applied) as a "
        "decimal string. Exit 3 when the code has no national amount (status not payable).",
    )
    rate.add_argument("code", metavar="CODE", help="CPT/HCPCS code, e.g. 99214.")
    rate.add_argument("--modifier", metavar="M", help="26, TC or 53 (the PPRRVU rows with a modifier).")
    where = rate.add_mutually_exclusive_group(required=True)
    where.add_argument("--zip", metavar="ZIP", help="ZIP of the place of service (5 digits, ZIP+4 accepted).")
    where.add_argument("--locality", metavar="CARRIER-LOCALITY", help="e.g. 01182-17.")
    rate.add_argument("--date", required=True, metavar="YYYY-MM-DD", help="Date of service (chooses the year).")
    rate.add_argument("--facility", action="store_true", help="Facility rate (default: non-facility).")
    rate.add_argument("--apm", action="store_true", help="Qualifying APM participant conversion factor.")
    rate.add_argument("--explain", action="store_true", help="Print the formula and its inputs on stderr.")
    rate.add_argument("--reference", required=True, type=Path, metavar="DIR", help="Reference folder.")
    rate.set_defaults(handler=run_medicare_rate)

    register_check_command(subparsers)


# ---------------------------------------------------------------------------------------------------
# medicare-rate


def run_medicare_rate(args: argparse.Namespace) -> int:
    try:
        date = dt.date.fromisoformat(args.date.strip())
        if len(args.date.strip()) != 10:
            raise ValueError
    except ValueError:
        raise CommandError(f"--date: {args.date!r} is not a valid date (expected YYYY-MM-DD)") from None
    modifier = (args.modifier or "").strip().upper()
    if modifier and modifier not in PRICING_MODIFIERS_CMS:
        raise CommandError(
            f"--modifier {modifier}: the RVU file has rows for {', '.join(PRICING_MODIFIERS_CMS)} only; payment "
            "rules of other modifiers (50, 80...) are applied by `claimwatch price`"
        )
    try:
        reference = load_medicare_folder(args.reference, years={date.year})
    except ReferenceError as error:
        raise CommandError(f"--reference: {error}") from error
    result = medicare_amount(
        reference,
        args.code,
        modifier,
        date=date,
        facility=args.facility,
        zip_code=args.zip,
        locality=args.locality,
        apm=args.apm,
    )
    if args.explain:
        print(result.formula(), file=sys.stderr)
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
    if result.amount is None:
        if result.reason == "not_payable":
            print(f"claimwatch medicare-rate: {result.describe()}: {result.detail}", file=sys.stderr)
            return EXIT_NOT_PAYABLE
        raise CommandError(f"{result.describe()}: {result.detail}")
    if not args.explain:
        for note in result.notes:
            print(f"claimwatch medicare-rate: note: {note}", file=sys.stderr)
    print(result.amount)
    return 0


# ---------------------------------------------------------------------------------------------------
# price


def _load_contexts(path: Path, contexts: dict[str, ClaimContext], counts: Counter, errors: TextIO) -> None:
    try:
        handle = path.open(encoding="utf-8-sig")
    except OSError as error:
        raise CommandError(f"--claims: cannot read {path}: {error.strerror}") from error
    with handle:
        for _, kind, model in read_event_lines(handle, counts, errors, path.name):
            if kind == "claim_context":
                counts["contexts"] += 1
                contexts[model.partition_key] = model
            else:
                counts["ignored"] += 1


def load_reference_dir(path: Path) -> PricingReference:
    try:
        return load_pricing_reference(read_folder(path))
    except ReferenceError as error:
        detail = "\n  ".join(str(item) for item in getattr(error, "errors", [error]))
        raise CommandError(f"--reference {path}: invalid reference data:\n  {detail}") from error


def run_price(args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    reference = load_reference_dir(args.reference)
    contexts: dict[str, ClaimContext] = {}
    file_counts: Counter = Counter()
    claims_in_dir = args.reference / CLAIMS_CONTEXT_FILE
    if claims_in_dir.is_file():
        _load_contexts(claims_in_dir, contexts, file_counts, sys.stderr)
    if args.claims is not None:
        _load_contexts(args.claims, contexts, file_counts, sys.stderr)

    alerts_handle = None
    if args.alerts is not None:
        try:
            alerts_handle = args.alerts.open("w", encoding="utf-8")
        except OSError as error:
            raise CommandError(f"--alerts: cannot write {args.alerts}: {error.strerror}") from error
    states: dict[str, ClaimState] = {}
    counts: Counter = Counter()
    statuses: Counter = Counter()
    recovered_total = 0
    try:
        for number, kind, model in read_event_lines(stdin, counts, sys.stderr):
            if kind == "claim_context":
                counts["contexts"] += 1
                contexts[model.partition_key] = model
                continue
            if kind == "provider_adjustment":
                counts["skipped_provider_adjustments"] += 1
                continue
            counts["remittances"] += 1
            context = contexts.get(model.partition_key)
            counts["joined"] += context is not None
            try:
                evaluation = evaluate(model, context, reference)
            except Exception as error:  # a bug must not lose the rest of the input
                counts["rejected"] += 1
                report(sys.stderr, "evaluation_failed", f"{type(error).__name__}: {error}", number)
                continue
            stdout.write(evaluation.model_dump_json() + "\n")
            counts["evaluations"] += 1
            statuses[evaluation.status] += 1
            if alerts_handle is not None:
                state, alert, recovered = apply_remittance(states.get(evaluation.claim_key), evaluation)
                states[evaluation.claim_key] = state
                recovered_total += recovered
                if alert is not None:
                    alerts_handle.write(alert.model_dump_json() + "\n")
                    counts["alerts"] += 1
    finally:
        if alerts_handle is not None:
            alerts_handle.close()
    summary: dict[str, Any] = {
        "summary": "price",
        "lines_in": counts["lines_in"],
        "remittances": counts["remittances"],
        "contexts": counts["contexts"] + file_counts["contexts"],
        "joined": counts["joined"],
        "evaluations_out": counts["evaluations"],
        "rejected": counts["rejected"] + file_counts["rejected"],
        "skipped_provider_adjustments": counts["skipped_provider_adjustments"],
        "by_status": dict(sorted(statuses.items())),
    }
    if alerts_handle is not None:
        summary["alerts"] = counts["alerts"]
        summary["recovered"] = str(recovered_total)
    print(json.dumps(summary), file=sys.stderr)
    used = counts["evaluations"] + counts["contexts"] + counts["skipped_provider_adjustments"]
    return 1 if counts["lines_in"] and not used else 0
