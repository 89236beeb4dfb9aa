"""Reference data in a running worker: every worker reads the whole compacted reference topics.

Each message of ``reference.pricing`` / ``reference.network`` is one reference file (key = relative path,
value = the file's bytes, a tombstone deletes it). Every worker reads all partitions from the beginning
(no consumer group, like a Faust GlobalTable) in a background thread, and rebuilds immutable snapshots
(pricing, network...) with the same loaders the offline CLI uses, then swaps them in at once. An update
therefore takes effect on every worker without a restart, and an agent never sees half of an update.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from services import metrics
from services.app import app, settings
from services.reference.files import ReferenceFiles, read_folder
from services.topics import REFERENCE_MAX_MESSAGE_BYTES, REFERENCE_NETWORK, REFERENCE_PRICING

log = logging.getLogger(__name__)

Builder = Callable[[ReferenceFiles], Any]
_builders: dict[str, Builder] = {}
_snapshots: dict[str, Any] = {}
_state: dict[str, Any] = {"loaded": False, "files": 0, "source": None, "version": 0, "errors": []}
_ready = threading.Event()
REBUILD_DEBOUNCE_S = 0.5


def register_builder(name: str, builder: Builder) -> None:
    """Agents register how to build their snapshot from the reference files (called at import)."""
    _builders[name] = builder


def snapshot(name: str) -> Any:
    return _snapshots.get(name)


def reference_state() -> dict[str, Any]:
    return dict(_state)


async def wait_ready() -> None:
    """Wait (without blocking the event loop) until the first reference snapshot is built."""
    while not _ready.is_set():
        await asyncio.sleep(0.05)


def rebuild(files: dict[str, bytes], source: str) -> None:
    if not files and settings.reference_dir:
        files = read_folder(settings.reference_dir)
        source = f"folder {settings.reference_dir}"
    started = time.monotonic()
    errors: list[str] = []
    built: dict[str, Any] = {}
    for name, builder in _builders.items():
        try:
            built[name] = builder(files)
        except Exception as error:  # a bad reference update must not stop the worker
            errors.append(f"{name}: {error}")
            log.error("reference %s could not be built (%s); keeping the previous snapshot", name, error)
    _snapshots.update(built)
    elapsed = time.monotonic() - started
    _state.update(
        loaded=True,
        files=len(files),
        source=source,
        version=_state["version"] + 1,
        errors=errors,
        build_seconds=round(elapsed, 3),
    )
    metrics.reference_updated.set(time.time())
    for spec in (REFERENCE_PRICING, REFERENCE_NETWORK):
        count = sum(1 for path in files if (spec is REFERENCE_NETWORK) == path.startswith("network/"))
        metrics.reference_files.labels(topic=metrics.topic_label(spec.full_name(settings))).set(count)
    log.info("reference data v%s built from %s (%d files) in %.2fs", _state["version"], source, len(files), elapsed)
    _ready.set()


def _read_forever() -> None:
    from kafka import KafkaConsumer, TopicPartition

    files: dict[str, bytes] = {}
    topic_names = [REFERENCE_PRICING.full_name(settings), REFERENCE_NETWORK.full_name(settings)]
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=REFERENCE_MAX_MESSAGE_BYTES + 1024 * 1024,
        fetch_max_bytes=REFERENCE_MAX_MESSAGE_BYTES + 1024 * 1024,
        **settings.kafka_python_security(),
    )
    partitions = [
        TopicPartition(name, partition)
        for name in topic_names
        for partition in sorted(consumer.partitions_for_topic(name) or ())
    ]
    if not partitions:
        rebuild(files, "empty")
        return
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end_offsets = consumer.end_offsets(partitions)
    while any(consumer.position(tp) < end for tp, end in end_offsets.items()):
        _apply(consumer.poll(timeout_ms=500), files)
    rebuild(files, "kafka" if files else "empty")
    while True:
        batch = consumer.poll(timeout_ms=1000)
        if batch:
            _apply(batch, files)
            time.sleep(REBUILD_DEBOUNCE_S)
            _apply(consumer.poll(timeout_ms=0), files)
            rebuild(dict(files), "kafka")


def _apply(batch: dict, files: dict[str, bytes]) -> None:
    for records in batch.values():
        for record in records:
            path = record.key.decode("utf-8") if record.key else None
            if not path:
                continue
            if record.value is None:
                files.pop(path, None)
            else:
                files[path] = record.value


def _run_reader() -> None:
    while True:
        try:
            _read_forever()
            return
        except Exception:  # keep the worker alive; retry after a pause (broker restart, etc.)
            log.exception("reference reader failed; retrying in 5s")
            time.sleep(5)


@app.task
async def start_reference_reader() -> None:
    threading.Thread(target=_run_reader, name="reference-reader", daemon=True).start()
