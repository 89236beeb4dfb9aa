"""Reference data in a running worker: every worker reads the whole compacted reference topics.

Each message of ``reference.pricing`` / ``reference.network`` is one reference file (key = relative path,
value = the file's bytes, a tombstone deletes it). Every worker reads all partitions from the beginning
(no consumer group: like a Faust GlobalTable), and rebuilds immutable snapshots (pricing, network...)
with the same loaders the offline CLI uses, then swaps them in at once. An update therefore takes effect
on every worker without a restart, and an agent never sees half of an update.
"""

from __future__ import annotations

import asyncio
import logging
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
_files: dict[str, bytes] = {}
_state: dict[str, Any] = {"loaded": False, "files": 0, "source": None, "version": 0, "errors": []}
ready = asyncio.Event()
REBUILD_DEBOUNCE_S = 0.5


def register_builder(name: str, builder: Builder) -> None:
    """Agents register how to build their snapshot from the reference files (called at import)."""
    _builders[name] = builder


def snapshot(name: str) -> Any:
    return _snapshots[name]


def reference_state() -> dict[str, Any]:
    return dict(_state)


async def _rebuild(source: str) -> None:
    files = dict(_files)
    if not files and settings.reference_dir:
        files = read_folder(settings.reference_dir)
        source = f"folder {settings.reference_dir}"
    loop = asyncio.get_running_loop()
    built: dict[str, Any] = {}
    errors: list[str] = []
    started = time.monotonic()
    for name, builder in _builders.items():
        try:
            built[name] = await loop.run_in_executor(None, builder, files)
        except Exception as error:  # a bad reference update must not stop the worker
            errors.append(f"{name}: {error}")
            log.error("reference %s could not be built (%s); keeping the previous snapshot", name, error)
    _snapshots.update(built)
    _state.update(
        loaded=True, files=len(files), source=source, version=_state["version"] + 1, errors=errors,
        build_seconds=round(time.monotonic() - started, 3),
    )
    metrics.reference_updated.set(time.time())
    log.info("reference data v%s built from %s (%d files) in %.2fs", _state["version"], source, len(files),
             time.monotonic() - started)
    ready.set()


@app.task
async def read_reference_topics() -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic_names = [REFERENCE_PRICING.full_name(settings), REFERENCE_NETWORK.full_name(settings)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=REFERENCE_MAX_MESSAGE_BYTES + 1024 * 1024,
        fetch_max_bytes=REFERENCE_MAX_MESSAGE_BYTES + 1024 * 1024,
        security_protocol=settings.security_protocol,
        sasl_mechanism=settings.sasl_mechanism or "PLAIN",
        sasl_plain_username=settings.sasl_username,
        sasl_plain_password=settings.sasl_password.get_secret_value() if settings.sasl_password else None,
    )
    await consumer.start()
    try:
        partitions = []
        for name in topic_names:
            found = consumer.partitions_for_topic(name)
            if not found:
                await consumer.force_metadata_update()
                found = consumer.partitions_for_topic(name) or set()
            partitions.extend(TopicPartition(name, partition) for partition in sorted(found))
        counts = {name: 0 for name in topic_names}
        if partitions:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end_offsets = await consumer.end_offsets(partitions)
            while any(await consumer.position(tp) < end for tp, end in end_offsets.items()):
                batch = await consumer.getmany(timeout_ms=500)
                _apply(batch)
        for path in _files:
            counts[topic_names[1] if path.startswith("network/") else topic_names[0]] += 1
        for name, count in counts.items():
            metrics.reference_files.labels(topic=metrics.topic_label(name)).set(count)
        await _rebuild("kafka" if _files else "empty")
        if not partitions:
            return
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            if batch:
                _apply(batch)
                await asyncio.sleep(REBUILD_DEBOUNCE_S)
                _apply(await consumer.getmany(timeout_ms=0))
                await _rebuild("kafka")
    finally:
        await consumer.stop()


def _apply(batch: dict) -> None:
    for records in batch.values():
        for record in records:
            path = record.key.decode("utf-8") if record.key else None
            if not path:
                continue
            if record.value is None:
                _files.pop(path, None)
            else:
                _files[path] = record.value
