"""Keeps the latest ClaimContext per claim in a table co-partitioned with the remittances."""

from __future__ import annotations

import faust

from schemas.claims import ClaimContext
from schemas.dead_letter import DeadLetter
from services.app import TOPICS, app, bytes_table
from services.streams import count_in, decode, processing, send_dead_letter

claim_contexts = bytes_table("claim-contexts")


def context_for(partition_key: str) -> ClaimContext | None:
    raw = claim_contexts.get(partition_key.encode("utf-8"))
    return ClaimContext.model_validate_json(raw) if raw else None


@app.agent(TOPICS["claims"])
async def keep_claim_context(stream: faust.StreamT) -> None:
    async for event in stream.events():
        async with processing(stream, event, "claims"):
            count_in(event)
            context = decode(event, ClaimContext, stage="claims")
            if isinstance(context, DeadLetter):
                await send_dead_letter(context)
                continue
            claim_contexts[context.partition_key.encode("utf-8")] = context.model_dump_json().encode("utf-8")
