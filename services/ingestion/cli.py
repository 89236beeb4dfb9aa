"""``claimwatch parse FILE...``: 835 files to JSON lines.

stdout: one JSON object per line: a RemittanceEvent per claim (``event_type`` "remittance") and a
ProviderAdjustmentEvent per PLB segment (``event_type`` "provider_adjustment"), in file order.
stderr: dead letters as JSON lines (``event_type`` "dead_letter"), then one line per file:
``{"summary": {...}}`` (the parser's FileSummary: counts, warnings, ``accounted``), or
``{"summary": {"file": ..., "error": ...}}`` when the file could not be opened.
Exit 0 when at least one file was read as X12; 2 when none could be read (all missing or unreadable, or
no ISA/ST segment in any of them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from services.cli import CommandError
from services.ingestion.x12 import DEFAULT_CHUNK_SIZE, parse_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "parse",
        help="parse X12 835 files: events as JSON lines on stdout, dead letters and summaries on stderr",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="835 file(s) to parse")
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        help=f"bytes read at a time (default {DEFAULT_CHUNK_SIZE})",
    )
    parser.set_defaults(handler=_parse)


def _parse(args: argparse.Namespace) -> int:
    from services.settings import get_settings

    key = get_settings().hmac_key.get_secret_value().encode("utf-8")
    readable = parse_files(args.files, key, sys.stdout, sys.stderr, chunk_size=args.chunk_size)
    if not readable:
        raise CommandError("no file could be read as X12 835", exit_code=2)
    return 0


def parse_files(files: list[str], hmac_key: bytes, out: TextIO, err: TextIO, *, chunk_size: int) -> int:
    """Parse ``files`` in order, writing items to ``out``/``err``; returns how many were readable X12."""
    readable = 0
    for name in files:
        path = Path(name)
        run = parse_path(path, hmac_key, chunk_size=chunk_size)
        write_out = out.write
        write_err = err.write
        try:
            for item in run:
                if item.event_type == "dead_letter":
                    write_err(item.model_dump_json() + "\n")
                else:
                    write_out(item.model_dump_json() + "\n")
        except OSError as error:
            # the file could not be opened or read: say so, go on with the next one
            detail = error.strerror or type(error).__name__
            err.write(json.dumps({"summary": {"file": str(path), "error": f"cannot read: {detail}"}}) + "\n")
            continue
        summary = run.summary
        if summary.readable:
            readable += 1
        err.write(json.dumps({"summary": summary.to_dict()}, default=str) + "\n")
        out.flush()
    return readable
