"""Subcommands that talk to the live service: ``worker`` and ``reference load``."""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from pathlib import Path

from services.cli import CommandError
from services.kafka_admin import create_topics, ensure_internal_topics, first_reachable, producer
from services.reference.checks import reference_subcommands, run_checks
from services.reference.files import ReferenceError, read_folder
from services.settings import get_settings
from services.topics import REFERENCE_NETWORK, REFERENCE_PRICING

log = logging.getLogger(__name__)


def _worker(args: argparse.Namespace) -> int:
    settings = get_settings()
    first_reachable(settings)
    create_topics(settings)
    from faust import Worker

    from services.app import app, load_agents

    load_agents()
    created = ensure_internal_topics(settings, changelog_topics())
    if created:
        log.info("created %d changelog topics: %s", len(created), ", ".join(created))
    worker = Worker(app, loglevel=args.log_level or settings.log_level, override_logging=False)
    print(
        f"claimwatch worker: app {settings.app_id} on {settings.bootstrap_servers}; "
        f"health http://{settings.web_host}:{settings.web_port}/health, "
        f"metrics http://{settings.web_host}:{settings.web_port}/metrics",
        file=sys.stderr,
    )
    worker.execute_from_commandline()
    return 0


def changelog_topics() -> list[tuple[str, int, dict[str, str]]]:
    """(name, partitions, config) of the changelog topic of every table the agents declared."""
    from services.app import app

    settings = get_settings()
    topics = []
    for table in app.tables.values():
        topic = table.changelog_topic
        config = {"cleanup.policy": "compact", **{key: str(value) for key, value in (topic.config or {}).items()}}
        topics.append((topic.get_topic_name(), topic.partitions or settings.partitions, config))
    return topics


def reference_topic_for(path: str) -> str:
    spec = REFERENCE_NETWORK if path.startswith("network/") else REFERENCE_PRICING
    return spec.full_name(get_settings())


def _existing_reference_keys(topic_names: list[str]) -> dict[str, set[str]]:
    """Keys currently alive in the compacted reference topics (to prune files no longer in the folder)."""
    from kafka import KafkaConsumer, TopicPartition

    settings = get_settings()
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=40 * 1024 * 1024,
        fetch_max_bytes=40 * 1024 * 1024,
        consumer_timeout_ms=2000,
        **settings.kafka_python_security(),
    )
    alive: dict[str, set[str]] = {name: set() for name in topic_names}
    try:
        partitions = [
            TopicPartition(name, partition)
            for name in topic_names
            for partition in (consumer.partitions_for_topic(name) or set())
        ]
        if not partitions:
            return alive
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        while any(consumer.position(tp) < offset for tp, offset in end.items()):
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for record in records:
                    key = record.key.decode("utf-8")
                    if record.value is None:
                        alive[tp.topic].discard(key)
                    else:
                        alive[tp.topic].add(key)
    finally:
        consumer.close()
    return alive


def _reference_load(args: argparse.Namespace) -> int:
    settings = get_settings()
    folder = Path(args.directory)
    try:
        files = read_folder(folder)
    except ReferenceError as error:
        raise CommandError(str(error)) from error
    problems = run_checks(files)[1]
    if problems and not args.force:
        for problem in problems:
            print(problem, file=sys.stderr)
        raise CommandError(f"{len(problems)} problem(s) in {folder}; nothing was loaded (use --force to load anyway)")
    create_topics(settings, [REFERENCE_PRICING, REFERENCE_NETWORK])
    topic_names = [REFERENCE_PRICING.full_name(settings), REFERENCE_NETWORK.full_name(settings)]
    kafka = producer(settings)
    total_bytes = 0
    for index, (path, content) in enumerate(sorted(files.items()), start=1):
        digest = hashlib.sha256(content).hexdigest()
        kafka.send(
            reference_topic_for(path), key=path.encode("utf-8"), value=content,
            headers=[("sha256", digest.encode("ascii"))],
        )
        total_bytes += len(content)
        print(f"[{index}/{len(files)}] {path} ({len(content):,} bytes)", file=sys.stderr)
    pruned = 0
    if args.prune:
        for topic_name, keys in _existing_reference_keys(topic_names).items():
            for key in sorted(keys - set(files)):
                kafka.send(topic_name, key=key.encode("utf-8"), value=None)
                pruned += 1
                print(f"removed {key}", file=sys.stderr)
    kafka.flush()
    kafka.close()
    print(f"loaded {len(files)} reference files ({total_bytes:,} bytes) from {folder}; removed {pruned}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    worker = subparsers.add_parser("worker", help="Run a stream-processing worker (Faust) with /health and /metrics.")
    worker.set_defaults(handler=_worker)

    actions = reference_subcommands(subparsers)
    load = actions.add_parser("load", help="Publish a reference folder to the compacted reference topics.")
    load.add_argument("directory", help="Reference folder (see docs/reference-formats.md).")
    load.add_argument("--prune", action="store_true", help="Delete files from the topics that the folder lacks.")
    load.add_argument("--force", action="store_true", help="Load even when the check finds problems.")
    load.set_defaults(handler=_reference_load)
