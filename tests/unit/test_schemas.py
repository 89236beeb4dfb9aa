from decimal import Decimal

import pytest
from pydantic import ValidationError

from schemas import export
from schemas.remittance import Adjustment, RemittanceEvent


def test_committed_json_schemas_equal_generated():
    wanted = export.expected_files()
    committed = {path.name: path.read_text() for path in export.JSON_DIR.glob("*.schema.json")}
    assert set(committed) == set(wanted), "run `make schemas` and commit schemas/json"
    for name, text in wanted.items():
        assert committed[name] == text, f"{name} is stale: run `make schemas`"


def test_money_is_a_string_in_json_and_floats_are_refused():
    adjustment = Adjustment(group_code="CO", reason_code="45", amount=Decimal("12.30"))
    assert '"amount":"12.30"' in adjustment.model_dump_json()
    with pytest.raises(ValidationError, match="not a float"):
        Adjustment(group_code="CO", reason_code="45", amount=12.3)
    assert Adjustment.model_validate_json('{"group_code":"CO","reason_code":"45","amount":"0.10"}').amount == Decimal(
        "0.10"
    )


def test_claim_key_uses_payer_and_payer_claim_id_not_clp01():
    base = {
        "event_id": "e1",
        "source": {"file": "a.835", "segment_index": 5},
        "payment": {"amount": "10.00"},
        "payer": {"id": "P1"},
        "payee": {"npi": "1234567893"},
        "patient_control_number": "PCN1",
        "status_code": "1",
        "charge_amount": "100",
        "paid_amount": "10",
        "payer_claim_id": "CCN9",
    }
    event = RemittanceEvent.model_validate(base)
    assert event.claim_key == "P1|CCN9"
    assert event.partition_key == "1234567893|PCN1"
    reversal = RemittanceEvent.model_validate({**base, "event_id": "e2", "status_code": "22"})
    assert reversal.is_reversal and reversal.claim_key == event.claim_key
