"""Event ids are keyed: the claim text they hash holds the patient's name and member id (NM1*QC)."""

from __future__ import annotations

from schemas.dead_letter import DeadLetter
from schemas.remittance import ProviderAdjustmentEvent, RemittanceEvent
from services.ingestion.synthetic import generate_835
from services.ingestion.x12 import parse_bytes


def ids(data: bytes, key: bytes) -> list[str]:
    items = list(parse_bytes(data, "identity.835", key))
    assert any(isinstance(item, RemittanceEvent) for item in items)
    return [
        item.dead_letter_id if isinstance(item, DeadLetter) else item.event_id
        for item in items
        if isinstance(item, RemittanceEvent | ProviderAdjustmentEvent | DeadLetter)
    ]


def test_the_same_content_and_key_give_the_same_ids_and_another_key_other_ids():
    """An unkeyed hash would give the same ids under both keys (and let a holder confirm a guessed patient)."""
    data = generate_835(20, seed=5).encode()
    first, again, other = ids(data, b"key-one"), ids(data, b"key-one"), ids(data, b"key-two")
    assert first == again
    assert len(set(first)) == len(first)
    assert not set(first) & set(other)

