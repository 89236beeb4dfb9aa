"""One agent reads the remittances topic and runs every area's handler on each event, in one transaction.

A single consumer (rather than one agent per area) keeps one event's outputs (evaluation, alert, NSA case,
SCA observation) and its offset in the same Kafka transaction: Faust only marks an offset committable when
every agent subscribed to the topic has acknowledged it.
"""

from __future__ import annotations

import faust

from schemas.dead_letter import DeadLetter
from schemas.remittance import RemittanceEvent
from services.adequacy.agent import on_remittance as adequacy_on_remittance
from services.app import TOPICS, app
from services.claims.agent import context_for
from services.nsa.agent import on_remittance as nsa_on_remittance
from services.reference.live import wait_ready
from services.streams import count_in, decode, event_type_of, processing, send_dead_letter
from services.underpayment.agent import on_remittance as underpayment_on_remittance

HANDLERS = (underpayment_on_remittance, nsa_on_remittance, adequacy_on_remittance)


@app.agent(TOPICS["remittances"])
async def process_remittances(stream: faust.StreamT) -> None:
    await wait_ready()
    async for event in stream.events():
        async with processing(stream, event, "remittances"):
            count_in(event)
            if event_type_of(event.value) == "provider_adjustment":
                continue  # PLB: payment-level, not a claim; kept on the topic for reconciliation
            remittance = decode(event, RemittanceEvent, stage="remittances")
            if isinstance(remittance, DeadLetter):
                await send_dead_letter(remittance)
                continue
            context = context_for(remittance.partition_key)
            for handler in HANDLERS:
                await handler(event, remittance, context)
