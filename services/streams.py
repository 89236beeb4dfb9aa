"""What every agent does around the pure core: decode with the schema, dead-letter what does not decode,
send JSON, count in and out. Agents stay a few lines long."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import faust
from pydantic import BaseModel, ValidationError

from schemas.dead_letter import DeadLetter, DeadLetterLocation
from services import metrics
from services.app import TOPICS, app

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
    await send("dead-letters", letter.dead_letter_id, letter)


async def send(topic_name: str, key: str, value: BaseModel | dict[str, Any]) -> None:
    payload = (value.model_dump_json() if isinstance(value, BaseModel) else json.dumps(value)).encode("utf-8")
    topic = TOPICS[topic_name]
    await topic.send(key=key.encode("utf-8"), value=payload)
    metrics.events_out.labels(topic=metrics.topic_label(topic.get_topic_name())).inc()


_gate: asyncio.Lock | None = None


def _transaction_gate() -> asyncio.Lock:
    global _gate
    if _gate is None:
        _gate = asyncio.Lock()
    return _gate


@asynccontextmanager
async def processing(stream: faust.StreamT, event: faust.EventT) -> AsyncIterator[None]:
    """Process one event so that a commit never splits it.

    Faust commits offsets on a timer, independently of the agents, and buffers table changelog writes. Here
    the event's work, the flush of its changelog writes and its ack happen under a lock that the commit also
    takes, so a committed offset always covers whole events whose state changes were handed to the broker.
    A crash can then only replay events processed after the last commit; the claim state (processed event
    ids, last alerted shortfall) makes that replay idempotent, and alert ids are deterministic, so a copy of
    an alert that a crash forces out again carries the same alert_id (see docs/delivery.md).
    """
    async with _transaction_gate():
        yield
        await app.producer.buffer.flush()
        await stream.ack(event)


def install_commit_gate() -> None:
    """Make the consumer's commit wait for the event being processed (see ``processing``)."""
    consumer = app.consumer
    if getattr(consumer, "_claimwatch_gated", False):
        return
    commit = consumer.commit

    async def gated_commit(*args: Any, **kwargs: Any) -> bool:
        async with _transaction_gate():
            return await commit(*args, **kwargs)

    consumer.commit = gated_commit
    consumer._claimwatch_gated = True
