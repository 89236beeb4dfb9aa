"""The dead-letter topic: everything claimwatch could not use, with the reason and where it was."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from schemas.common import Model

SCHEMA_VERSION = 1


class DeadLetterLocation(Model):
    file: str | None = None
    interchange_control_number: str | None = None
    transaction_control_number: str | None = None
    segment_index: int | None = Field(None, description="1-based segment position in the file.")
    line: int | None = None
    segment_id: str | None = Field(None, description="e.g. CLP, SVC, CAS.")
    element: str | None = Field(None, description="e.g. CLP04, SVC01-2.")
    topic: str | None = Field(None, description="For stream rejects: topic the message came from.")
    partition: int | None = None
    offset: int | None = None


class DeadLetter(Model):
    schema_version: int = SCHEMA_VERSION
    event_type: str = "dead_letter"
    dead_letter_id: str = Field(description="Deterministic id of the rejected piece.")
    stage: str = Field(description="parse, ingest, underpayment, adequacy, nsa, claims, reference...")
    reason: str = Field(description="Short machine-friendly reason (bounded set, used as a metric label).")
    detail: str = Field(description="Human-readable explanation: what was wrong and what was expected.")
    location: DeadLetterLocation
    excerpt: str | None = Field(
        None, description="The offending segment text when it carries no PHI (never NM1/N3/N4 of patients)."
    )
    occurred_at: dt.datetime | None = None
