"""Publishing to Kafka from the CLI tools (ingest, simulate): one idempotent, acks=all producer, keyed so that a
remittance and its claim context land on the same partition, with counts of what was sent."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from types import TracebackType

from pydantic import BaseModel

from schemas.claims import ClaimContext
from schemas.dead_letter import DeadLetter
from schemas.remittance import ProviderAdjustmentEvent, RemittanceEvent, partition_key
from services.kafka_admin import producer
from services.settings import Settings
from services.topics import CLAIMS, DEAD_LETTERS, REMITTANCES


class Publisher:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._producer = producer(settings)
        self.sent: Counter[str] = Counter()
        self._failures: list[BaseException] = []

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _send(self, topic: str, key: str, model: BaseModel) -> None:
        future = self._producer.send(
            self.settings.topic(topic), key=key.encode("utf-8"), value=model.model_dump_json().encode("utf-8")
        )
        future.add_errback(self._failures.append)
        self.sent[topic] += 1

    def remittance(self, event: RemittanceEvent | ProviderAdjustmentEvent, stamp: bool = True) -> None:
        """Publish an 835 event; ``ingested_at`` is stamped now (it starts the latency clock)."""
        if stamp:
            event = event.model_copy(update={"ingested_at": dt.datetime.now(dt.UTC)})
        if isinstance(event, RemittanceEvent):
            key = event.partition_key
        else:
            key = partition_key(event.payee.npi or event.payee.tax_id, f"PLB:{event.provider_id}")
        self._send(REMITTANCES.name, key, event)

    def claim_context(self, context: ClaimContext) -> None:
        self._send(CLAIMS.name, context.partition_key, context)

    def dead_letter(self, letter: DeadLetter) -> None:
        self._send(DEAD_LETTERS.name, letter.dead_letter_id, letter)

    def flush(self) -> None:
        """Wait until every message is acknowledged; raise the first delivery failure."""
        self._producer.flush()
        if self._failures:
            raise RuntimeError(f"{len(self._failures)} message(s) were not delivered: {self._failures[0]}")

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._producer.close()
