"""Broker access for the CLI tools: reachability check, topic creation, producers (kafka-python)."""

from __future__ import annotations

import argparse
import logging
import socket
import time
from collections.abc import Iterable
from typing import Any

from services.cli import CommandError
from services.settings import Settings, get_settings
from services.topics import ALL_TOPICS, TopicSpec

log = logging.getLogger(__name__)


class BrokerUnavailable(CommandError):
    pass


def first_reachable(settings: Settings) -> None:
    """Fail fast, in one line, when no bootstrap server accepts a TCP connection."""
    addresses = [address.strip() for address in settings.bootstrap_servers.split(",") if address.strip()]
    deadline = time.monotonic() + settings.broker_timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        for address in addresses:
            host, _, port = address.rpartition(":")
            try:
                with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
                    return
            except (OSError, ValueError) as error:
                last_error = error
        time.sleep(0.5)
    raise BrokerUnavailable(
        f"Kafka broker not reachable at {settings.bootstrap_servers} after {settings.broker_timeout_s:.0f}s "
        f"({last_error}); start it with 'bash deploy/kafka/kafka.sh start' or set CLAIMWATCH_BOOTSTRAP_SERVERS"
    )


def admin_client(settings: Settings):
    from kafka.admin import KafkaAdminClient

    first_reachable(settings)
    return KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="claimwatch-admin",
        request_timeout_ms=int(settings.broker_timeout_s * 1000),
        **settings.kafka_python_security(),
    )


def producer(settings: Settings, **overrides: object):
    """An idempotent, acks=all kafka-python producer for the CLI tools."""
    from kafka import KafkaProducer

    first_reachable(settings)
    options: dict[str, object] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": "claimwatch-cli",
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "compression_type": "gzip",
        "max_request_size": 32 * 1024 * 1024,
        "request_timeout_ms": int(max(settings.broker_timeout_s, 30) * 1000),
    }
    options.update(settings.kafka_python_security())
    options.update(overrides)
    return KafkaProducer(**options)


def create_topics(settings: Settings, specs: Iterable[TopicSpec] = ALL_TOPICS) -> tuple[list[str], list[str]]:
    """Create the declared topics that do not exist yet. Returns (created, already existing)."""
    client = admin_client(settings)
    try:
        return _create_missing(
            client,
            settings,
            [(spec.full_name(settings), spec.partition_count(settings), spec.topic_config()) for spec in specs],
        )
    finally:
        client.close()


def _create_missing(
    client: Any, settings: Settings, topics: list[tuple[str, int, dict[str, str]]]
) -> tuple[list[str], list[str]]:
    """Create the topics (name, partitions, config) the broker does not have. Returns (created, existing)."""
    from kafka.admin import NewTopic

    existing = set(client.list_topics())
    missing = [(name, partitions, config) for name, partitions, config in topics if name not in existing]
    if missing:
        client.create_topics(
            [
                NewTopic(
                    name=name,
                    num_partitions=partitions,
                    replication_factor=settings.replication_factor,
                    topic_configs=config,
                )
                for name, partitions, config in missing
            ],
            validate_only=False,
        )
    return [name for name, _, _ in missing], [name for name, _, _ in topics if name in existing]


def ensure_internal_topics(
    settings: Settings, topics: list[tuple[str, int, dict[str, str]]], wait_s: float = 60.0
) -> list[str]:
    """Create the worker's internal topics (Faust table changelogs: name, partitions, config) that are missing,
    and wait until the broker's metadata shows every partition of each. Returns the names created.

    Faust creates its changelog topics itself while the worker starts, but the first partition assignment can
    run before the new topic's metadata is there ("Ignoring missing topic"); the first write to the table then
    finds a changelog of 0 partitions and the worker dies (PartitionsMismatch, seen about 1 start in 6 on a
    fresh app id). Creating them before Faust starts removes the race."""
    client = admin_client(settings)
    try:
        created, _ = _create_missing(client, settings, topics)
        wanted = {name: partitions for name, partitions, _ in topics}
        deadline = time.monotonic() + wait_s
        while True:
            metadata = client.describe_topics(list(wanted))
            described = {item.get("name", item.get("topic")): len(item.get("partitions") or ()) for item in metadata}
            short = sorted(name for name, partitions in wanted.items() if described.get(name, 0) < partitions)
            if not short:
                return created
            if time.monotonic() > deadline:
                raise RuntimeError(f"internal topics without all their partitions after {wait_s:.0f} s: {short}")
            time.sleep(0.2)
    finally:
        client.close()


def _topics_create(args: argparse.Namespace) -> int:
    settings = get_settings()
    created, present = create_topics(settings)
    for name in created:
        print(f"created  {name}")
    for name in present:
        print(f"exists   {name}")
    return 0


def _topics_list(args: argparse.Namespace) -> int:
    settings = get_settings()
    for spec in ALL_TOPICS:
        policy = spec.topic_config()["cleanup.policy"]
        print(
            f"{spec.full_name(settings):40s} partitions={spec.partition_count(settings):<3d} {policy:8s} "
            f"key: {spec.key}; {spec.description}"
        )
    return 0


def _tail(args: argparse.Namespace) -> int:
    """Print a topic's messages (JSON values) as lines, from the beginning or only new ones."""
    from kafka import KafkaConsumer, TopicPartition

    settings = get_settings()
    first_reachable(settings)
    name = settings.topic(args.topic)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
        consumer_timeout_ms=None if args.follow else 3000, **settings.kafka_python_security(),
    )
    try:
        partitions = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())]
        if not partitions:
            raise BrokerUnavailable(f"topic {name} does not exist (claimwatch topics list shows the declared ones)")
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        for count, record in enumerate(consumer, start=1):
            print(record.value.decode("utf-8", "replace") if record.value is not None else "null", flush=True)
            if args.limit and count >= args.limit:
                break
    finally:
        consumer.close()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    tail = subparsers.add_parser("tail", help="Print the messages of a declared topic (e.g. alerts.underpayment).")
    tail.add_argument("topic", help="logical topic name, e.g. alerts.underpayment, evaluations, dead-letters")
    tail.add_argument("--limit", type=int, default=0, help="stop after N messages")
    tail.add_argument("--follow", action="store_true", help="keep waiting for new messages")
    tail.set_defaults(handler=_tail)
    topics = subparsers.add_parser("topics", help="Declared Kafka topics: list them or create them.")
    topic_commands = topics.add_subparsers(dest="topics_command", metavar="ACTION", required=True)
    create = topic_commands.add_parser("create", help="Create every declared topic that is missing (idempotent).")
    create.set_defaults(handler=_topics_create)
    listing = topic_commands.add_parser("list", help="Print the declared topics and their settings.")
    listing.set_defaults(handler=_topics_list)
