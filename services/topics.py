"""Every Kafka topic of claimwatch, declared once: name, key, value schema, partitions, cleanup policy.

Names here are logical; the broker name is ``settings.topic_prefix + name``. Value schemas are named
by import path so that this module stays importable before every schema module exists.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from services.settings import Settings

REFERENCE_MAX_MESSAGE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    value_schemas: tuple[str, ...]
    description: str
    compacted: bool = False
    partitions: int | None = None
    """Fixed partition count; None means settings.partitions."""
    config: dict[str, str] = field(default_factory=dict)

    def full_name(self, settings: Settings) -> str:
        return settings.topic(self.name)

    def partition_count(self, settings: Settings) -> int:
        return self.partitions or settings.partitions

    def topic_config(self) -> dict[str, str]:
        config = {"cleanup.policy": "compact" if self.compacted else "delete"}
        config.update(self.config)
        return config

    def value_models(self) -> list[type]:
        models = []
        for path in self.value_schemas:
            module_name, _, attribute = path.partition(":")
            models.append(getattr(importlib.import_module(module_name), attribute))
        return models


REMITTANCES = TopicSpec(
    name="remittances",
    key="payee id | CLP01 (co-partitioned with claims)",
    value_schemas=("schemas.remittance:RemittanceEvent", "schemas.remittance:ProviderAdjustmentEvent"),
    description="One event per 835 claim payment (CLP loop) and per PLB segment.",
)
CLAIMS = TopicSpec(
    name="claims",
    key="payee id | CLP01 (co-partitioned with remittances)",
    value_schemas=("schemas.claims:ClaimContext",),
    description="Submitted-claim facts (place of service ZIP, specialty, patient ZIP, authorization).",
    compacted=True,
)
CASES = TopicSpec(
    name="cases",
    key="claim key (payer | CLP07)",
    value_schemas=("schemas.nsa:CaseAction",),
    description="User actions on No Surprises Act cases (negotiation opened, IDR initiated, resolved...).",
)
NSA_CASE_UPDATES = TopicSpec(
    name="nsa.case-updates",
    key="claim key (payer | CLP07), co-partitioned with cases",
    value_schemas=("schemas.nsa:NSACase", "schemas.nsa:CaseAction", "schemas.nsa:ClockTick"),
    description="Internal: NSA cases found in remittances and clock ticks, re-keyed by claim for the case table.",
)
ADEQUACY_OBSERVATIONS = TopicSpec(
    name="adequacy.observations",
    key="payer | specialty | region (claims); value | period start (evaluated lines)",
    value_schemas=("schemas.adequacy:AdequacyObservation", "schemas.adequacy:ValueObservation"),
    description="Internal: assessable claims and evaluated lines, re-keyed for the opportunity tracker's tables.",
)
REFERENCE_PRICING = TopicSpec(
    name="reference.pricing",
    key="relative path of the reference file",
    value_schemas=(),
    description="Raw bytes of pricing reference files (Medicare PFS, fee schedules, SCAs, UCR, payer policies).",
    compacted=True,
    partitions=1,
    config={"max.message.bytes": str(REFERENCE_MAX_MESSAGE_BYTES)},
)
REFERENCE_NETWORK = TopicSpec(
    name="reference.network",
    key="relative path of the reference file",
    value_schemas=(),
    description="Raw bytes of network reference files (roster, payer directory, adequacy standards, county types).",
    compacted=True,
    partitions=1,
    config={"max.message.bytes": str(REFERENCE_MAX_MESSAGE_BYTES)},
)
EVALUATIONS = TopicSpec(
    name="evaluations",
    key="claim key (payer | CLP07)",
    value_schemas=("schemas.evaluation:ClaimEvaluation",),
    description="Every claim evaluation: expected vs allowed per line, basis, explanation, status.",
)
ALERTS_UNDERPAYMENT = TopicSpec(
    name="alerts.underpayment",
    key="claim key (payer | CLP07)",
    value_schemas=("schemas.evaluation:UnderpaymentAlert",),
    description="Claim-level underpayment alerts (net of reversals and corrections).",
)
ALERTS_SCA = TopicSpec(
    name="alerts.sca-opportunity",
    key="payer | specialty | region | rule",
    value_schemas=("schemas.adequacy:SCAOpportunity",),
    description="Single-case agreement / gap exception opportunities with their evidence.",
)
ALERTS_NSA = TopicSpec(
    name="alerts.nsa-deadline",
    key="claim key (payer | CLP07)",
    value_schemas=("schemas.nsa:NSAReminder",),
    description="No Surprises Act deadline reminders (open negotiation, IDR window).",
)
DEAD_LETTERS = TopicSpec(
    name="dead-letters",
    key="dead letter id",
    value_schemas=("schemas.dead_letter:DeadLetter",),
    description="Every rejected input with its reason and location; nothing is dropped silently.",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    REMITTANCES,
    CLAIMS,
    CASES,
    NSA_CASE_UPDATES,
    ADEQUACY_OBSERVATIONS,
    REFERENCE_PRICING,
    REFERENCE_NETWORK,
    EVALUATIONS,
    ALERTS_UNDERPAYMENT,
    ALERTS_SCA,
    ALERTS_NSA,
    DEAD_LETTERS,
)


def by_name(name: str) -> TopicSpec:
    for spec in ALL_TOPICS:
        if spec.name == name:
            return spec
    raise KeyError(f"no topic named {name!r}; known: {[spec.name for spec in ALL_TOPICS]}")
