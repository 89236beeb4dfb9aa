"""Claim state: reversals, corrections, re-delivery, recoveries and the alert rule."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from schemas.evaluation import ClaimState, UnderpaymentAlert
from services.underpayment.evaluate import alert_id_for, apply_remittance, evaluate
from tests.unit.test_pricing_support import context, event, line, policy, reference

D = Decimal
FEES = "payer_id,code,rate_type,rate,effective_from\nACME1,99214,fixed,100.00,2024-01-01\n"
REF = None


def ref():
    global REF
    if REF is None:
        REF = reference(payer_policies=policy("100% medicare", "1.00", "0"), fee_schedules=FEES)
    return REF


def evaluation(event_id, paid, *, status="1", sign=1, pr="0", when=dt.datetime(2025, 4, 1, tzinfo=dt.UTC)):
    remit = event([line(paid=paid, pr=pr)], event_id=event_id, status=status, sign=sign)
    return evaluate(remit, context(), ref(), evaluated_at=when)


def fold(*evaluations):
    state, alerts, recovered = None, [], []
    for item in evaluations:
        state, alert, delta = apply_remittance(state, item)
        alerts.append(alert)
        recovered.append(delta)
    return state, alerts, recovered


def test_underpaid_claim_alerts_once_with_line_detail():
    state, alerts, _ = fold(evaluation("e1", "80.00"))
    alert = alerts[0]
    assert alert is not None
    assert alert.underpaid_amount == D("20.00") and alert.expected == D("100.00") and alert.allowed == D("80.00")
    assert alert.revision == 1 and alert.alert_id == alert_id_for("ACME1|CLM-1", 1)
    assert alert.lines[0].variance == D("-20.00") and alert.lines[0].basis == "contract"
    assert "fixed 100.00" in alert.lines[0].explanation
    assert state.last_alerted_underpaid == D("20.00") and state.net_status == "underpaid"


def test_as_expected_claim_does_not_alert():
    _, alerts, _ = fold(evaluation("e1", "100.00"))
    assert alerts == [None]


def test_redelivered_event_changes_nothing():
    first = evaluation("e1", "80.00")
    state, _alerts, _ = fold(first)
    again, alert, delta = apply_remittance(state, evaluation("e1", "80.00"))
    assert again == state and alert is None and delta == 0


def test_reversal_then_correction_with_same_shortfall_does_not_alert_again():
    state, alerts, recovered = fold(
        evaluation("e1", "80.00"),
        evaluation("e1-rev", "80.00", status="22", sign=-1),
        evaluation("e1-corr", "80.00"),
    )
    assert alerts[0] is not None and alerts[1] is None and alerts[2] is None
    assert recovered == [0, 0, 0]
    assert state.net.event_id == "e1-corr" and state.net_status == "underpaid"
    assert state.adjudications[0].reversed_by == "e1-rev"
    assert state.revision == 3  # original, reversed, corrected


def test_reversal_then_correction_with_new_shortfall_alerts_the_net_result_and_records_recovery():
    state, alerts, recovered = fold(
        evaluation("e1", "60.00"),
        evaluation("e1-rev", "60.00", status="22", sign=-1),
        evaluation("e1-corr", "90.00"),
    )
    final = alerts[2]
    assert final is not None
    assert final.underpaid_amount == D("10.00") and final.previously_alerted_amount == D("40.00")
    assert final.event_ids == ["e1", "e1-corr"]
    assert final.recovered_total == D("30.00")
    assert recovered == [0, 0, D("30.00")]
    assert state.recovered_total == D("30.00")
    assert final.alert_id != alerts[0].alert_id


def test_reversal_alone_leaves_no_net_and_no_alert():
    state, alerts, _ = fold(evaluation("e1", "80.00"), evaluation("e1-rev", "80.00", status="22", sign=-1))
    assert alerts[1] is None
    assert state.net is None and state.net_status == "reversed"


def test_recovery_to_as_expected_clears_the_alerted_amount():
    state, alerts, recovered = fold(
        evaluation("e1", "80.00"),
        evaluation("e1-rev", "80.00", status="22", sign=-1),
        evaluation("e1-corr", "100.00"),
    )
    assert alerts[2] is None and recovered[2] == D("20.00")
    assert state.last_alerted_underpaid is None and state.net_status == "as_expected"
    # a later underpayment of the same claim alerts again
    state, alert, _ = apply_remittance(state, evaluation("e1-corr2", "80.00"))
    assert alert is not None and alert.underpaid_amount == D("20.00")


def test_replacement_without_reversal_supersedes_the_previous_adjudication():
    state, alerts, recovered = fold(evaluation("e1", "70.00"), evaluation("e2", "85.00"))
    assert alerts[1] is not None and alerts[1].underpaid_amount == D("15.00")
    assert recovered[1] == D("15.00")
    assert state.adjudications[0].superseded_by == "e2"


def test_denial_then_payment_on_appeal_is_a_recovery():
    denied = evaluate(
        event(
            [line(paid="0", adjustments=[{"group_code": "CO", "reason_code": "242", "amount": "300.00"}])],
            event_id="e1",
            status="4",
        ),
        context(),
        ref(),
    )
    _state, alerts, recovered = fold(denied, evaluation("e2", "100.00"))
    assert alerts == [None, None] and recovered == [0, D("100.00")]


def test_reversal_arriving_before_its_original_cancels_it():
    state, alerts, _ = fold(
        evaluation("e1-rev", "80.00", status="22", sign=-1),
        evaluation("e1", "80.00"),
    )
    assert alerts == [None, None]
    assert state.net is None and not state.pending_reversals
    assert state.adjudications[0].reversed_by == "e1-rev"
    state, alert, _ = apply_remittance(state, evaluation("e1-corr", "90.00"))
    assert alert is not None and alert.underpaid_amount == D("10.00")


def test_state_is_json_serializable_and_round_trips():
    state, alerts, _ = fold(
        evaluation("e1", "60.00"),
        evaluation("e1-rev", "60.00", status="22", sign=-1),
        evaluation("e1-corr", "90.00"),
    )
    text = state.model_dump_json()
    assert json.loads(text)["recovered_total"] == "30.00"
    assert ClaimState.model_validate_json(text) == state
    alert_text = alerts[2].model_dump_json()
    assert UnderpaymentAlert.model_validate_json(alert_text) == alerts[2]


def test_alert_carries_no_patient_data():
    remit = event([line(paid="50.00")], patient_key="hmac-of-member")
    state, alert, _ = apply_remittance(None, evaluate(remit, context(), ref()))
    text = alert.model_dump_json()
    assert "hmac-of-member" not in text and "patient_key" not in text
    assert "hmac-of-member" not in state.model_dump_json()
    assert "PCN-1" in text  # the provider's own claim id is fine


def test_alert_ids_are_deterministic():
    _, first, _ = fold(evaluation("e1", "80.00"))
    _, second, _ = fold(evaluation("e1", "80.00", when=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)))
    assert first[0].alert_id == second[0].alert_id
