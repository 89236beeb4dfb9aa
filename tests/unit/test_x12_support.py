"""Helpers shared by the X12 835 parser tests (and a check that the helpers themselves work)."""

from __future__ import annotations

from pathlib import Path

from schemas.dead_letter import DeadLetter
from schemas.remittance import ProviderAdjustmentEvent, RemittanceEvent
from services.ingestion.x12 import DEAD_LETTER_REASONS, EXCERPT_SEGMENTS, FileSummary, parse_bytes, parse_path

FIXTURES = Path(__file__).parent / "fixtures" / "x12"
KEY = b"test-hmac-key"


def parse_file(path: Path | str, **options) -> tuple[list, FileSummary]:
    run = parse_path(path, KEY, **options)
    items = list(run)
    return items, run.summary


def parse_text(text: str | bytes, name: str = "inline.835", **options) -> tuple[list, FileSummary]:
    data = text.encode() if isinstance(text, str) else text
    run = parse_bytes(data, name, KEY, **options)
    items = list(run)
    return items, run.summary


def fixture(name: str, **options) -> tuple[list, FileSummary]:
    return parse_file(FIXTURES / name, **options)


def events(items: list) -> list[RemittanceEvent]:
    return [item for item in items if isinstance(item, RemittanceEvent)]


def dead_letters(items: list) -> list[DeadLetter]:
    return [item for item in items if isinstance(item, DeadLetter)]


def adjustments_of(items: list) -> list[ProviderAdjustmentEvent]:
    return [item for item in items if isinstance(item, ProviderAdjustmentEvent)]


def check_items(items: list, summary: FileSummary) -> None:
    """Invariants every parse must hold: accounted claims, schema-valid items, bounded reasons, no PHI."""
    assert summary.complete
    assert summary.accounted, summary.to_dict()
    assert summary.events_emitted == len(events(items))
    assert summary.dead_letters == len(dead_letters(items))
    assert summary.provider_adjustments == len(adjustments_of(items))
    for item in items:
        # the hot path builds models without validation: re-validating must give the same object
        assert set(item.__dict__) == set(type(item).model_fields)
        again = type(item).model_validate(item.model_dump())
        assert again == item
        type(item).model_validate_json(item.model_dump_json())
        if isinstance(item, DeadLetter):
            assert item.reason in DEAD_LETTER_REASONS
            assert item.stage == "parse"
            if item.excerpt is not None:
                assert item.excerpt[:3].rstrip("*|") in EXCERPT_SEGMENTS
        if isinstance(item, RemittanceEvent):
            for line in item.service_lines:
                assert set(line.__dict__) == set(type(line).model_fields)


def test_helpers_on_a_fixture():
    items, summary = fixture("multi_gs_st.835")
    check_items(items, summary)
    assert len(events(items)) == 3
