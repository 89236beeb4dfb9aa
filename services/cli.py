"""The ``claimwatch`` console entry point.

Each area of the service contributes its subcommands through a ``register(subparsers)`` function in its
own ``cli`` module, listed in COMMAND_MODULES. A subcommand sets ``handler`` (a function taking the parsed
arguments and returning an exit code) with ``parser.set_defaults(handler=...)``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from services import __version__
from services.logfilter import RepeatedMessageFilter

COMMAND_MODULES: tuple[str, ...] = (
    "services.kafka_admin",
    "services.app_cli",
    "services.nsa.cli",
    "services.adequacy.cli",
    "services.pricing.cli",
    "services.ingestion.cli",
    "services.ingestion.ingest",
    "services.ingestion.validate",
    "services.simulate.cli",
    "services.audit.cli",
)


class CommandError(Exception):
    """An expected failure: printed as one line on stderr, exit code 2 (or ``exit_code``)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="claimwatch",
        description="Monitor out-of-network claims: underpayments, SCA opportunities, No Surprises Act deadlines.",
    )
    parser.add_argument("--version", action="version", version=f"claimwatch {__version__}")
    parser.add_argument("--log-level", default=None, help="debug, info, warning, error (default: settings)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("kafka", "aiokafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    repeats = RepeatedMessageFilter()
    for handler in logging.getLogger().handlers:
        handler.addFilter(repeats)


def main(argv: Sequence[str] | None = None) -> int:
    from services.settings import get_settings

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    configure_logging(args.log_level or get_settings().log_level)
    try:
        return int(args.handler(args) or 0)
    except CommandError as error:
        print(f"claimwatch {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
