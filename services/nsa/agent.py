"""The live No Surprises Act path.

1. ``find_nsa_cases`` reads remittances, classifies them with their claim context and forwards every NSA
   case (federal, state or unknown) to ``nsa.case-updates`` keyed by claim key.
2. ``track_nsa_cases`` keeps the case table keyed by claim key. It reads that topic and the user's
   ``cases`` topic (co-partitioned): new cases, user actions, and clock ticks. On a tick it emits the
   reminders that are due, waits until the broker has them, then records them in the cases (changelog first,
   then the local store: ``services.streams.write_tables``), all before the tick's offset can be committed,
   so a restart (even on a new state dir: the table comes back from its changelog) never sends a reminder
   again. Only a crash between the reminders and the case writes can repeat one, with the same reminder_id.
3. Every worker's timer sends one tick to each partition of ``nsa.case-updates`` it owns every
   ``CLAIMWATCH_NSA_TICK_INTERVAL_S`` seconds (0 disables it: tests send their own ticks).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter

import faust

from schemas.claims import ClaimContext
from schemas.dead_letter import DeadLetter
from schemas.evaluation import ClaimEvaluation
from schemas.nsa import CaseAction, ClockTick, NSACase
from schemas.remittance import RemittanceEvent
from services import metrics
from services.app import TOPICS, app, bytes_table, settings
from services.nsa.cases import (
    InvalidActionError,
    active_deadlines,
    apply_action,
    build_case,
    business_days_remaining,
    due_reminders,
    mark_sent,
    refresh,
    skip_reason,
)
from services.nsa.classify import classify
from services.nsa.clock import NoReceivedDateError
from services.streams import (
    Batch,
    count_in,
    dead_letter_for,
    decode,
    deliver_outputs,
    encode,
    event_type_of,
    processing,
    produce,
    read_table,
    send_dead_letter,
    write_tables,
)
from services.topics import CASES, NSA_CASE_UPDATES

log = logging.getLogger(__name__)
OPEN_STATES = {"open", "negotiating"}

nsa_cases = bytes_table("nsa-cases")
case_inputs = app.topic(
    CASES.full_name(settings), NSA_CASE_UPDATES.full_name(settings), key_type=bytes, value_type=bytes
)
_gauge_counts: dict[int, Counter] = {}


def _stored(raw: bytes | None) -> tuple[int, NSACase] | None:
    if not raw:
        return None
    entry = json.loads(raw)
    return entry["partition"], NSACase.model_validate(entry["case"])


async def _store(event: faust.EventT, partition: int, cases: list[NSACase]) -> None:
    """Write cases to the table, changelog first (services.streams.write_tables)."""
    await write_tables(
        (
            event,
            nsa_cases,
            case.claim_key.encode("utf-8"),
            json.dumps({"partition": partition, "case": case.model_dump(mode="json")}).encode("utf-8"),
        )
        for case in cases
    )


async def on_remittance(
    batch: Batch,
    event: faust.EventT,
    remittance: RemittanceEvent,
    context: ClaimContext | None,
    evaluation: ClaimEvaluation,
) -> None:
    if skip_reason(remittance):
        return
    classification = classify(remittance, context)
    metrics.nsa_claims_classified.labels(classification=metrics.classification_label(classification.category)).inc()
    if classification.category == "not_applicable":
        return
    try:
        case = build_case(remittance, context, classification=classification)
    except NoReceivedDateError as error:
        await send_dead_letter(dead_letter_for(event, "nsa", "no_received_date", str(error)))
        return
    await batch.send(NSA_CASE_UPDATES.name, case.claim_key, case)


@app.agent(case_inputs)
async def track_nsa_cases(stream: faust.StreamT) -> None:
    async for event in stream.events():
        async with processing(stream, event, "nsa"):
            count_in(event)
            kind = event_type_of(event.value)
            partition = event.message.partition
            if kind == "nsa_case":
                await _on_case(event, partition)
            elif kind == "nsa_case_action":
                await _on_action(event, partition)
            elif kind == "clock_tick":
                await _on_tick(event, partition)
            else:
                await send_dead_letter(dead_letter_for(event, "nsa", "unknown_event_type", f"event_type {kind!r}"))


async def _on_case(event: faust.EventT, partition: int) -> None:
    case = decode(event, NSACase, stage="nsa")
    if isinstance(case, DeadLetter):
        await send_dead_letter(case)
        return
    existing = _stored(read_table(nsa_cases, case.claim_key.encode("utf-8")))
    if existing and existing[1].initial_date <= case.initial_date:
        return  # a later remittance of the same claim does not restart its clock
    await _store(event, partition, [case])


async def _on_action(event: faust.EventT, partition: int) -> None:
    action = decode(event, CaseAction, stage="nsa")
    if isinstance(action, DeadLetter):
        await send_dead_letter(action)
        return
    existing = _stored(read_table(nsa_cases, action.claim_key.encode("utf-8")))
    if existing is None:
        await send_dead_letter(dead_letter_for(event, "nsa", "unknown_case", "no NSA case with this claim key"))
        return
    try:
        updated = apply_action(existing[1], action)
    except InvalidActionError as error:
        await send_dead_letter(dead_letter_for(event, "nsa", "invalid_action", str(error)))
        return
    await _store(event, partition, [updated])


async def _on_tick(event: faust.EventT, partition: int) -> None:
    tick = decode(event, ClockTick, stage="nsa")
    if isinstance(tick, DeadLetter):
        await send_dead_letter(tick)
        return
    offsets = settings.reminder_offsets()
    counts: Counter = Counter()
    outputs = []  # sent once every case is refreshed, right before the cases that record them (see Batch)
    sent = []
    changed: list[NSACase] = []
    for raw in list(nsa_cases.values()):
        stored = _stored(raw)
        if stored is None or stored[0] != partition:
            continue
        case = refresh(stored[1], tick.today)
        reminders = due_reminders(case, tick.today, offsets)
        outputs.extend(encode("alerts.nsa-deadline", case.claim_key, reminder) for reminder in reminders)
        sent.extend(reminders)
        updated = mark_sent(case, reminders)
        if updated != stored[1]:
            changed.append(updated)
        if updated.state in OPEN_STATES:
            deadlines = active_deadlines(updated)
            if deadlines:
                kind, deadline = min(deadlines, key=lambda item: item[1])
                remaining = business_days_remaining(tick.today, deadline)
                counts[(updated.classification.category, kind, metrics.days_remaining_bucket(remaining))] += 1
    # the reminders, then the cases that record them (changelog first)
    await deliver_outputs([await produce(output) for output in outputs])
    await _store(event, partition, changed)
    for reminder in sent:
        metrics.nsa_reminders.labels(
            deadline=metrics.deadline_label(reminder.deadline_kind),
            days_before=metrics.days_before_label(reminder.offset),
        ).inc()
    _gauge_counts[partition] = counts
    _publish_open_cases()


def _publish_open_cases() -> None:
    assigned = set(_owned_partitions())
    for partition in list(_gauge_counts):
        if assigned and partition not in assigned:
            del _gauge_counts[partition]
    totals: Counter = Counter()
    for counts in _gauge_counts.values():
        totals.update(counts)
    metrics.nsa_cases_open.clear()
    for (category, kind, bucket), count in totals.items():
        metrics.nsa_cases_open.labels(
            classification=metrics.classification_label(category),
            deadline=metrics.deadline_label(kind),
            days_remaining=bucket,
        ).set(count)


def _owned_partitions() -> list[int]:
    """The partitions of ``nsa.case-updates`` this worker consumes (each partition has one owner)."""
    name = NSA_CASE_UPDATES.full_name(settings)
    return sorted({tp.partition for tp in app.consumer.assignment() if tp.topic == name})


if settings.nsa_tick_interval_s > 0:
    # Not on_leader: the app runs with topic_disable_leader, so no worker is ever leader and an on_leader
    # timer never fires. Each worker ticks the partitions it owns instead; a tick that two workers send
    # around a rebalance is harmless (reminders already sent are recorded in the case).
    @app.timer(interval=settings.nsa_tick_interval_s)
    async def tick_nsa_clock() -> None:
        today = dt.date.today()
        for partition in _owned_partitions():
            tick = ClockTick(today=today, partition=partition)
            await TOPICS[NSA_CASE_UPDATES.name].send(
                key=f"tick-{partition}".encode(), value=tick.model_dump_json().encode(), partition=partition
            )
