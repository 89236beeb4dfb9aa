"""``claimwatch ingest``: publish 835 files (and claim context) to Kafka.

Each claim becomes a RemittanceEvent on the remittances topic (keyed payee | CLP01, so it meets its claim
context), each rejected piece a DeadLetter on the dead-letter topic, through one idempotent acks=all
producer. A file whose content was already ingested (same SHA-256) is skipped unless ``--force``: the
ledger is ``<CLAIMWATCH_STATE_DIR>/ingested.json``. ``--watch DIR`` polls a folder and moves each file to
``processed/`` or ``failed/`` beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path

from pydantic import ValidationError

from schemas.claims import ClaimContext
from services.cli import CommandError
from services.ingestion.publish import Publisher
from services.ingestion.x12 import parse_path
from services.settings import Settings, get_settings

X12_SUFFIXES = {".835", ".edi", ".txt", ".x12", ".era"}
PROGRESS_EVERY_S = 1.0


class Ledger:
    """Content hashes of the files already published (so a re-run or a copy is not ingested twice)."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, dict] = json.loads(path.read_text()) if path.exists() else {}

    def seen(self, digest: str) -> dict | None:
        return self.entries.get(digest)

    def record(self, digest: str, file: Path, summary: dict) -> None:
        self.entries[digest] = {"file": file.name, "ingested_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **summary}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.entries, indent=1, sort_keys=True))
        temporary.replace(self.path)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expand(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in X12_SUFFIXES))
        else:
            files.append(path)
    return files


def publish_claims(publisher: Publisher, path: Path) -> Counter:
    """Publish ClaimContext JSON lines; bad lines are reported with their line number and skipped."""
    counts: Counter = Counter()
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                context = ClaimContext.model_validate_json(line)
            except ValidationError as error:
                first = error.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                print(f"{path}:{number}: rejected claim context: {where}: {first['msg']}", file=sys.stderr)
                counts["rejected"] += 1
                continue
            publisher.claim_context(context)
            counts["published"] += 1
    return counts


def ingest_file(publisher: Publisher, path: Path, hmac_key: bytes) -> dict:
    """Parse one file and publish what it holds; returns the parser's summary (+ published counts)."""
    run = parse_path(path, hmac_key)
    published: Counter = Counter()
    last_report = time.monotonic()
    for item in run:
        if item.event_type == "dead_letter":
            publisher.dead_letter(item)
            published["dead_letters"] += 1
        else:
            publisher.remittance(item)
            published[item.event_type] += 1
        if time.monotonic() - last_report >= PROGRESS_EVERY_S:
            last_report = time.monotonic()
            print(f"  {path.name}: {sum(published.values()):,} messages published...", file=sys.stderr)
    publisher.flush()
    summary = run.summary.to_dict()
    summary["published"] = dict(published)
    return summary


def ingest_paths(settings: Settings, paths: list[Path], force: bool, claims: Path | None = None) -> tuple[int, int]:
    """Returns (files read, files unreadable)."""
    ledger = Ledger(settings.state_dir / "ingested.json")
    hmac_key = settings.hmac_key.get_secret_value().encode("utf-8")
    read = unreadable = 0
    with Publisher(settings) as publisher:
        if claims is not None:
            counts = publish_claims(publisher, claims)
            publisher.flush()
            print(
                f"{claims}: {counts['published']} claim contexts published, {counts['rejected']} rejected",
                file=sys.stderr,
            )
        for index, path in enumerate(paths, start=1):
            if not path.is_file():
                print(f"[{index}/{len(paths)}] {path}: no such file", file=sys.stderr)
                unreadable += 1
                continue
            digest = file_digest(path)
            previous = ledger.seen(digest)
            if previous and not force:
                print(
                    f"[{index}/{len(paths)}] {path}: skipped, same content ingested on {previous['ingested_at']} "
                    f"as {previous['file']} (--force to publish again)",
                    file=sys.stderr,
                )
                read += 1
                continue
            summary = ingest_file(publisher, path, hmac_key)
            if not summary.get("readable", summary.get("transactions", 0) > 0):
                unreadable += 1
                print(f"[{index}/{len(paths)}] {path}: not an X12 835 file", file=sys.stderr)
                continue
            read += 1
            ledger.record(digest, path, {k: summary.get(k) for k in ("claims_seen", "events_emitted", "dead_letters")})
            print(
                f"[{index}/{len(paths)}] {path.name}: claims {summary['claims_seen']} = events "
                f"{summary['events_emitted']} + dead letters {summary['claim_dead_letters']}; "
                f"PLB {summary['provider_adjustments']}; warnings {len(summary['warnings'])}",
                file=sys.stderr,
            )
    return read, unreadable


def watch(settings: Settings, folder: Path, force: bool, interval: float = 2.0) -> None:
    processed, failed = folder / "processed", folder / "failed"
    processed.mkdir(parents=True, exist_ok=True)
    failed.mkdir(parents=True, exist_ok=True)
    print(f"watching {folder} (Ctrl-C to stop)", file=sys.stderr)
    while True:
        for path in expand([str(folder)]):
            try:
                read, unreadable = ingest_paths(settings, [path], force)
                target = processed if read and not unreadable else failed
            except Exception as error:
                print(f"{path.name}: failed: {error}", file=sys.stderr)
                target = failed
            path.replace(target / path.name)
        time.sleep(interval)


def _ingest(args: argparse.Namespace) -> int:
    settings = get_settings()
    claims = Path(args.claims) if args.claims else None
    if claims is not None and not claims.is_file():
        raise CommandError(f"--claims {claims}: no such file")
    paths = expand(args.paths)
    if not paths and not args.watch and claims is None:
        raise CommandError("nothing to ingest: give 835 files or folders, --claims FILE or --watch DIR")
    read, _unreadable = ingest_paths(settings, paths, args.force, claims)
    if paths and read == 0:
        raise CommandError(f"none of the {len(paths)} file(s) could be read as X12 835", exit_code=2)
    if args.watch:
        watch(settings, Path(args.watch), args.force)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="publish 835 files (and claim context) to Kafka",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="835 files or folders of them")
    parser.add_argument("--claims", metavar="FILE", help="ClaimContext JSON lines, published before the 835s")
    parser.add_argument(
        "--watch", metavar="DIR", help="poll DIR for new files (moved to processed/ or failed/)"
    )
    parser.add_argument("--force", action="store_true", help="publish files even if already ingested")
    parser.set_defaults(handler=_ingest)
