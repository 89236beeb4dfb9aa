"""One agent reads the remittances topic and runs every area's handler on each event.

A single consumer (rather than one agent per area) prices each claim once and keeps one event's outputs
(evaluation, alert, NSA case, adequacy observation) and its offset together: Faust commits an offset only
when every agent subscribed to the topic has acknowledged it, and the batch (services.streams.Batch)
acknowledges its events only after the broker acknowledged their outputs and the tables were written.
"""

from __future__ import annotations

import datetime as dt

import faust

from schemas.dead_letter import DeadLetter
from schemas.remittance import RemittanceEvent
from services.adequacy.agent import on_remittance as adequacy_on_remittance
from services.app import TOPICS, app
from services.claims.agent import context_for
from services.nsa.agent import on_remittance as nsa_on_remittance
from services.reference.live import snapshot, wait_ready
from services.streams import Batch, batches, count_in, decode, event_type_of, processing_batch, send_dead_letter
from services.underpayment.agent import on_remittance as underpayment_on_remittance
from services.underpayment.evaluate import evaluate

HANDLERS = (underpayment_on_remittance, nsa_on_remittance, adequacy_on_remittance)
STAGE = "remittances"


@app.agent(TOPICS["remittances"])
async def process_remittances(stream: faust.StreamT) -> None:
    await wait_ready()
    async for events in batches(stream):
        async with processing_batch(events, STAGE) as batch:
            for event in events:
                async with batch.event(event):
                    await process_remittance(batch, event)


async def process_remittance(batch: Batch, event: faust.EventT) -> None:
    count_in(event)
    if event_type_of(event.value) == "provider_adjustment":
        return  # PLB: payment-level, not a claim; kept on the topic for reconciliation
    remittance = decode(event, RemittanceEvent, stage=STAGE)
    if isinstance(remittance, DeadLetter):
        await send_dead_letter(remittance)
        return
    context = context_for(remittance.partition_key)
    evaluation = evaluate(remittance, context, snapshot("pricing"), evaluated_at=dt.datetime.now(dt.UTC))
    for handler in HANDLERS:
        await handler(batch, event, remittance, context, evaluation)
