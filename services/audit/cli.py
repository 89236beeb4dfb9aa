"""``claimwatch audit``: the batch report a billing analyst takes into a payer negotiation.

audit --reference DIR [--claims FILE] [--payer ID]... [--from YYYY-MM-DD] [--to YYYY-MM-DD]
      [--date-field service|payment] [--format markdown|json] [--top N] [--group-by group|payer]
      [--ucr-percentile P] [--detail FILE] [--output FILE] [--quiet] PATH...

PATH are 835 files or folders (every non-hidden file below a folder, in name order). The files are parsed
with the project's 835 parser, every remittance is evaluated by the live service's core (``evaluate``), the
events of each claim are netted with ``apply_remittance`` (reversals, corrections, re-sent events counted
once) and the net claims are aggregated per payer group (or payer): claims, lines, billed, allowed, paid,
expected, dollars left on the table (net underpaid), recovered, underpaid and denial rates, allowed as % of
Medicare and of the UCR percentile of the rate terms, the top N codes by dollars left on the table, the
parse accounting of every file and what could not be compared. docs/audit.md has the definitions.

Claim context (place of service, ZIP, product...) comes from DIR/claims.jsonl when present and from
--claims FILE (ClaimContext JSON lines, joined by payee + CLP01; --claims wins on the same key).
--payer keeps the claims of a payer id or payer group (repeatable); --from/--to keep the claims whose
service date (or payment date with --date-field payment) is in the period, both inclusive.
The report goes to stdout (or --output FILE); progress every second and problems on stderr. A file that
cannot be read is reported and the others are processed. No patient data is written: --detail FILE (per
claim JSON lines, for working the claims) carries the provider's claim id (CLP01) and the payer claim id.
Exit 0 when at least one file was read as X12; 2 when none was, or the reference folder is invalid.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from schemas.claims import ClaimContext
from schemas.dead_letter import DeadLetter
from schemas.remittance import RemittanceEvent
from services.audit.report import (
    AuditClaim,
    AuditReport,
    ClaimHistory,
    FileAccounting,
    Filters,
    GroupSummary,
    audit_claim,
    build_report,
    in_period,
    net_claim,
    payer_matches,
    slim,
    ucr_line_amounts,
)
from services.cli import CommandError
from services.ingestion.x12 import parse_path
from services.pricing.benchmark import UCR_PERCENTILES
from services.pricing.engine import claim_facts
from services.pricing.reference import PricingReference, load_pricing_reference
from services.reference.files import ReferenceError, read_folder
from services.underpayment.evaluate import evaluate

CLAIMS_CONTEXT_FILE = "claims.jsonl"
PROGRESS_INTERVAL_S = 1.0


def _date(text: str) -> dt.date:
    try:
        if len(text.strip()) != 10:
            raise ValueError
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {text!r}")
    return value


def _percentile(text: str) -> int:
    try:
        value = int(text.strip().lower().removeprefix("p"))
    except ValueError:
        value = None
    if value not in UCR_PERCENTILES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(map(str, UCR_PERCENTILES))}, got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="Batch report over 835 files: dollars left on the table, % of Medicare and UCR, top codes, by payer.",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="835 files or folders.")
    parser.add_argument("--reference", required=True, type=Path, metavar="DIR", help="Reference folder.")
    parser.add_argument("--claims", type=Path, metavar="FILE", help="ClaimContext JSON lines to join.")
    parser.add_argument(
        "--payer", action="append", default=[], metavar="ID", help="Keep this payer id or payer group (repeatable)."
    )
    parser.add_argument("--from", dest="date_from", type=_date, metavar="YYYY-MM-DD", help="First date (inclusive).")
    parser.add_argument("--to", dest="date_to", type=_date, metavar="YYYY-MM-DD", help="Last date (inclusive).")
    parser.add_argument(
        "--date-field",
        choices=("service", "payment"),
        default="service",
        help="Date that --from/--to apply to: the claim's service date or its payment date (default: service).",
    )
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown", help="Default: markdown.")
    parser.add_argument(
        "--top", type=_positive_int, default=10, metavar="N", help="Codes per payer group (default: 10)."
    )
    parser.add_argument(
        "--group-by", choices=("group", "payer"), default="group", help="Payer group (default) or payer id."
    )
    parser.add_argument(
        "--ucr-percentile",
        type=_percentile,
        metavar="P",
        help="Also compare every priced line with 100%% of UCR pP (default: only the percentiles of the rate terms).",
    )
    parser.add_argument("--detail", type=Path, metavar="FILE", help="Also write one JSON line per claim here.")
    parser.add_argument("--output", type=Path, metavar="FILE", help="Write the report here instead of stdout.")
    parser.add_argument("--quiet", action="store_true", help="No progress on stderr.")
    parser.set_defaults(handler=run_audit)


# ---------------------------------------------------------------------------------------------------
# Inputs


def expand_paths(paths: Iterable[Path]) -> list[tuple[Path, str | None]]:
    """(file, problem) for every PATH: a file, or every non-hidden file below a folder in name order."""
    result: list[tuple[Path, str | None]] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                item
                for item in path.rglob("*")
                if item.is_file() and not any(part.startswith(".") for part in item.relative_to(path).parts)
            )
            if not found:
                result.append((path, "empty folder"))
            result.extend((item, None) for item in found)
        elif path.is_file():
            result.append((path, None))
        else:
            result.append((path, "no such file or folder"))
    return result


def load_reference(folder: Path) -> PricingReference:
    try:
        return load_pricing_reference(read_folder(folder))
    except ReferenceError as error:
        detail = "\n  ".join(str(item) for item in getattr(error, "errors", [error]))
        raise CommandError(f"--reference {folder}: invalid reference data:\n  {detail}") from error
    except OSError as error:
        raise CommandError(f"--reference {folder}: cannot read: {error.strerror or error}") from error


def load_contexts(path: Path, contexts: dict[str, ClaimContext], errors: TextIO) -> Counter:
    """Add the ClaimContext lines of ``path`` to ``contexts``; bad lines are reported on ``errors``."""
    counts: Counter = Counter()
    try:
        handle = path.open(encoding="utf-8-sig")
    except OSError as error:
        raise CommandError(f"cannot read claim context {path}: {error.strerror}") from error
    with handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not text:
                continue
            try:
                context = ClaimContext.model_validate_json(text)
            except ValidationError as error:
                counts["rejected"] += 1
                first = error.errors()[0]
                where = ".".join(str(item) for item in first["loc"]) or "(root)"
                print(
                    f"claimwatch audit: {path.name}:{number}: invalid claim context: {where}: {first['msg']}",
                    file=errors,
                )
                continue
            contexts[context.partition_key] = context
            counts["contexts"] += 1
    return counts


# ---------------------------------------------------------------------------------------------------
# The run: parse, evaluate, keep compact histories


@dataclass
class Progress:
    """Files and claims done, on ``stream`` at most once per ``interval`` seconds."""

    files_total: int
    stream: TextIO | None
    interval: float = PROGRESS_INTERVAL_S
    clock: Callable[[], float] = time.monotonic
    files_done: int = 0
    claims_done: int = 0
    started: float = field(default=0.0)
    next_tick: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()
        self.next_tick = self.started + self.interval

    def tick(self) -> None:
        if self.stream is not None and self.clock() >= self.next_tick:
            self.show()
            self.next_tick = self.clock() + self.interval

    def show(self, final: bool = False) -> None:
        if self.stream is None:
            return
        elapsed = self.clock() - self.started
        label = "done" if final else "progress"
        print(
            f"claimwatch audit: {label}: {self.files_done}/{self.files_total} files, "
            f"{self.claims_done:,} claims, {elapsed:.1f} s",
            file=self.stream,
            flush=True,
        )


@dataclass
class AuditRun:
    histories: dict[str, ClaimHistory] = field(default_factory=dict)
    files: list[FileAccounting] = field(default_factory=list)


def audit_files(
    files: Sequence[tuple[Path, str | None]],
    reference: PricingReference,
    contexts: dict[str, ClaimContext],
    hmac_key: bytes,
    *,
    payers: Sequence[str] = (),
    ucr_percentile: int | None = None,
    errors: TextIO | None = None,
    progress: Progress | None = None,
) -> AuditRun:
    """Parse and evaluate every file; keep, per claim key, its (compact) evaluations in read order."""
    run = AuditRun()
    seen: set[str] = set()
    ucr_cache: dict[int, PricingReference] = {}
    extra = (ucr_percentile,) if ucr_percentile else ()
    sequence = 0
    for path, problem in files:
        if problem is not None:
            run.files.append(FileAccounting(file=str(path), readable=False, error=problem))
            _problem(errors, path, problem)
            if progress:
                progress.files_done += 1
            continue
        parse = parse_path(path, hmac_key)
        counts: Counter = Counter()
        reasons: Counter = Counter()
        error = None
        try:
            for item in parse:
                if isinstance(item, DeadLetter):
                    reasons[item.reason] += 1
                    continue
                if not isinstance(item, RemittanceEvent):
                    continue
                if progress:
                    progress.claims_done += 1
                    progress.tick()
                if item.event_id in seen:
                    counts["duplicate_events"] += 1
                    continue
                seen.add(item.event_id)
                context = contexts.get(item.partition_key)
                if payers:
                    payer_id = claim_facts(item, context).payer_id
                    if not payer_matches(payers, payer_id, reference.payer_group(payer_id)):
                        counts["outside_payer_filter"] += 1
                        continue
                try:
                    evaluation = evaluate(item, context, reference)
                    ucr = ucr_line_amounts(
                        item, context, evaluation, reference, extra_percentiles=extra, cache=ucr_cache
                    )
                except Exception as failure:  # a bug must not lose the rest of the input
                    counts["evaluation_failures"] += 1
                    _problem(
                        errors,
                        path,
                        f"evaluation failed at segment {item.source.segment_index}: {type(failure).__name__}",
                    )
                    continue
                sequence += 1
                history = run.histories.get(evaluation.claim_key)
                if history is None:
                    history = run.histories[evaluation.claim_key] = ClaimHistory()
                history.add(sequence, slim(evaluation), audit_claim(evaluation, ucr))
        except OSError as failure:
            error = f"cannot read: {failure.strerror or type(failure).__name__}"
        except Exception as failure:  # a parser bug: report the file, go on with the next one
            error = f"parser failed: {type(failure).__name__}: {failure}"
        summary = parse.summary
        if error is None and not summary.readable:
            error = "not an X12 file (no ISA and no ST segment)"
        elif error is None and not summary.accounted:
            error = "claims seen != events + claim dead letters"
        if error is not None:
            _problem(errors, path, error)
        run.files.append(
            FileAccounting(
                file=str(path),
                readable=summary.readable,
                error=error,
                claims_seen=summary.claims_seen,
                events=summary.events_emitted,
                claim_dead_letters=summary.claim_dead_letters,
                dead_letters=summary.dead_letters,
                dead_letters_by_reason=dict(sorted(reasons.items())),
                provider_adjustments=summary.provider_adjustments,
                accounted=summary.accounted,
                duplicate_events=counts["duplicate_events"],
                evaluation_failures=counts["evaluation_failures"],
                outside_payer_filter=counts["outside_payer_filter"],
            )
        )
        if progress:
            progress.files_done += 1
            progress.tick()
    return run


def _problem(errors: TextIO | None, path: Path, message: str) -> None:
    if errors is not None:
        print(f"claimwatch audit: {path}: {message}", file=errors, flush=True)


def net_claims(run: AuditRun) -> list[AuditClaim]:
    return [net_claim(history) for _, history in sorted(run.histories.items())]


# ---------------------------------------------------------------------------------------------------
# Rendering


def money(value: Decimal | None) -> str:
    if value is None:
        return "n/a"
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def percent(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value}%"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|")


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines.extend("| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows)
    return lines


def _ucr_cell(group: GroupSummary) -> str:
    if not group.ucr:
        return "n/a"
    return ", ".join(f"p{item.percentile} {percent(item.allowed_pct_of_ucr)}" for item in group.ucr)


def _counts(values: dict[str, int]) -> str:
    return ", ".join(f"{key} {value:,}" for key, value in values.items()) or "none"


SUMMARY_HEADERS = (
    "payer group",
    "payers",
    "claims",
    "lines",
    "underpaid claims",
    "underpaid rate",
    "denial rate",
    "billed",
    "allowed",
    "paid",
    "expected",
    "left on the table",
    "recovered",
    "allowed % of Medicare",
    "allowed % of UCR",
)
CODE_HEADERS = (
    "code",
    "lines",
    "underpaid lines",
    "left on the table",
    "median allowed",
    "median Medicare amount",
    "allowed % of Medicare",
)


def _summary_row(group: GroupSummary, label: str | None = None) -> list[str]:
    return [
        label or group.group,
        ", ".join(group.payer_ids),
        f"{group.claims:,}",
        f"{group.lines:,}",
        f"{group.underpaid_claims:,}",
        percent(group.underpaid_rate_pct),
        percent(group.denial_rate_pct),
        money(group.billed),
        money(group.allowed),
        money(group.paid),
        money(group.expected),
        money(group.left_on_table),
        money(group.recovered),
        percent(group.medicare.allowed_pct_of_medicare),
        _ucr_cell(group),
    ]


def _group_section(group: GroupSummary, title: str, top: int) -> list[str]:
    out = [f"## {title}", ""]
    medicare = group.medicare
    if medicare.lines:
        out.append(
            f"- Allowed as % of Medicare: **{percent(medicare.allowed_pct_of_medicare)}** over {medicare.lines:,} "
            f"priced lines ({money(medicare.allowed)} allowed / {money(medicare.medicare_amount)} Medicare); "
            f"paid {percent(medicare.paid_pct_of_medicare)} ({money(medicare.paid)})."
        )
    else:
        out.append("- Allowed as % of Medicare: n/a (no priced line has a Medicare amount).")
    for item in group.ucr:
        out.append(
            f"- Allowed as % of UCR p{item.percentile}: **{percent(item.allowed_pct_of_ucr)}** over {item.lines:,} "
            f"priced lines ({money(item.allowed)} allowed / {money(item.ucr_amount)} UCR p{item.percentile}; "
            f"{item.lines_from_rate_terms:,} by the rate terms; {item.lines_without_ucr_amount:,} without a UCR row)."
        )
    if group.ucr_note:
        out.append(f"- Allowed as % of UCR: {group.ucr_note}.")
    out.append(
        f"- Claims by status: {_counts(group.claims_by_status)}; recovered by corrections {money(group.recovered)}."
    )
    out += ["", f"Top {top} codes by dollars left on the table:", ""]
    rows = [
        [
            row.code,
            f"{row.lines:,}",
            f"{row.underpaid_lines:,}",
            money(row.left_on_table),
            money(row.median_allowed),
            money(row.median_medicare_amount),
            percent(row.allowed_pct_of_medicare),
        ]
        for row in group.top_codes
    ]
    out += _table(CODE_HEADERS, rows) if rows else ["(no priced line)"]
    out.append("")
    return out


def _file_problem(item: FileAccounting) -> str:
    parts = [item.error] if item.error else []
    if item.dead_letters_by_reason:
        parts.append("dead letters: " + _counts(item.dead_letters_by_reason))
    if item.duplicate_events:
        parts.append(f"{item.duplicate_events:,} events already read (counted once)")
    return "; ".join(parts)


def render_markdown(report: AuditReport) -> str:
    totals = report.totals
    parse = report.parse
    noun = "payer group" if report.group_by == "group" else "payer"
    filters = report.filters
    scope = [
        f"{parse.files:,} file(s) ({parse.files_readable:,} read as X12)",
        f"{totals.claims:,} claims net of reversals and corrections",
    ]
    if report.first_service_date:
        scope.append(f"services {report.first_service_date} to {report.last_service_date}")
    if report.first_payment_date:
        scope.append(f"paid {report.first_payment_date} to {report.last_payment_date}")
    filter_text = []
    if filters.payers:
        filter_text.append("payers " + ", ".join(filters.payers))
    if filters.date_from or filters.date_to:
        filter_text.append(
            f"{filters.date_field} dates {filters.date_from or 'any'} to {filters.date_to or 'any'} (inclusive)"
        )
    out = [
        "# claimwatch audit",
        "",
        "Scope: " + "; ".join(scope) + ".",
        "Filters: " + ("; ".join(filter_text) if filter_text else "none") + ".",
        "",
        f"## Dollars left on the table, by {noun}",
        "",
    ]
    headers = list(SUMMARY_HEADERS)
    headers[0] = noun
    rows = [_summary_row(group) for group in report.groups]
    rows.append(["**" + cell + "**" if cell else cell for cell in _summary_row(totals, "all")])
    out += _table(headers, rows)
    out.append("")
    for group in report.groups:
        payers = ", ".join(group.payer_ids)
        title = group.group if report.group_by == "payer" or payers == group.group else f"{group.group} ({payers})"
        out += _group_section(group, title, report.top)
    out += _group_section(totals, "All payers", report.top)

    nc = report.not_compared
    out += [
        "## Not compared",
        "",
        f"- Claims not comparable, by reason: {_counts(nc.claims_by_reason)}.",
        f"- Lines not comparable, by reason: {_counts(nc.lines_by_reason)}.",
        f"- Claims reversed and not corrected: {nc.reversed_claims:,}; reversals whose original was not in the "
        f"files: {nc.reversal_only_claims:,}.",
        f"- Claims priced without a claim context (no place-of-service ZIP; CLP08 or non-facility): "
        f"{nc.claims_without_context:,}.",
        f"- Remittances that could not be evaluated: {nc.evaluation_failures:,}.",
        f"- Left out by the filters: {nc.outside_payer_filter + parse.outside_payer_filter:,} by --payer "
        f"({parse.outside_payer_filter:,} events before pricing, {nc.outside_payer_filter:,} claims), "
        f"{nc.outside_date_filter:,} claims by --from/--to.",
        "",
        "## Parse accounting",
        "",
    ]
    out += _table(
        (
            "files",
            "read as X12",
            "with problems",
            "claims seen",
            "events",
            "claim dead letters",
            "all dead letters",
            "provider adjustments",
            "duplicate events",
            "claims seen = events + dead letters",
        ),
        [
            [
                f"{parse.files:,}",
                f"{parse.files_readable:,}",
                f"{parse.files_with_errors:,}",
                f"{parse.claims_seen:,}",
                f"{parse.events:,}",
                f"{parse.claim_dead_letters:,}",
                f"{parse.dead_letters:,}",
                f"{parse.provider_adjustments:,}",
                f"{parse.duplicate_events:,}",
                "yes" if parse.accounted else "NO",
            ]
        ],
    )
    out += ["", f"Dead letters by reason: {_counts(parse.dead_letters_by_reason)}."]
    problems = [item for item in report.files if item.error or item.claim_dead_letters or item.duplicate_events]
    if problems:
        out += ["", "Files with problems:", ""]
        out += _table(
            ("file", "problem", "claims seen", "events", "claim dead letters", "duplicate events"),
            [
                [
                    item.file,
                    _file_problem(item),
                    f"{item.claims_seen:,}",
                    f"{item.events:,}",
                    f"{item.claim_dead_letters:,}",
                    f"{item.duplicate_events:,}",
                ]
                for item in problems
            ],
        )
    out += ["", "## Definitions", ""]
    out += [f"- {item}" for item in report.definitions]
    return "\n".join(out) + "\n"


def render_json(report: AuditReport) -> str:
    return report.model_dump_json(indent=2) + "\n"


def claim_detail(claim: AuditClaim) -> dict[str, Any]:
    """One claim of the --detail file (provider and payer claim ids; no patient data)."""

    def amount(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "claim_key": claim.claim_key,
        "payer_id": claim.payer_id,
        "payer_group": claim.payer_group,
        "payer_claim_id": claim.payer_claim_id,
        "patient_control_number": claim.patient_control_number,
        "status": claim.status,
        "reason": claim.reason,
        "service_date": claim.service_date.isoformat() if claim.service_date else None,
        "payment_date": claim.payment_date.isoformat() if claim.payment_date else None,
        "events": claim.events,
        "billed": amount(claim.billed),
        "allowed": amount(claim.allowed),
        "paid": amount(claim.paid),
        "expected": amount(claim.expected),
        "underpaid": amount(claim.underpaid),
        "recovered": amount(claim.recovered),
        "lines": [
            {
                "code": line.code,
                "status": line.status,
                "reason": line.reason,
                "allowed": amount(line.allowed),
                "paid": amount(line.paid),
                "expected": amount(line.expected),
                "medicare_amount": amount(line.medicare),
                "underpaid": amount(line.underpaid),
                "ucr": {f"p{percentile}": amount(value) for percentile, value in line.ucr},
            }
            for line in claim.lines
        ],
    }


# ---------------------------------------------------------------------------------------------------
# The command


def run_audit(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    from services.settings import get_settings

    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    if args.date_from and args.date_to and args.date_from > args.date_to:
        raise CommandError("--from is after --to")
    reference = load_reference(args.reference)
    contexts: dict[str, ClaimContext] = {}
    if (args.reference / CLAIMS_CONTEXT_FILE).is_file():
        load_contexts(args.reference / CLAIMS_CONTEXT_FILE, contexts, stderr)
    if args.claims is not None:
        load_contexts(args.claims, contexts, stderr)
    files = expand_paths(args.paths)
    key = get_settings().hmac_key.get_secret_value().encode("utf-8")
    progress = Progress(files_total=len(files), stream=None if args.quiet else stderr)
    run = audit_files(
        files,
        reference,
        contexts,
        key,
        payers=args.payer,
        ucr_percentile=args.ucr_percentile,
        errors=stderr,
        progress=progress,
    )
    progress.show(final=True)
    if not any(item.readable for item in run.files):
        raise CommandError("no file could be read as X12 835", exit_code=2)
    filters = Filters(
        payers=list(args.payer), date_from=args.date_from, date_to=args.date_to, date_field=args.date_field
    )
    claims = net_claims(run)
    report = build_report(
        claims, run.files, top=args.top, group_by=args.group_by, filters=filters, ucr_percentile=args.ucr_percentile
    )
    text = render_json(report) if args.format == "json" else render_markdown(report)
    if args.detail is not None:
        _write_detail(args.detail, claims, filters)
    if args.output is not None:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as error:
            raise CommandError(f"--output: cannot write {args.output}: {error.strerror}") from error
    else:
        stdout.write(text)
        stdout.flush()
    return 0


def _write_detail(path: Path, claims: Iterable[AuditClaim], filters: Filters) -> None:
    try:
        with path.open("w", encoding="utf-8") as handle:
            for claim in claims:
                if payer_matches(filters.payers, claim.payer_id, claim.payer_group) and in_period(claim, filters):
                    handle.write(json.dumps(claim_detail(claim)) + "\n")
    except OSError as error:
        raise CommandError(f"--detail: cannot write {path}: {error.strerror}") from error
