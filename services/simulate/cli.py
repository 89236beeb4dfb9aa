"""``claimwatch simulate``: a realistic, deterministic demo group (files, or a live stream to Kafka).

simulate --out DIR [--seed N] [--claims N] [--start YYYY-MM-DD] [--weeks N] [--no-verify]
    Writes DIR/reference/ (pricing and network reference files: the demo Medicare 2025 subset plus the
    generated payers, contracts, SCAs, synthetic UCR, payer policies, roster, directory, county types),
    DIR/claims.jsonl (one ClaimContext per claim), DIR/remittances/*.835 (one file per payer and payment
    week, one ST per payee state and payment run) and DIR/manifest.json (counts and every planted pattern
    with the claim keys, payers and regions involved). Then checks the folder with the project's own
    ``reference check`` and 835 parser (skip with --no-verify). Exit 0; 1 when the check finds a problem.

simulate --rate N --duration S [--seed N] [--start ...] [--weeks N] [--context-lead S]
         [--out DIR [--no-load-reference]]
    Publishes the same world to Kafka at N claims per second for S seconds (N x S claims, at least 200
    generated): each claim's ClaimContext (--context-lead seconds of claims ahead, 2 by default), then
    the RemittanceEvents (and PLB events) that the project's parser produces from the generated 835 text.
    The reference data must already be loaded (``claimwatch reference load DIR/reference``); with --out
    DIR the folder is written first and its reference is loaded before streaming. Progress every second
    on stderr, a JSON summary on stdout.

Same seed and options, same bytes. docs/simulate.md describes the world and the planted patterns.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

from services.cli import CommandError
from services.simulate.generate import (
    DEFAULT_CLAIMS,
    DEFAULT_SEED,
    DEFAULT_START,
    DEFAULT_WEEKS,
    MIN_CLAIMS,
    Simulation,
    verify_output,
    write_simulation,
)
from services.simulate.live import DEFAULT_CONTEXT_LEAD_S


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)  # float ok: a rate in claims per second
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="Generate a realistic demo group: reference data, claim context and 835 files, or a live stream.",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, metavar="DIR", help="Write the folder here (created if needed).")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="Random seed (default: %(default)s).")
    parser.add_argument(
        "--claims",
        type=int,
        default=None,
        metavar="N",
        help=f"Claims to generate (default: {DEFAULT_CLAIMS}; at least {MIN_CLAIMS}; live mode: rate x duration).",
    )
    parser.add_argument(
        "--start",
        type=_date,
        default=DEFAULT_START,
        metavar="YYYY-MM-DD",
        help="First date of service (default: %(default)s; keep service dates in a year with Medicare files).",
    )
    parser.add_argument(
        "--weeks",
        type=int,
        default=DEFAULT_WEEKS,
        metavar="N",
        help="Payment weeks, 4 to 12 (default: %(default)s; the first starts 3 weeks after --start).",
    )
    parser.add_argument("--rate", type=_positive_float, metavar="N", help="Live mode: claims per second.")
    parser.add_argument("--duration", type=_positive_float, metavar="S", help="Live mode: seconds to stream.")
    parser.add_argument(
        "--context-lead",
        type=float,
        default=DEFAULT_CONTEXT_LEAD_S,
        metavar="S",
        help="Live mode: publish claim contexts this many seconds of claims ahead of their remittances "
        "(default: %(default)s; 0 = right before).",
    )
    parser.add_argument(
        "--no-verify", action="store_true", help="Do not check the written folder with reference check and the parser."
    )
    parser.add_argument(
        "--no-load-reference",
        action="store_true",
        help="Live mode with --out: do not load DIR/reference into the reference topics before streaming.",
    )
    parser.set_defaults(handler=run_simulate)


def _hmac_key() -> bytes:
    from services.settings import get_settings

    return get_settings().hmac_key.get_secret_value().encode("utf-8")


def run_simulate(args: argparse.Namespace) -> int:
    live = args.rate is not None or args.duration is not None
    if live and (args.rate is None or args.duration is None):
        raise CommandError("--rate and --duration go together (claims per second, seconds)")
    if not live and args.out is None:
        raise CommandError("say where to write (--out DIR) or stream live (--rate N --duration S)")
    if live and args.claims is not None:
        raise CommandError("in live mode the number of claims is rate x duration; drop --claims")
    if not 4 <= args.weeks <= 12:
        raise CommandError("--weeks must be between 4 and 12")
    claims = args.claims if args.claims is not None else DEFAULT_CLAIMS
    if live:
        wanted = max(1, round(args.rate * args.duration))
        claims = max(wanted, MIN_CLAIMS)
    elif claims < MIN_CLAIMS:
        raise CommandError(f"--claims must be at least {MIN_CLAIMS} (room for every planted pattern)")
    key = _hmac_key()
    status = 0
    if args.out is not None:
        status = _write(args, claims, key)
        if status and live:
            raise CommandError("the written folder failed its check; not streaming")
    if live:
        return _stream(args, claims, wanted, key)
    return status


def _write(args: argparse.Namespace, claims: int, key: bytes) -> int:
    started = time.monotonic()
    try:
        result = write_simulation(
            args.out, seed=args.seed, claims=claims, start=args.start, weeks=args.weeks, hmac_key=key
        )
    except ValueError as error:
        raise CommandError(str(error)) from error
    elapsed = time.monotonic() - started
    manifest = result.manifest
    counts = manifest["counts"]
    spike = manifest["patterns"]["underpayment"]["spike"]
    out = args.out
    print(
        f"claimwatch simulate: seed {manifest['seed']}, {counts['claims']} claims, {counts['remittance_claims']} "
        f"remittance claims in {counts['files']} files ({counts['transactions']} transactions), payment weeks "
        f"{manifest['first_payment_week']}..{manifest['last_payment_week']}, service dates "
        f"{manifest['service_dates'][0]}..{manifest['service_dates'][1]} ({elapsed:.1f}s)"
    )
    reference_count = sum(1 for path in (out / "reference").rglob("*") if path.is_file())
    print(f"  {out / 'reference'}/  pricing + network reference ({reference_count} files)")
    print(f"  {out / 'claims.jsonl'}  {counts['claims']} ClaimContext lines")
    print(f"  {out / 'remittances'}/  {counts['files']} .835 files")
    print(f"  {out / 'manifest.json'}  what was planted")
    patterns = manifest["patterns"]
    print(
        f"planted: underpayment spike {spike['payer_group']} ({spike['underpaid_claims']} underpaid claims, "
        f"${spike['shortfall']} short, week of {spike['week_start']}); {patterns['reversals']['count']} reversals "
        f"+ corrections ({patterns['reversals']['recoveries']} recoveries); {patterns['secondary']['count']} "
        f"secondary payer claims; {len(patterns['network_gaps'])} network gaps; "
        f"{patterns['nsa_emergency']['count']} NSA emergency claims; "
        f"{len(manifest['expected_opportunities'])} expected SCA opportunities"
    )
    status = 0
    if not args.no_verify:
        check = verify_output(out, key)
        if check["reference_problems"]:
            status = 1
            print(f"check: reference folder INVALID: {len(check['reference_problems'])} problem(s)", file=sys.stderr)
            for problem in check["reference_problems"]:
                print(f"  {problem}", file=sys.stderr)
        else:
            print("check: reference folder valid (claimwatch reference check)")
        parsed = check["parser"]
        if parsed is None:
            print("check: 835 parser not available; files not parsed")
        else:
            bad = parsed["dead_letters"] or parsed["balance_issues"] or parsed["unbalanced_transactions"]
            status = status or (1 if bad else 0)
            print(
                f"check: 835 files parsed: {parsed['remittance_events']} remittance events, "
                f"{parsed['provider_adjustments']} provider adjustments, {parsed['dead_letters']} dead letters, "
                f"{parsed['balance_issues']} balance issues, {parsed['unbalanced_transactions']} unbalanced "
                "transactions",
                file=sys.stderr if bad else sys.stdout,
            )
    print(
        f"next: claimwatch reference load {out / 'reference'} && "
        f"claimwatch ingest --claims {out / 'claims.jsonl'} {out / 'remittances'}"
    )
    return status


def _stream(args: argparse.Namespace, claims: int, wanted: int, key: bytes) -> int:
    from services.ingestion.publish import Publisher
    from services.kafka_admin import create_topics
    from services.settings import get_settings
    from services.simulate.live import stream
    from services.topics import CLAIMS, DEAD_LETTERS, REMITTANCES

    settings = get_settings()
    if args.out is not None and not args.no_load_reference:
        from services.app_cli import _reference_load

        _reference_load(argparse.Namespace(directory=str(args.out / "reference"), prune=False, force=False))
    elif args.out is None:
        print(
            "claimwatch simulate: streaming; the workers price against the reference data already loaded "
            "(claimwatch reference load DIR/reference, e.g. from claimwatch simulate --out DIR)",
            file=sys.stderr,
        )
    if wanted < claims:
        print(
            f"claimwatch simulate: {wanted} claims requested; the world has {claims} (the minimum): the stream "
            "stops after the first ones, before the last weeks' patterns (the underpayment spike)",
            file=sys.stderr,
        )
    create_topics(settings, [CLAIMS, REMITTANCES, DEAD_LETTERS])
    simulation = Simulation(seed=args.seed, claims=claims, start=args.start, weeks=args.weeks, hmac_key=key)
    publisher = Publisher(settings)
    try:
        stats = stream(
            simulation,
            publisher,
            rate=args.rate,
            hmac_key=key,
            max_claims=wanted,
            context_lead_s=max(0.0, args.context_lead),
        )
    except KeyboardInterrupt:
        print("claimwatch simulate: interrupted; flushing what was sent", file=sys.stderr)
        publisher.close()
        return 130
    publisher.close()
    summary = stats.to_dict() | {
        "seed": args.seed,
        "requested_claims": wanted,
        "topics": {settings.topic(name): count for name, count in sorted(publisher.sent.items())},
    }
    print(json.dumps(summary, sort_keys=True))
    return 1 if stats.dead_letters or stats.balance_issues else 0
