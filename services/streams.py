"""What every agent does around the pure core: decode with the schema, dead-letter what does not decode,
send JSON, count in and out. Agents stay a few lines long."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import faust
from faust.streams import _current_event
from faust.types import TP
from pydantic import BaseModel, ValidationError

from schemas.dead_letter import DeadLetter, DeadLetterLocation
from services import metrics
from services.app import TOPICS, app, settings

log = logging.getLogger(__name__)
ModelT = TypeVar("ModelT", bound=BaseModel)
MAX_MESSAGE_BYTES = 1_000_000


def count_in(event: faust.EventT) -> None:
    metrics.events_in.labels(topic=metrics.topic_label(event.message.topic)).inc()


def decode(event: faust.EventT, model: type[ModelT], stage: str) -> ModelT | DeadLetter:
    """The message as ``model``, or a DeadLetter saying why not (oversized, not JSON, wrong schema)."""
    value = event.value
    if value is None:
        return dead_letter_for(event, stage, "empty_message", "the message has no value")
    if len(value) > MAX_MESSAGE_BYTES:
        return dead_letter_for(
            event, stage, "oversized", f"{len(value)} bytes exceeds the limit of {MAX_MESSAGE_BYTES}"
        )
    try:
        return model.model_validate_json(value)
    except ValidationError as error:
        first = error.errors()[0]
        reason = "not_json" if first["type"] == "json_invalid" else "schema_violation"
        where = ".".join(str(part) for part in first["loc"])
        return dead_letter_for(
            event, stage, reason, f"{model.__name__}: {where}: {first['msg']} ({error.error_count()} error(s))"
        )


def event_type_of(value: bytes | None) -> str | None:
    """Cheap look at the ``event_type`` of a JSON message without validating it."""
    if not value:
        return None
    try:
        return json.loads(value).get("event_type")
    except (ValueError, AttributeError):
        return None


def dead_letter_for(event: faust.EventT, stage: str, reason: str, detail: str) -> DeadLetter:
    message = event.message
    identity = f"{message.topic}|{message.partition}|{message.offset}|{stage}"
    return DeadLetter(
        dead_letter_id=hashlib.sha256(identity.encode()).hexdigest()[:32],
        stage=stage,
        reason=reason,
        detail=detail,
        location=DeadLetterLocation(topic=message.topic, partition=message.partition, offset=message.offset),
        occurred_at=dt.datetime.now(dt.UTC),
    )


async def send_dead_letter(letter: DeadLetter) -> None:
    metrics.dead_letters.labels(
        stage=metrics.stage_label(letter.stage), reason=metrics.reason_label(letter.reason)
    ).inc()
    log.warning("dead letter %s: %s (%s)", letter.reason, letter.detail, letter.location.model_dump(exclude_none=True))
    await produce(encode("dead-letters", letter.dead_letter_id, letter))


Output = tuple[str, bytes, bytes]
"""A message ready for the producer: topic name, key and value bytes."""


def encode(topic_name: str, key: str, value: BaseModel | dict[str, Any]) -> Output:
    payload = (value.model_dump_json() if isinstance(value, BaseModel) else json.dumps(value)).encode("utf-8")
    return TOPICS[topic_name].get_topic_name(), key.encode("utf-8"), payload


async def produce(output: Output) -> Awaitable[Any]:
    """Hand a message to the producer; returns the future of its delivery (see deliver_outputs).

    The message goes to the app's producer directly (the key and value are bytes already): Faust's
    ``Topic.send`` wraps each message in a pending-message object, a callback and a sensor call on the way
    to the same producer, which cost the live worker about as much as serialising the message."""
    name, key, payload = output
    producer = await app.maybe_start_producer()
    delivery = await producer.send(name, key, payload, partition=None, timestamp=None, headers=None)
    metrics.events_out.labels(topic=metrics.topic_label(name)).inc()
    return delivery


@asynccontextmanager
async def processing(stream: faust.StreamT, event: faust.EventT, stage: str) -> AsyncIterator[None]:
    """Process one event; acknowledge it only when its work is done.

    Faust acknowledges an event in a ``finally`` clause, even when the agent was cancelled in the middle of
    it (a worker stopping or rebalancing), which would commit the offset of unfinished work. Here an
    interrupted event is marked so that Faust's acknowledgement does nothing: its offset is not committed
    and the next owner of the partition processes it again. An event whose handler raised goes to the
    dead-letter topic with the error, then is acknowledged: nothing is dropped silently and one bad event
    does not stop its partition.
    """
    try:
        yield
    except asyncio.CancelledError:
        event.message.acked = True
        raise
    except Exception as error:
        log.exception("%s: processing failed at %s", stage, event.message.tp)
        await send_dead_letter(dead_letter_for(event, stage, "processing_error", f"{type(error).__name__}: {error}"))
    await stream.ack(event)


async def deliver_outputs(deliveries: list[Awaitable[Any]]) -> None:
    """Wait until the broker acknowledged these sends.

    Call it between an event's outputs and the table write that records them as done: the state then never
    says "done" for outputs a crash lost. A crash in between can only repeat outputs, with the same ids.
    """
    await asyncio.gather(*deliveries)


_DELETE = object()


class _Json:
    """A table value written with ``set_json``: serialised once, when the batch is committed, rather than
    at every write (a value read and rewritten by many events of a batch is encoded once)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def encode(self) -> bytes:
        return json.dumps(self.value, sort_keys=True).encode("utf-8")


class Batch:
    """The work of a batch of events, done so that one broker round trip serves the whole batch.

    Handlers queue their outputs with ``send``, read and write tables through ``get`` / ``set`` / ``delete``
    (reads see the batch's earlier writes; a key read from the table is read once per batch, so a value
    ``get`` returns is shared and must not be changed in place: ``get_json`` decodes a new copy) and register
    metric updates with ``after``. ``commit`` sends the outputs, waits until the broker acknowledged every
    one, then applies the table writes, then runs the ``after`` callbacks. A table therefore never records as
    done an output that a crash lost. Outputs leave only at the commit, so a crash while the batch is being
    processed sends nothing of it; only a crash between the outputs' delivery and the changelog writes that
    follow can repeat outputs, with the same ids (the replayed events find the state they found).

    Each event runs in ``event(...)``: when its handler raises, its outputs, table writes and callbacks are
    dropped and it goes to the dead-letter topic with the error; the other events of the batch are unaffected.
    """

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self._writes: dict[tuple[int, Any], tuple[Any, Any, Any]] = {}
        self._callbacks: list[Callable[[], None]] = []
        self._event_writes: dict[tuple[int, Any], tuple[Any, Any, Any]] | None = None
        self._event_callbacks: list[Callable[[], None]] | None = None
        self._events: dict[tuple[int, Any], faust.EventT] = {}
        self._current: faust.EventT | None = None
        self._deferred: dict[Any, tuple[faust.EventT, Callable[[], Awaitable[None]]]] = {}
        self.scratch: dict[Any, Any] = {}
        """What handlers accumulate over the events of the batch for their deferred work."""
        self._outputs: list[Output] = []
        self._event_outputs: list[Output] | None = None
        self._reads: dict[tuple[int, Any], Any] = {}

    def get(self, table: Any, key: Any) -> Any:
        value = self._get(table, key)
        return value.encode() if isinstance(value, _Json) else value

    def _get(self, table: Any, key: Any) -> Any:
        slot = (id(table), key)
        for layer in (self._event_writes, self._writes):
            if layer is not None and slot in layer:
                value = layer[slot][2]
                return None if value is _DELETE else value
        if slot not in self._reads:  # the table does not change before the batch commits
            self._reads[slot] = read_table(table, key)
        return self._reads[slot]

    def set(self, table: Any, key: Any, value: Any) -> None:
        self._layer()[(id(table), key)] = (table, key, value)

    def delete(self, table: Any, key: Any) -> None:
        self._layer()[(id(table), key)] = (table, key, _DELETE)

    @property
    def current_event(self) -> faust.EventT:
        """The event being processed (inside ``event(...)``, deferred work included)."""
        if self._current is None:
            raise RuntimeError("Batch: no event is being processed")
        return self._current

    def _layer(self) -> dict[tuple[int, Any], tuple[Any, Any, Any]]:
        if self._event_writes is None:
            raise RuntimeError("Batch: table writes belong to an event (use `async with batch.event(event)`)")
        return self._event_writes

    def get_json(self, table: Any, key: str) -> Any:
        """The decoded JSON value of ``key``. A value this batch wrote with ``set_json`` is returned as the
        object itself: a caller that changes it must write it back with ``set_json``."""
        value = self._get(table, key.encode("utf-8"))
        if isinstance(value, _Json):
            return value.value
        return json.loads(value) if value else None

    def set_json(self, table: Any, key: str, value: Any) -> None:
        """Store ``value`` as JSON bytes (encoded at commit); an empty value deletes the key."""
        if value:
            self.set(table, key.encode("utf-8"), _Json(value))
        else:
            self.delete(table, key.encode("utf-8"))

    def defer(self, key: Any, event: faust.EventT, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` once per ``key`` when the batch is committed, before its outputs are awaited, as part
        of ``event`` (the latest one that deferred it: its table writes go to that event's partition). For
        work that costs the same for one event as for many, such as recomputing a period's opportunity."""
        self._deferred.pop(key, None)
        self._deferred[key] = (event, work)

    def after(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (a metric update) once the batch is committed."""
        (self._event_callbacks if self._event_callbacks is not None else self._callbacks).append(callback)

    async def send(self, topic_name: str, key: str, value: BaseModel | dict[str, Any]) -> None:
        """Queue an output; it goes to the broker when the batch is committed."""
        (self._event_outputs if self._event_outputs is not None else self._outputs).append(
            encode(topic_name, key, value)
        )

    @asynccontextmanager
    async def event(self, event: faust.EventT) -> AsyncIterator[None]:
        self._event_writes, self._event_callbacks, self._event_outputs, self._current = {}, [], [], event
        try:
            yield
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("%s: processing failed at %s offset %s", self.stage, event.message.tp, event.message.offset)
            await send_dead_letter(
                dead_letter_for(event, self.stage, "processing_error", f"{type(error).__name__}: {error}")
            )
        else:
            self._writes.update(self._event_writes)
            self._events.update(dict.fromkeys(self._event_writes, event))
            self._callbacks.extend(self._event_callbacks)
            self._outputs.extend(self._event_outputs)
        finally:
            self._event_writes, self._event_callbacks, self._event_outputs, self._current = None, None, None, None
        # Let the other agents run between events: a batch of the opportunity tracker (hundreds of events)
        # would otherwise hold the event loop for a second and delay the remittances' alerts behind it.
        await asyncio.sleep(0)

    async def commit(self) -> None:
        while self._deferred:
            key = next(iter(self._deferred))
            event, work = self._deferred.pop(key)
            async with self.event(event):
                await work()
        deliveries = [await produce(output) for output in self._outputs]
        self._outputs.clear()
        # Encoded before waiting for the outputs, so that the changelog follows them with the least delay:
        # a crash after the outputs reached the broker and before the changelog did repeats them on replay.
        changelog = encode_table_writes(
            (self._events[slot], table, key, value) for slot, (table, key, value) in self._writes.items()
        )
        await deliver_outputs(deliveries)
        await apply_table_writes(changelog)
        self._writes.clear()
        self._events.clear()
        self._reads.clear()
        self.scratch.clear()
        for callback in self._callbacks:
            callback()
        self._callbacks.clear()


class DictBatch:
    """Batch's table API (``get`` / ``set`` / ``delete`` / ``get_json`` / ``set_json``, ``scratch``) over a dict,
    without Faust or a broker: to run a handler's table logic in benchmarks and tests. ``shared``: values are
    kept as given, as within one batch; otherwise every value that is not bytes goes through JSON, as across
    batches."""

    def __init__(self, *, shared: bool = False) -> None:
        self.data: dict[tuple[int, Any], Any] = {}
        self.scratch: dict[Any, Any] = {}
        self.shared = shared

    def get(self, table: Any, key: Any) -> Any:
        return self.data.get((id(table), key))

    def set(self, table: Any, key: Any, value: Any) -> None:
        keep = self.shared or isinstance(value, bytes)
        self.data[(id(table), key)] = value if keep else json.loads(json.dumps(value))

    def delete(self, table: Any, key: Any) -> None:
        self.data.pop((id(table), key), None)

    def get_json(self, table: Any, key: str) -> Any:
        value = self.get(table, key.encode("utf-8"))
        return json.loads(value) if value else None

    def set_json(self, table: Any, key: str, value: Any) -> None:
        if value:
            self.set(table, key.encode("utf-8"), json.dumps(value).encode("utf-8"))
        else:
            self.delete(table, key.encode("utf-8"))


def read_table(table: Any, key: Any) -> Any:
    """The stored value of ``key``, None when absent: one store lookup. ``table.get`` (a Faust Table's
    mapping ``__getitem__``) asks the store whether the key exists and then reads it, two RocksDB lookups, and
    returns the table's default (a new empty dict for the windowed table) rather than None."""
    try:
        return table.data[key]
    except KeyError:
        return None


async def write_tables(writes: Iterable[tuple[faust.EventT, Any, Any, Any]]) -> None:
    """Write table entries (event, table, key, value; value ``_DELETE`` deletes): the changelog first, wait
    for the broker, then the local store.

    Faust's ``table[key] = value`` writes the local store at once and the changelog later: a crash in between
    left the local store ahead of the changelog, and as the replayed events found their state in the local
    store they were skipped, so the changelog (what a worker that takes the partition over restores) never
    got it. Here a crash in between leaves the local store behind: the replayed events are processed again
    (same output ids) and written. Each write goes to the changelog partition of its event, as Faust's own
    writes do; the messages go to the producer directly (see ``produce``), and once the broker has them the
    store records the newest changelog offset per partition, which is what Faust's changelog callback does
    (recovery starts reading the changelog after it)."""
    await apply_table_writes(encode_table_writes(writes))


TableWrite = tuple[faust.EventT, Any, Any, Any, str, bytes, bytes | None]
"""event, table, key, value (or ``_DELETE``), changelog topic, key bytes, value bytes (None deletes)."""


def encode_table_writes(writes: Iterable[tuple[faust.EventT, Any, Any, Any]]) -> list[TableWrite]:
    """The changelog messages of table writes (the first half of ``write_tables``); deletes of absent keys
    are dropped."""
    serializers = app.serializers
    encoded: list[TableWrite] = []
    for event, table, key, value in writes:
        if value is _DELETE:
            _current_event.set(weakref.ref(event))
            present = key in table
            _current_event.set(None)
            if not present:
                continue
            payload = None
        else:
            value = value.encode() if isinstance(value, _Json) else value
            payload = serializers.dumps_value(table.value_type, value, serializer=table.value_serializer)
        key_bytes = serializers.dumps_key(table.key_type, key, serializer=table.key_serializer)
        encoded.append((event, table, key, value, table.changelog_topic.get_topic_name(), key_bytes, payload))
    return encoded


async def apply_table_writes(encoded: list[TableWrite]) -> None:
    """Send the changelog messages, wait for the broker, then write the local store (see ``write_tables``)."""
    producer = await app.maybe_start_producer()
    deliveries = [
        await producer.send(topic, key_bytes, payload, partition=event.message.partition, timestamp=None, headers=None)
        for event, _, _, _, topic, key_bytes, payload in encoded
    ]
    newest: dict[tuple[int, TP], tuple[Any, int]] = {}
    for (_, table, *_), metadata in zip(encoded, await asyncio.gather(*deliveries), strict=True):
        tp = TP(metadata.topic, metadata.partition)
        if metadata.offset > newest.get((id(table), tp), (None, -1))[1]:
            newest[(id(table), tp)] = (table, metadata.offset)
    for event, table, key, value, *_ in encoded:
        _current_event.set(weakref.ref(event))
        if value is _DELETE:
            del table.data[key]
        else:
            table.data[key] = value
    _current_event.set(None)
    for (_, tp), (table, offset) in newest.items():
        table.data.set_persisted_offset(tp, offset)


async def batches(stream: faust.StreamT) -> AsyncIterator[Sequence[faust.EventT]]:
    """The stream's events in batches: up to CLAIMWATCH_BATCH_MAX_EVENTS, or what arrived within
    CLAIMWATCH_BATCH_WITHIN_S. Faust acknowledges a batch's events when the loop body that got it ends."""
    async for events in stream.take_events(settings.batch_max_events, within=settings.batch_within_s):
        yield events


@asynccontextmanager
async def processing_batch(events: Sequence[faust.EventT], stage: str) -> AsyncIterator[Batch]:
    """A Batch for ``events``, committed at the end of the block.

    When the block is interrupted (the worker stops or the partitions are revoked), or the broker does not
    acknowledge the outputs, the events are marked so that Faust's acknowledgement does nothing: their
    offsets are not committed and the next owner of the partitions processes them again. A delivery failure
    (the producer gave up after its retries) stops the worker with an error rather than let later offsets
    be committed past the lost outputs; a restarted worker replays them.
    """
    batch = Batch(stage)
    try:
        yield batch
        await batch.commit()
    except asyncio.CancelledError:
        for event in events:
            event.message.acked = True
        raise
    except Exception as error:
        for event in events:
            event.message.acked = True
        log.critical("%s: outputs of a batch of %d events were not delivered: %r", stage, len(events), error)
        await app.crash(error)
        raise
