"""835 ingestion: the streaming X12 835 parser (``x12``), member-id pseudonymisation (``phi``), synthetic
835 files for tests and benchmarks (``synthetic``) and the ``claimwatch parse`` subcommand (``cli``)."""

from services.ingestion.x12 import (
    DEAD_LETTER_REASONS,
    FileSummary,
    ParseRun,
    parse_bytes,
    parse_path,
    parse_stream,
)

__all__ = ["DEAD_LETTER_REASONS", "FileSummary", "ParseRun", "parse_bytes", "parse_path", "parse_stream"]
