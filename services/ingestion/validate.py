"""``claimwatch validate FILE...``: optional check of 835 files against the X12 005010X221A1 implementation
guide with pyx12 (``pip install 'claimwatch[validate]'``). Off the hot path: ingestion never needs it.

Prints one line per file (valid / invalid with the guide errors pyx12 reported, from its 999 output) and exits
1 when any file is invalid, 2 when pyx12 is missing.
"""

from __future__ import annotations

import argparse
import io
import logging
import re
from pathlib import Path

from services.cli import CommandError

IK3_IK4 = re.compile(r"^(IK3|IK4|AK3|AK4)\*[^~\n]*", re.MULTILINE)


def validate_file(path: Path) -> tuple[bool, list[str]]:
    """(valid, problems): the segment/element errors pyx12 wrote to its acknowledgement (999/997)."""
    import pyx12.params
    import pyx12.x12n_document

    logging.getLogger("pyx12").setLevel(logging.CRITICAL)
    acknowledgement = io.StringIO()
    with path.open(encoding="ascii", errors="replace") as source:
        try:
            valid = bool(pyx12.x12n_document.x12n_document(pyx12.params.params(), source, acknowledgement, None, None))
        except Exception as error:  # pyx12 raises for envelopes it has no map for
            return False, [f"pyx12: {error}"]
    problems = [match.group(0) for match in IK3_IK4.finditer(acknowledgement.getvalue())]
    return valid, problems


def _validate(args: argparse.Namespace) -> int:
    try:
        import pyx12  # noqa: F401
    except ImportError as error:
        raise CommandError("pyx12 is not installed: pip install 'claimwatch[validate]'", exit_code=2) from error
    invalid = 0
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            print(f"{path}: no such file")
            invalid += 1
            continue
        valid, problems = validate_file(path)
        invalid += not valid
        print(f"{path}: {'valid' if valid else 'INVALID'}" + "".join(f"\n  {problem}" for problem in problems))
    return 1 if invalid else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate", help="check 835 files against the X12 implementation guide (needs pyx12)", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.set_defaults(handler=_validate)
