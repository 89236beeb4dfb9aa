"""What every agent does around the pure core: decode with the schema, dead-letter what does not decode,
send JSON, count in and out. Agents stay a few lines long."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import faust
from pydantic import BaseModel, ValidationError

from schemas.dead_letter import DeadLetter, DeadLetterLocation
from services import metrics
from services.app import TOPICS

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


async def send(topic_name: str, key: str, value: BaseModel | dict[str, Any]) -> Awaitable[Any]:
    """Send a message; returns the future of its delivery (see deliver_outputs)."""
    payload = (value.model_dump_json() if isinstance(value, BaseModel) else json.dumps(value)).encode("utf-8")
    topic = TOPICS[topic_name]
    delivery = await topic.send(key=key.encode("utf-8"), value=payload)
    metrics.events_out.labels(topic=metrics.topic_label(topic.get_topic_name())).inc()
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
