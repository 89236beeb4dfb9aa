"""``claimwatch reference check DIR``: validate every part of a reference folder and summarise it.

Each area registers a check in :data:`REFERENCE_CHECKS`: a callable taking the folder's
:data:`ReferenceFiles` and returning summary lines; it raises :class:`ReferenceError` (or
``ReferenceValidationError``, which lists several) when its files are invalid. The pricing check is
registered here; another area appends its own, e.g.::

    from services.reference.checks import REFERENCE_CHECKS
    REFERENCE_CHECKS.append(network_check)

Both ``reference check`` and any other ``reference`` action share one ``reference`` sub-command group:
use :func:`reference_subcommands` to add an action to it (e.g. ``reference load``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from services.reference.files import ReferenceError, ReferenceFiles, read_folder

ReferenceCheck = Callable[[ReferenceFiles], list[str]]


def pricing_check(files: ReferenceFiles) -> list[str]:
    """Medicare PFS, payers, fee schedules, SCAs, UCR and payer policies."""
    from services.pricing.reference import load_pricing_reference, pricing_summary
    from services.pricing.validation import ErrorCollector, ReferenceValidationError

    errors = ErrorCollector()
    reference = load_pricing_reference(files, errors=errors)
    if errors.errors:
        raise ReferenceValidationError(errors.errors)
    return pricing_summary(reference) + [f"warning: {warning}" for warning in errors.warnings]


def network_check(files: ReferenceFiles) -> list[str]:
    """Network adequacy: roster, payer directory, adequacy standards, county types, wait standards."""
    from services.adequacy.reference import check_network_reference

    return check_network_reference(files)


REFERENCE_CHECKS: list[ReferenceCheck] = [pricing_check, network_check]


def check_reference(files: ReferenceFiles) -> tuple[list[str], list[ReferenceError]]:
    """Run every registered check; (summary lines, every error found)."""
    summary: list[str] = []
    problems: list[ReferenceError] = []
    for check in REFERENCE_CHECKS:
        try:
            summary.extend(check(files))
        except ReferenceError as error:
            problems.extend(getattr(error, "errors", None) or [error])
    return summary, problems


run_checks = check_reference


def reference_subcommands(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The sub-parsers of ``claimwatch reference``, created once whichever module asks first."""
    parser = subparsers.choices.get("reference")
    if parser is None:
        parser = subparsers.add_parser("reference", help="Reference data: check a folder, load it into Kafka.")
        parser.add_subparsers(dest="reference_command", metavar="ACTION", required=True)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest="reference_command", metavar="ACTION", required=True)


def register_check_command(subparsers: argparse._SubParsersAction) -> None:
    actions = reference_subcommands(subparsers)
    if "check" in actions.choices:
        return
    check = actions.add_parser(
        "check",
        help="Validate a reference folder and print a summary.",
        description="Validate every file of a reference folder (pricing, and whatever other areas registered) "
        "and print a summary: counts per file, years, codes, localities. Exit 0 when valid, 2 with every "
        "problem listed (file:line column: what was expected) on stderr.",
    )
    check.add_argument("dir", type=Path, metavar="DIR", help="Reference folder.")
    check.set_defaults(handler=run_check_command)


def run_check_command(args: argparse.Namespace) -> int:
    try:
        files = read_folder(args.dir)
    except ReferenceError as error:
        print(f"claimwatch reference check: {error}", file=sys.stderr)
        return 2
    summary, problems = check_reference(files)
    print(f"{args.dir}: {len(files)} files")
    for line in summary:
        print(f"  {line}")
    if problems:
        print(f"claimwatch reference check: {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    print("valid")
    return 0
